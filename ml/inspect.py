"""Inspection of stored media: identity (sha256), kind, size and whether it decodes. Runs in Ray tasks."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ml.media import MediaProblem, media_kind, probe_image, read_uri, sha256_bytes


def probe_video(uri: str, data: bytes):
    """Open the video with the frame readers (PyAV, then decord) to prove it is usable; VideoInfo or MediaProblem."""
    from ml.video import open_video

    if not data:
        raise MediaProblem("empty file (0 bytes)")
    path = uri
    tmp = None
    if uri.startswith("s3://"):  # the readers need a file: spill the bytes already read
        tmp = tempfile.NamedTemporaryFile(suffix=Path(uri).suffix, delete=False)
        tmp.write(data)
        tmp.close()
        path = tmp.name
    try:
        reader = open_video(path)
        info = reader.info
        reader.close()
        return info
    finally:
        if tmp is not None:
            os.unlink(tmp.name)


def inspect_media(uris: Sequence[str], s3_endpoint_url: str | None = None) -> list[dict]:
    """One row per uri: media_id, kind, width, height, status ('ok', 'quarantined', 'skipped'), error.

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
        }
        try:
            data = read_uri(uri, s3_endpoint_url)
        except OSError as exc:
            rows.append({**row, "status": "quarantined", "error": f"cannot read: {exc}"})
            continue
        row["bytes"] = len(data)
        row["media_id"] = sha256_bytes(data) if data else None
        if row["kind"] == "video":
            try:
                info = probe_video(uri, data)
                row.update(width=info.width, height=info.height, duration_s=round(info.duration_s, 3))
            except MediaProblem as exc:
                row.update(status="quarantined", error=exc.reason)
            rows.append(row)
            continue
        try:
            info = probe_image(data)
            row.update(width=info.width, height=info.height)
        except MediaProblem as exc:
            row.update(status="quarantined", error=exc.reason)
        rows.append(row)
    return rows
