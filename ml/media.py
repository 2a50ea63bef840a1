"""Reading, identifying, checking and decoding media bytes.

A media item is identified by the sha256 of its bytes (`media_id`), so the same photo uploaded twice, or
renamed, is embedded once. Every failure has a reason a person can act on; nothing here drops an item
silently: callers get a `MediaProblem` and record it in `quarantine`.

Every photo the project looks at (inspection, examples, uploads, crops and views, thumbnails and contact
sheets, fine-tuning, keypoints, OCR, `similar`) is decoded by `decode_image`, so all of them see the same
upright, correctly scaled RGB pixels: EXIF orientation applied, 16-bit and palette images scaled and
expanded (not clipped to white), transparency composited on a neutral background, the first frame of an
animation, and the size checked against a pixel limit from the header before any pixel is decoded.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ml.sniff import HEAD_BYTES, sniff

try:  # HEIC/HEIF (phone photos): pillow-heif is a declared dependency; without it they get a reason, not a crash
    import pillow_heif
except ImportError:  # the reason then says "unsupported format: HEIC" (ml/sniff.py knows the brand)
    pillow_heif = None
else:
    pillow_heif.register_heif_opener()

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".heic", ".heif", ".avif"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"}
# A library's default `max_pixels`: the largest common cameras pass (Fujifilm GFX100 / Hasselblad X2D, 102 MP;
# 108 MP phone sensors). The limit is what bounds memory where a format cannot be decoded at a reduced size
# (PNG, TIFF, WebP: 4 bytes a pixel, 480 MB at the limit); JPEG is decoded at 1/2..1/8 scale (DCT scaling).
DEFAULT_MAX_PIXELS = 120_000_000
# The most a library may set, and the guard of decoders that read media inspection already passed: a file
# swapped for a bomb after inspection is still refused before decoding.
PIXEL_CEILING = 500_000_000
# Pillow's own decompression-bomb guard is a process-wide constant (89 MP warning, 179 MP error) raised inside
# Image.open: the project checks the header against the library's configurable limit instead (`open_image`),
# before decoding, with a reason that names the size. Every decode goes through this module.
Image.MAX_IMAGE_PIXELS = None
ALPHA_BACKGROUND = (255, 255, 255)  # transparent pixels are shown as a catalog shows a cut-out: on white


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


class MediaReader(Protocol):
    """Where media bytes come from: ml code reads through one of these and never opens a store itself.

    `ml/` is pure ML code: it knows local paths and nothing of S3. The reader that also opens s3:// objects
    (ranged GETs, one boto3 client per process) is `resources.media_store.StoreReader`; assets pass the media
    store's `reader()`, which is picklable, so it crosses into Ray tasks like any other argument.
    """

    def open(self, uri: str) -> BinaryIO:
        """A seekable binary file over the media at `uri`; the caller closes it."""
        ...

    def read(self, uri: str) -> bytes:
        """All the bytes of the media at `uri`."""
        ...


def _local_only(uri: str) -> None:
    if uri.startswith("s3://"):
        raise ValueError(
            f"cannot read {uri}: ml's LocalFiles reads local paths only; configure an S3 media store "
            "(TAGSMITH_MEDIA_BACKEND=s3) and pass its reader()"
        )


@dataclass(frozen=True)
class LocalFiles:
    """The default `MediaReader`: plain local paths, read through a `buffer_size` buffer."""

    buffer_size: int = 4 << 20

    def open(self, uri: str) -> BinaryIO:
        _local_only(uri)
        return open(uri, "rb", buffering=self.buffer_size)  # noqa: SIM115 - the caller closes it

    def read(self, uri: str) -> bytes:
        _local_only(uri)
        return Path(uri).read_bytes()


def sha256_stream(stream, chunk_size: int = 4 << 20) -> tuple[str, int]:
    """(sha256 hex, bytes read) of a file object, read in chunks: memory stays flat for a 4-hour video."""
    digest, total = hashlib.sha256(), 0
    while chunk := stream.read(chunk_size):
        digest.update(chunk)
        total += len(chunk)
    return digest.hexdigest(), total


def reason_kind(reason: str) -> str:
    """The kind of a quarantine reason, for counting: "too large: 50000 x 50000 ..." -> "too large"."""
    cut = min((i for i in (reason.find(":"), reason.find(" (")) if i > 0), default=len(reason))
    return reason[:cut].strip() or reason


def printable_name(uri: str) -> str:
    """The file name of a uri on one line: a newline or other control character in it shown escaped."""
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in name)


def count_reasons(rows: list[dict], first: int = 5) -> dict[str, dict]:
    """{reason kind: {"files": count, "first": [file names]}} of {uri, reason} rows, most frequent first: the
    media asset's metadata and the CLI's summary after a run."""
    out: dict[str, dict] = {}
    for row in rows:
        entry = out.setdefault(reason_kind(row["reason"]), {"files": 0, "first": []})
        entry["files"] += 1
        if len(entry["first"]) < first:
            entry["first"].append(printable_name(row["uri"]))
    return dict(sorted(out.items(), key=lambda kv: (-kv[1]["files"], kv[0])))


@dataclass(frozen=True)
class ImageInfo:
    width: int  # as displayed: after the EXIF orientation
    height: int
    format: str


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112) or 1)
    except (ValueError, TypeError, SyntaxError, OSError):  # unreadable EXIF: the photo as stored
        return 1


def open_image(data: bytes, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Read the header only (no pixel decoded) and check the size against `max_pixels`; MediaProblem if not."""
    if not data:
        raise MediaProblem("empty file: 0 bytes")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        found = sniff(data[:HEAD_BYTES])
        if not found.decodable:
            name = found.what.split()[0]
            needs = "pillow-heif" if name == "HEIC" else "a Pillow built with AVIF"
            raise MediaProblem(f"unsupported format: {name} (no decoder installed: needs {needs})") from None
        raise MediaProblem(f"not an image: {found.what}") from None
    except Exception as exc:  # noqa: BLE001 - a header parser raises OSError, SyntaxError, struct.error, ...
        raise MediaProblem(f"cannot read image header: {type(exc).__name__}: {exc}") from None
    width, height = image.size
    if max_pixels is not None and width * height > max_pixels:
        image.close()
        raise MediaProblem(
            f"too large: {width} x {height} ({width * height / 1e6:,.0f} MP; max_pixels is {max_pixels / 1e6:,.0f} MP)"
        )
    return image


def _grey_to_8bit(image: Image.Image) -> Image.Image:
    """16-bit (and 32-bit integer or float) grey scaled to 8 bits: Pillow's convert clips them to white."""
    pixels = np.asarray(image)
    if image.mode == "F":
        top = float(np.nanmax(pixels)) if pixels.size else 1.0
        scale = 255.0 if top <= 1.0 else 255.0 / top
    else:
        top = int(pixels.max()) if pixels.size else 0
        scale = 1.0 if image.mode == "I" and top <= 255 else 255.0 / (65535 if top <= 65535 else top)
    out = np.clip(np.nan_to_num(pixels.astype(np.float64) * scale), 0, 255).round().astype(np.uint8)
    return Image.fromarray(out, "L")


def to_rgb(image: Image.Image) -> Image.Image:
    """Upright 8-bit RGB of a loaded image: EXIF orientation, 16-bit grey, palette, CMYK and alpha handled."""
    image = ImageOps.exif_transpose(image) if _orientation(image) != 1 else image
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        image = _grey_to_8bit(image)
    if image.mode == "P" or (image.mode in ("L", "RGB", "1") and "transparency" in image.info):
        image = image.convert("RGBA")
    if image.mode in ("LA", "La", "PA", "RGBa", "RGBA"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, ALPHA_BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image if image.mode == "RGB" else image.convert("RGB")


def decode_image(data: bytes, draft_size: int | None = None, max_pixels: int | None = PIXEL_CEILING) -> Image.Image:
    """Fully decode image bytes to upright 8-bit RGB, or raise MediaProblem with the reason.

    `draft_size` lets the JPEG decoder scale by 1/2..1/8 during decoding (DCT scaling) when the photo is
    much larger than the model input: a 4000px photo decodes several times faster and the model sees the
    same pixels after resizing, and a 100 MP photo never occupies 300 MB. A truncated file still fails: the
    decoder reads the whole stream. An animation gives its first frame. `max_pixels` is checked on the
    header before decoding; its default is the ceiling, for media that inspection already checked against
    the library's own limit (ml/inspect.py).
    """
    image = open_image(data, max_pixels)
    try:
        if draft_size and image.format in ("JPEG", "MPO"):
            image.draft("RGB", (draft_size, draft_size))
        image.load()
        return to_rgb(image)
    except MediaProblem:
        raise
    except Exception as exc:  # noqa: BLE001 - decoders raise OSError, SyntaxError, ValueError, EOFError, ...
        message = str(exc) or type(exc).__name__
        if "truncated" in message.lower() or isinstance(exc, EOFError):
            raise MediaProblem(f"truncated image: {message}") from None
        raise MediaProblem(f"cannot decode image: {type(exc).__name__}: {message}") from None


def probe_image(data: bytes, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Check the size on the header, then decode once (draft-scaled) to prove the file is usable; return the
    real size as displayed (EXIF orientation applied) and the format."""
    header = open_image(data, max_pixels)
    width, height, fmt = header.width, header.height, header.format or "unknown"
    if _orientation(header) in (5, 6, 7, 8):  # turned a quarter: the photo is shown the other way round
        width, height = height, width
    header.close()
    decode_image(data, draft_size=256, max_pixels=max_pixels)
    return ImageInfo(width=width, height=height, format=fmt)


