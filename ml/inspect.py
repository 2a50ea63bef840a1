"""Inspection of stored media: identity (sha256), real kind, size and whether it decodes. Runs in Ray tasks.

One bad file never fails its chunk: every failure of one file, expected or not, becomes that file's
quarantine reason (the exception's type and words when nothing more specific is known), and the other files
of the chunk go on. A file is handled by what its bytes are (ml/sniff.py): a JPEG named `.mp4` is a photo,
an MP4 named `.jpg` a video, and the row says so in `note`.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence

from ml.groups import exif_session
from ml.media import (
    DEFAULT_MAX_PIXELS,
    LocalFiles,
    MediaProblem,
    MediaReader,
    media_kind,
    probe_image,
    sha256_bytes,
)
from ml.sniff import HEAD_BYTES, sniff

NOT_REGULAR = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
               stat.S_IFBLK: "a block device", stat.S_IFDIR: "a folder"}


def probe_video(uri: str, media: MediaReader = LocalFiles()):
    """Open the video with the frame readers to prove it is usable (header and first frame); VideoInfo or
    MediaProblem. An S3 object is read by byte ranges, never whole."""
    from ml.video import open_video

    reader = open_video(uri, media=media)
    info = reader.info
    reader.close()
    return info


def _video_reason(reason: str) -> str:
    """FFmpeg's (PyAV's) words for a video neither backend opens: decord's add nothing a person can act on."""
    if reason.startswith("pyav: "):
        return reason.removeprefix("pyav: ").split("; decord: ", 1)[0]
    return reason


def _check_regular(uri: str) -> None:
    """A FIFO or device named like a photo would block or never end a read: refuse it before opening."""
    if uri.startswith("s3://"):
        return
    try:
        mode = os.stat(uri).st_mode
    except OSError as exc:
        raise MediaProblem(f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise MediaProblem(f"not a regular file: {NOT_REGULAR.get(stat.S_IFMT(mode), 'a special file')}")


def _inspect_one(row: dict, reader: MediaReader, max_pixels: int | None) -> None:
    """Fill `row` for one uri, raising MediaProblem at the first problem (the row keeps what was learnt)."""
    uri = row["uri"]
    _check_regular(uri)
    declared = row["kind"]
    try:
        with reader.open(uri) as stream:
            head = stream.read(HEAD_BYTES)
            found = sniff(head)
            kind = found.kind or declared
            if kind == "video" or found.kind == "video":  # streamed: a 4-hour file is hashed in 4 MiB pieces
                digest, size = hashlib.sha256(head), len(head)
                while chunk := stream.read(4 << 20):
                    digest.update(chunk)
                    size += len(chunk)
                data, media_id = None, digest.hexdigest()
            else:
                data = head + stream.read()
                size, media_id = len(data), sha256_bytes(data)
    except OSError as exc:
        raise MediaProblem(f"cannot read: {exc.strerror or exc}") from None
    row.update(bytes=size, media_id=media_id if size else None)
    if not size:
        raise MediaProblem("empty file: 0 bytes")
    if found.kind is not None and declared is not None and found.kind != declared:
        words = {"image": "a photo", "video": "a video"}
        row["note"] = f"named like {words[declared]}, the bytes are a {found.what}: handled as {words[found.kind]}"
    if found.kind is None and found.what in ("text", "an HTML page", "a PDF document", "a ZIP archive", "MP3 audio"):
        raise MediaProblem(f"not {'a video' if declared == 'video' else 'an image'}: {found.what}")
    row["kind"] = kind
    if kind == "video":
        try:
            info = probe_video(uri, reader)
        except MediaProblem as exc:
            raise MediaProblem(_video_reason(exc.reason).replace(f": '{uri}'", "")) from None
        row.update(width=info.width, height=info.height, duration_s=round(info.duration_s, 3))
        return
    info = probe_image(data, max_pixels)
    row.update(width=info.width, height=info.height, session=exif_session(data))


def inspect_media(
    uris: Sequence[str], reader: MediaReader = LocalFiles(), max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> list[dict]:
    """One row per uri: media_id, kind (what the bytes are), width, height (as displayed), duration_s, bytes,
    status ('ok' or 'quarantined'), error (the reason), note (a wrong extension, or None), and for a photo
    its EXIF session ("<date>|<camera>", or None).

    Never raises for a bad file: its row says why it was quarantined, and the other files go on. Photos over
    `max_pixels` (the library's limit, checked on the header) are quarantined as "too large: W x H".
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
            "note": None,
            "session": None,  # EXIF capture date and camera of a photo (ml/groups.py: one session, one group)
        }
        try:
            _inspect_one(row, reader, max_pixels)
        except MediaProblem as exc:
            row.update(status="quarantined", error=exc.reason)
        except Exception as exc:  # noqa: BLE001 - recorded as the file's reason: one file never fails its chunk
            row.update(status="quarantined", error=f"unexpected error: {type(exc).__name__}: {exc}")
        rows.append(row)
    return rows
