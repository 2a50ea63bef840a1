"""What a file really is, from its first bytes: a photo, a video, or something else named like one.

A library holds files whose extension lies both ways (a phone export that names a JPEG `.mp4`, a screen
recording saved as `.jpg`, an HTML error page downloaded as `photo.jpg`). The decision taken here: a file is
handled by what its bytes are, not by its name, and the media table's `kind` is the real kind; a file that is
neither is quarantined with a reason that says what it is ("not an image: text").

Photos are recognised by Pillow's own format checks (each plugin's `accept`, the test `Image.open` runs), so
"is an image" means exactly "a format this Pillow can open". Videos need only the signatures of the
containers FFmpeg reads for us (ISO-BMFF/QuickTime, Matroska/WebM, AVI, MPEG, FLV): a handful of byte
patterns, written here rather than adding a file-type package whose list of image formats could disagree
with what Pillow decodes.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

HEAD_BYTES = 64  # what `sniff` needs; every signature below sits in the first 16 bytes
# formats a photo library holds; Pillow also "accepts" MPEG video headers and exotic formats we never want
PHOTO_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "HEIF", "AVIF", "JPEG2000")
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
AVIF_BRANDS = {b"avif", b"avis"}


@dataclass(frozen=True)
class Sniffed:
    kind: str | None  # "image", "video", or None: neither (or one we cannot decode)
    what: str  # for people: "JPEG image", "MP4/QuickTime video", "text", "HEIC image (no decoder installed)"
    decodable: bool = True  # False: a known photo format this installation cannot decode (HEIC without pillow-heif)


def _pillow_format(head: bytes) -> str | None:
    Image.init()
    for name in PHOTO_FORMATS:
        accept = Image.OPEN.get(name, (None, None))[1]
        if accept is not None and accept(head) is True:
            return name
    return None


def _video_container(head: bytes) -> str | None:
    box = head[4:8]
    if box == b"ftyp" or box in (b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"):
        return "MP4/QuickTime"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "Matroska/WebM"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "AVI"
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "MPEG"
    if head.startswith(b"FLV\x01"):
        return "FLV"
    return None


def _other(head: bytes) -> str:
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype html", b"<html")):
        return "an HTML page"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3"):
        return "MP3 audio"
    if b"\x00" not in head and head.decode("utf-8", errors="replace")[:-1].count("\ufffd") == 0:
        return "text"
    return f"unrecognised format (first bytes {head[:8].hex(' ')})"


def sniff(head: bytes) -> Sniffed:
    """The real kind of a file from its first `HEAD_BYTES` bytes."""
    if not head:
        return Sniffed(None, "empty file")
    fmt = _pillow_format(head)
    if fmt is not None:
        return Sniffed("image", f"{fmt} image")
    brand = head[8:12] if head[4:8] == b"ftyp" else b""
    if brand in HEIF_BRANDS or brand in AVIF_BRANDS:  # a photo format Pillow cannot open here
        name = "HEIC" if brand in HEIF_BRANDS else "AVIF"
        return Sniffed(None, f"{name} image", decodable=False)
    container = _video_container(head)
    if container is not None:
        return Sniffed("video", f"{container} video")
    return Sniffed(None, _other(head))
