"""A corpus of the files real libraries hold, generated (nothing downloaded), each with the outcome it must get.

The fault suite (tests/test_faults.py) puts it in a library's media folder and runs the pipeline on it;
benchmarks/faults.py times each file's inspection and measures its peak memory. Every case names what it is,
whether it must be tagged ("ok") or quarantined, and the kind of reason it must be quarantined with (the
text before the first colon of the `quarantine` table's reason: "too large", "symlink loop", ...). Photos that
must be tagged also say which colour given points must have once decoded, so wrong pixels (a 16-bit PNG
decoded white, a sideways phone photo, a transparent cut-out on black) fail the suite.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

RED, GREEN, BLUE, WHITE, YELLOW = (220, 30, 30), (30, 180, 60), (30, 60, 220), (255, 255, 255), (230, 210, 20)


@dataclass(frozen=True)
class FaultCase:
    name: str  # path under the media folder
    what: str  # the input kind, for people
    status: str  # "ok" (tagged) or "quarantined"
    reason: str | None = None  # the reason's kind, for a quarantined file
    kind: str | None = None  # the media table's kind the file must get ("image", "video"; None: not media)
    pixels: tuple = field(default_factory=tuple)  # ((x fraction, y fraction), (r, g, b)) after decoding
    size: tuple[int, int] | None = None  # (width, height) as displayed


def _noise_photo(rng: np.random.Generator, size=(96, 72)) -> Image.Image:
    base = rng.integers(0, 255, size=(size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    return Image.fromarray(base).resize(size, Image.BILINEAR)


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def _halves(left, right, size=(96, 72), mode="RGB") -> Image.Image:
    image = Image.new(mode, size, right)
    image.paste(left, (0, 0, size[0] // 2, size[1]))
    return image


def png_declaring(width: int, height: int) -> bytes:
    """A real decompression bomb: a 1-bit PNG of `width` x `height` zeros, a few hundred KB on disk and
    width x height bytes once decoded by Pillow (2.5 GB for 50,000 x 50,000)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    row = bytes(1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    rows_per_piece = max(1, (8 << 20) // len(row))
    body = []
    for start in range(0, height, rows_per_piece):
        body.append(packer.compress(row * min(rows_per_piece, height - start)))
    body.append(packer.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(body)) + chunk(b"IEND", b"")


def _video(path: Path, seconds: float, colour=(200, 60, 40), size=(64, 48), fps: int = 8) -> None:
    from ml.video import write_h264

    frame = np.zeros((size[1], size[0], 3), np.uint8)
    frame[:] = colour
    written = path.with_name(path.name + ".tmp.mp4")  # the muxer goes by the extension: an MP4 named .jpg
    write_h264(str(written), (frame for _ in range(int(seconds * fps))), fps)
    written.rename(path)


def _audio_only(path: Path) -> None:
    import av

    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for i in range(16):
            frame.pts = i * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def _zero_length_video(path: Path) -> None:
    """What a recording stopped at once leaves: an MP4 container with nothing in it."""
    import av

    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()
        for packet in stream.encode(None):
            out.mux(packet)


def write_fault_corpus(folder: Path, seed: int = 0, special_files: bool = True,
                       hundred_mp: bool = False) -> list[FaultCase]:
    """Write the corpus into `folder` (created) and return its cases. `special_files`: also the symlink loops,
    the broken link and the FIFO (POSIX only). `hundred_mp`: also a 100 MP photo (a 12,000 x 8,400 JPEG,
    which must be tagged with bounded memory; writing it costs a second and 100 MB)."""
    folder = Path(folder)
    (folder / "shoot").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 12])
    cases: list[FaultCase] = []

    def photo(name: str, data: bytes, what: str, **expect) -> None:
        (folder / name).write_bytes(data)
        cases.append(FaultCase(name, what, "ok", kind="image", **expect))

    def bad(name: str, data: bytes, what: str, reason: str) -> None:
        (folder / name).write_bytes(data)
        cases.append(FaultCase(name, what, "quarantined", reason=reason, kind=_kind(name)))

    jpeg = _encode(_noise_photo(rng), "JPEG", quality=90)
    png = _encode(_noise_photo(rng), "PNG")
    photo("good.jpg", jpeg, "JPEG photo", size=(96, 72))
    photo("shoot/nested.jpg", _encode(_noise_photo(rng), "JPEG"), "photo in a sub-folder")
    # names: spaces, a newline, Japanese, Arabic
    photo("beach day 01.jpg", _encode(_noise_photo(rng), "JPEG"), "file name with spaces")
    photo("line\nbreak.jpg", _encode(_noise_photo(rng), "JPEG"), "file name with a newline")
    photo("東京 写真.jpg", _encode(_noise_photo(rng), "JPEG"), "Japanese file name")
    photo("صورة المنتج.jpg", _encode(_noise_photo(rng), "JPEG"), "Arabic file name")

    bad("empty.jpg", b"", "zero-byte file", "empty file")
    bad("truncated.jpg", jpeg[: len(jpeg) * 2 // 5], "truncated JPEG", "truncated image")
    bad("truncated.png", png[: len(png) * 3 // 5], "truncated PNG", "truncated image")
    bad("text.jpg", b"just some notes, not a photo\n", "text named .jpg", "not an image")
    bad("error-page.jpg", b"<!DOCTYPE html><html><body>403 Forbidden</body></html>\n", "HTML page named .jpg",
        "not an image")
    bad("notes.mp4", b"a text file named like a video\n", "text named .mp4", "not a video")
    bad("bomb.png", png_declaring(50_000, 50_000), "PNG declaring 50,000 x 50,000 px", "too large")
    bad("over-pillow-limit.png", png_declaring(14_000, 14_000), "PNG of 14,000 x 14,000 px (over Pillow's limit)",
        "too large")

    # colours and layouts a decoder gets wrong
    cmyk = Image.new("RGB", (64, 48), RED).convert("CMYK")
    photo("cmyk.jpg", _encode(cmyk, "JPEG", quality=95), "CMYK JPEG", pixels=(((0.5, 0.5), RED),))
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (48, 1))
    photo("grey16.png", _encode(Image.fromarray(ramp), "PNG"), "16-bit grey PNG",
          pixels=(((0.02, 0.5), (0, 0, 0)), ((0.5, 0.5), (128, 128, 128)), ((0.98, 0.5), (255, 255, 255))))
    palette = _halves(0, 1, mode="P")
    palette.putpalette([*RED, *BLUE] + [0] * (254 * 3))
    photo("palette-transparent.png", _encode(palette, "PNG", transparency=0), "palette PNG with transparency",
          pixels=(((0.25, 0.5), WHITE), ((0.75, 0.5), BLUE)))
    photo("alpha.png", _encode(_halves((0, 0, 0, 0), (*GREEN, 255), mode="RGBA"), "PNG"), "PNG with alpha",
          pixels=(((0.25, 0.5), WHITE), ((0.75, 0.5), GREEN)))
    upright = Image.new("RGB", (72, 96), RED)
    upright.paste(BLUE, (0, 0, 72, 48))  # blue on top when shown upright
    exif = Image.Exif()
    exif[0x0112] = 6  # a phone held upright: stored turned, "rotate 90 clockwise to show"
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    photo("phone-exif6.jpg", _encode(stored, "JPEG", quality=95, exif=exif.tobytes()), "EXIF orientation 6 photo",
          pixels=(((0.5, 0.15), BLUE), ((0.5, 0.85), RED)), size=(72, 96))
    frames = [Image.new("RGB", (64, 48), RED), Image.new("RGB", (64, 48), BLUE)]
    photo("animated.gif", _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0),
          "animated GIF", pixels=(((0.5, 0.5), RED),))
    photo("photo.webp", _encode(Image.new("RGB", (64, 48), GREEN), "WEBP", quality=95), "WebP",
          pixels=(((0.5, 0.5), GREEN),))
    photo("photo.avif", _encode(Image.new("RGB", (64, 48), YELLOW), "AVIF", quality=95), "AVIF",
          pixels=(((0.5, 0.5), YELLOW),))
    import pillow_heif  # a declared dependency (pyproject.toml): HEIC is what iPhones write

    pillow_heif.register_heif_opener()
    photo("iphone.heic", _encode(Image.new("RGB", (64, 48), BLUE), "HEIF", quality=95), "HEIC",
          pixels=(((0.5, 0.5), BLUE),))
    if hundred_mp:
        big = Image.new("L", (12_000, 8_400), 128)
        big.paste(40, (0, 0, 6_000, 8_400))
        photo("photo-100mp.jpg", _encode(big, "JPEG", quality=80), "100 MP photo (12,000 x 8,400 JPEG)",
              size=(12_000, 8_400))
        del big

    # extensions that lie, both ways
    photo("clip-really-a-photo.mp4", _encode(_noise_photo(rng), "JPEG"), "JPEG named .mp4")
    _video(folder / "photo-really-a-clip.jpg", 2.0)
    cases.append(FaultCase("photo-really-a-clip.jpg", "MP4 named .jpg", "ok", kind="video"))

    # videos
    _video(folder / "clip.mp4", 2.0, colour=(40, 90, 200))
    cases.append(FaultCase("clip.mp4", "MP4 video", "ok", kind="video"))
    _video(folder / "truncated.mp4", 3.0)
    data = (folder / "truncated.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) * 2 // 5])
    cases.append(FaultCase("truncated.mp4", "truncated MP4", "quarantined", "cannot open video", "video"))
    _audio_only(folder / "voice-memo.mp4")
    cases.append(FaultCase("voice-memo.mp4", "audio-only MP4", "quarantined", "no video stream", "video"))
    _zero_length_video(folder / "zero-length.mp4")
    cases.append(FaultCase("zero-length.mp4", "zero-duration MP4 (nothing recorded)", "quarantined", "empty video",
                           "video"))

    if special_files:
        os.symlink("loop.jpg", folder / "loop.jpg")
        cases.append(FaultCase("loop.jpg", "symlink to itself", "quarantined", "symlink loop", "image"))
        os.symlink("..", folder / "shoot" / "back-to-top")
        cases.append(FaultCase("shoot/back-to-top", "folder symlink to its parent", "quarantined", "symlink loop"))
        os.symlink("missing/IMG_0001.jpg", folder / "gone.jpg")
        cases.append(FaultCase("gone.jpg", "broken symlink", "quarantined", "broken symlink", "image"))
        os.mkfifo(folder / "pipe.jpg")
        cases.append(FaultCase("pipe.jpg", "FIFO named .jpg", "quarantined", "not a regular file", "image"))
    return cases


def write_unreadable(folder: Path) -> FaultCase:
    """A photo nobody may read (mode 000). Root reads it anyway: check it in a process without
    CAP_DAC_OVERRIDE (tests/test_faults.py, benchmarks/faults.py run one through `setpriv`)."""
    path = Path(folder) / "private.jpg"
    path.write_bytes(_encode(Image.new("RGB", (32, 24), RED), "JPEG"))
    path.chmod(0)
    return FaultCase("private.jpg", "unreadable file (chmod 000)", "quarantined", "cannot read", "image")


def _kind(name: str) -> str | None:
    from ml.media import media_kind

    return media_kind(name)
