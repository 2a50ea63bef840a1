"""Reading, identifying and checking media bytes.

A media item is identified by the sha256 of its bytes (`media_id`), so the same photo uploaded twice, or
renamed, is embedded once. Every failure has a reason a person can act on; nothing here drops an item
silently: callers get a `MediaProblem` and record it in `quarantine`.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"}
MAX_PIXELS = 200_000_000  # refuse decompression bombs with a reason instead of exhausting memory


class MediaProblem(ValueError):
    """The bytes are not a usable image; `reason` is what goes into the quarantine table."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def media_kind(name: str) -> str | None:
    suffix = Path(name).suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def s3_client(s3_endpoint_url: str | None = None):
    import boto3

    return boto3.client("s3", endpoint_url=s3_endpoint_url or None)


class S3RangeFile(io.RawIOBase):
    """A seekable, read-only file over one S3 object, read with ranged GETs.

    Videos are opened through this (PyAV takes any file object), so a 4-hour file on S3 is read where the
    decoder reads (the index, then the time range a task samples) and never downloaded whole or held in
    memory. Written here because the well-kept alternative, s3fs, pins aiobotocore/botocore versions that
    fight the pinned boto3 of this stack; these are the few lines of it we need.
    """

    def __init__(self, uri: str, s3_endpoint_url: str | None = None):
        super().__init__()
        self.uri = uri
        self.bucket, _, self.key = uri[5:].partition("/")
        self.client = s3_client(s3_endpoint_url)
        try:
            self.size = int(self.client.head_object(Bucket=self.bucket, Key=self.key)["ContentLength"])
        except Exception as exc:  # noqa: BLE001 - botocore's ClientError and connection errors alike
            raise OSError(f"cannot open {uri}: {exc}") from None
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer) -> int:
        if self.pos >= self.size or len(buffer) == 0:
            return 0
        end = min(self.pos + len(buffer), self.size) - 1
        body = self.client.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={self.pos}-{end}")["Body"]
        data = body.read()
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


def open_uri(uri: str, s3_endpoint_url: str | None = None, buffer_size: int = 4 << 20) -> io.BufferedReader:
    """A seekable binary file for a local path or an s3:// object, read in `buffer_size` pieces."""
    if uri.startswith("s3://"):
        return io.BufferedReader(S3RangeFile(uri, s3_endpoint_url), buffer_size=buffer_size)
    return open(uri, "rb", buffering=buffer_size)  # noqa: SIM115 - the caller closes it


def sha256_stream(stream, chunk_size: int = 4 << 20) -> tuple[str, int]:
    """(sha256 hex, bytes read) of a file object, read in chunks: memory stays flat for a 4-hour video."""
    digest, total = hashlib.sha256(), 0
    while chunk := stream.read(chunk_size):
        digest.update(chunk)
        total += len(chunk)
    return digest.hexdigest(), total


def read_uri(uri: str, s3_endpoint_url: str | None = None) -> bytes:
    """Bytes of a local path or an s3:// object (boto3; DuckDB cannot fetch its httpfs extension here)."""
    if uri.startswith("s3://"):
        bucket, _, key = uri[5:].partition("/")
        return s3_client(s3_endpoint_url).get_object(Bucket=bucket, Key=key)["Body"].read()
    return Path(uri).read_bytes()


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str


def decode_image(data: bytes, draft_size: int | None = None) -> Image.Image:
    """Fully decode image bytes to RGB, or raise MediaProblem with the reason.

    `draft_size` lets the JPEG decoder scale by 1/2..1/8 during decoding (DCT scaling) when the photo is
    much larger than the model input: a 4000px photo decodes several times faster and the model sees the
    same pixels after resizing. A truncated file still fails: the decoder reads the whole stream.
    """
    if not data:
        raise MediaProblem("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > MAX_PIXELS:
                raise MediaProblem(f"image too large ({image.width}x{image.height} pixels)")
            if draft_size and image.format == "JPEG":
                image.draft("RGB", (draft_size, draft_size))
            image.load()
    except MediaProblem:
        raise
    except UnidentifiedImageError:
        raise MediaProblem("not an image (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:  # noqa: E501
        message = str(exc) or type(exc).__name__
        if "truncated" in message:
            raise MediaProblem(f"truncated image: {message}") from None
        raise MediaProblem(f"cannot decode image: {message}") from None
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image


def probe_image(data: bytes) -> ImageInfo:
    """Decode once (draft-scaled) to prove the file is usable; return its real size and format."""
    try:
        header = Image.open(io.BytesIO(data)) if data else None
    except UnidentifiedImageError:
        raise MediaProblem("not an image (unrecognised format)") from None
    except OSError as exc:
        raise MediaProblem(f"cannot read image header: {exc}") from None
    if header is None:
        raise MediaProblem("empty file (0 bytes)")
    width, height, fmt = header.width, header.height, header.format or "unknown"
    decode_image(data, draft_size=256)
    return ImageInfo(width=width, height=height, format=fmt)
