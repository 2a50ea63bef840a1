"""A library's media as the API sees them: URIs a client names (relative to the library's `media`) checked to lie
inside it, and uploads added to it through the same ingest as `tagsmith ingest`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from ml.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from ml.sniff import HEAD_BYTES, Sniffed, sniff
from resources.ingest import Source, apply_ingest, destination_for, plan_ingest
from tagsmith import service
from tagsmith.api.errors import ApiError, not_found

SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp",
          "MP4/QuickTime": ".mp4", "Matroska/WebM": ".mkv", "AVI": ".avi"}  # fmt: skip


def media_root(library: str) -> str:
    res = service.resources()
    return destination_for(res["libraries"].config(library).media, res["media_store"]).describe("").rstrip("/")


def resolve(library: str, uri: str) -> tuple[str, str]:
    """(the full uri, its kind) of a file of the library's media named by `uri`: relative to the library's
    `media`, or the full path / s3:// uri under it. Anything else is `not_found` (another library's files
    included: nothing says they exist); `..`, backslashes and control characters are refused outright."""
    if not uri or len(uri) > 1024 or any(ord(c) < 32 for c in uri) or "\\" in uri:
        raise ApiError("invalid_request", "uris: a path relative to the library's media, without control characters")
    if ".." in PurePosixPath(uri.split("://", 1)[-1]).parts:
        raise ApiError("invalid_request", f"uris: {uri[:200]!r}: `..` is not allowed")
    root = media_root(library)
    if root.startswith("s3://"):
        full = uri if uri.startswith("s3://") else f"{root}/{uri.lstrip('/')}"
        inside = full.startswith(root + "/")
    else:
        if "://" in uri:
            raise not_found(f"file {uri[:200]!r}")
        full = str((Path(root) / uri).resolve()) if not uri.startswith("/") else str(Path(uri).resolve())
        inside = Path(full).is_relative_to(Path(root).resolve())
    if not inside:
        raise not_found(f"file {uri[:200]!r}")
    try:
        with service.resources()["media_store"].reader().open(full) as stream:
            head = stream.read(HEAD_BYTES)
    except (OSError, LookupError, ValueError):
        raise not_found(f"file {uri[:200]!r}") from None
    except Exception as exc:  # botocore's ClientError (no such key, access denied): the file is not there for us
        if type(exc).__name__ != "ClientError":
            raise
        raise not_found(f"file {uri[:200]!r}") from None
    kind = sniff(head).kind
    if kind is None:
        raise ApiError("unsupported_media_type", f"{uri[:200]!r} is not a photo or a video: {sniff(head).what}")
    return full, kind


def upload_target(name: str | None, found: Sniffed) -> PurePosixPath:
    """Where an upload goes under the library's media: `api/<date>/<name>`, the name's suffix fitting its kind.
    Without a name, a random one: the same bytes sent twice are still one media (ingest compares bytes)."""
    suffixes = IMAGE_SUFFIXES if found.kind == "image" else VIDEO_SUFFIXES
    if name:
        if Path(name).suffix.lower() not in suffixes:
            what = "photo" if found.kind == "image" else "video"
            ends = ", ".join(sorted(suffixes))
            raise ApiError("invalid_request", f"name: {name!r} does not end like a {what} ({ends})")
    else:
        fmt = found.what.rsplit(" ", 1)[0]
        name = uuid.uuid4().hex[:16] + SUFFIX.get(fmt, ".jpg" if found.kind == "image" else ".mp4")
    return PurePosixPath("api") / datetime.now(UTC).strftime("%Y-%m-%d") / name


def add_to_library(library: str, path: Path, target: PurePosixPath) -> dict:
    """Copy the upload into the library's media (resources/ingest.py: never replaces a file, never copies bytes the
    library already holds, hashes the file once): {media_id, uri, action, note}."""
    res = service.resources()
    destination = destination_for(res["libraries"].config(library).media, res["media_store"])
    steps = apply_ingest(plan_ingest([Source(path=path, relative=target)], destination), destination)
    step = steps[0]
    if step.action == "failed":
        raise OSError(step.reason)
    where = step.target or step.reason
    uri = destination.describe(where) if step.target else None
    return {"media_id": step.digest.sha256, "uri": uri, "action": step.action, "note": step.reason}
