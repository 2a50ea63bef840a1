"""Inspection of stored media: identity (sha256), kind, size and whether it decodes. Runs in Ray tasks."""

from __future__ import annotations

from collections.abc import Sequence

from ml.groups import exif_session
from ml.media import MediaProblem, media_kind, open_uri, probe_image, read_uri, sha256_bytes, sha256_stream


def probe_video(uri: str, s3_endpoint_url: str | None = None):
    """Open the video with the frame readers to prove it is usable (header and first frame); VideoInfo or
    MediaProblem. An S3 object is read by byte ranges, never whole."""
    from ml.video import open_video

    reader = open_video(uri, s3_endpoint_url=s3_endpoint_url)
    info = reader.info
    reader.close()
    return info


def inspect_media(uris: Sequence[str], s3_endpoint_url: str | None = None) -> list[dict]:
    """One row per uri: media_id, kind, width, height, status ('ok', 'quarantined', 'skipped'), error, and
    for a photo its EXIF session ("<date>|<camera>", or None).

    Never raises for a bad file: its row says why it was quarantined, and the other files go on.
    """
    rows = []
    for uri in uris:
        row = {
            "uri": uri,
            "media_id": None,
            "kind": media_kind(uri),
            "width": None,
            "height": None,
            "duration_s": None,
            "bytes": None,
            "status": "ok",
            "error": None,
            "session": None,  # EXIF capture date and camera of a photo (ml/groups.py: one session, one group)
        }
        if row["kind"] == "video":  # streamed: a 4-hour file is hashed in 4 MiB pieces, never held whole
            try:
                with open_uri(uri, s3_endpoint_url) as stream:
                    media_id, size = sha256_stream(stream)
            except OSError as exc:
                rows.append({**row, "status": "quarantined", "error": f"cannot read: {exc}"})
                continue
            row.update(bytes=size, media_id=media_id if size else None)
            try:
                if not size:
                    raise MediaProblem("empty file (0 bytes)")
                info = probe_video(uri, s3_endpoint_url)
                row.update(width=info.width, height=info.height, duration_s=round(info.duration_s, 3))
            except MediaProblem as exc:
                row.update(status="quarantined", error=exc.reason)
            rows.append(row)
            continue
        try:
            data = read_uri(uri, s3_endpoint_url)
        except OSError as exc:
            rows.append({**row, "status": "quarantined", "error": f"cannot read: {exc}"})
            continue
        row["bytes"] = len(data)
        row["media_id"] = sha256_bytes(data) if data else None
        try:
            info = probe_image(data)
            row.update(width=info.width, height=info.height, session=exif_session(data))
        except MediaProblem as exc:
            row.update(status="quarantined", error=exc.reason)
        rows.append(row)
    return rows
