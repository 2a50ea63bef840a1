"""Uploads: the request body streamed to a temporary file, checked as it arrives.

Nothing is held in memory and nothing is decoded until the body is whole and its first bytes say it is media:
- a `Content-Length` above the limit is refused before a byte is read, and a body without one (chunked) is
  refused the moment it passes the limit;
- the first 64 bytes are sniffed (ml/sniff.py, the same check `media` runs on library files) as soon as they
  arrive: a body that is not a photo (or, where allowed, a video) is refused there, never handed to a decoder;
- decompression bombs are the decoder's side: the photo's header is checked against the library's
  `max_pixels` before any pixel is decoded (ml/media.py `open_image`).
"""

from __future__ import annotations

import os
import re
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Request

from ml.sniff import HEAD_BYTES, Sniffed, sniff
from tagsmith.api.errors import ApiError

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,120}$")


def upload_name(name: str | None, default: str) -> str:
    """A file name for an upload (`?name=`): one plain name, no folders, no `..`, no control characters."""
    if not name:
        return default
    if not SAFE_NAME.match(name) or ".." in name:
        raise ApiError("invalid_request", "name: a plain file name (letters, digits, . _ - and spaces), no folders")
    return name


@asynccontextmanager
async def received(request: Request, limit: int, kinds: tuple[str, ...]):
    """Yield (path of the whole body on disk, what its first bytes are: ml.sniff.Sniffed); the file is removed
    afterwards."""
    settings = request.app.state.settings
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise ApiError("payload_too_large", f"the body is larger than this endpoint's limit ({limit >> 20} MB)")
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=settings.tmp_dir, prefix="upload-")
    path = Path(name)
    try:
        size, head, found = 0, b"", None
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(
                        "payload_too_large", f"the body is larger than this endpoint's limit ({limit >> 20} MB)"
                    )
                if found is None:
                    head += chunk[: HEAD_BYTES - len(head)]
                    if len(head) >= HEAD_BYTES:
                        found = _check(head, kinds)
                out.write(chunk)
        if size == 0:
            raise ApiError("invalid_request", "the body is empty: send the file's bytes as the request body")
        if found is None:
            found = _check(head, kinds)
        yield path, found
    finally:
        path.unlink(missing_ok=True)


def _check(head: bytes, kinds: tuple[str, ...]) -> Sniffed:
    found = sniff(head)
    if found.kind not in kinds:
        wanted = " or ".join({"image": "a photo", "video": "a video"}[k] for k in kinds)
        raise ApiError("unsupported_media_type", f"the body is not {wanted}: {found.what}")
    if not found.decodable:
        raise ApiError("unsupported_media_type", f"{found.what}: this server cannot decode it")
    return found
