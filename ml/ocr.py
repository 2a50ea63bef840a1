"""Text printed on products, read with RapidOCR (PaddleOCR's PP-OCR models as ONNX, shipped in the wheel).

Why these settings: RapidOCR's default detector resizes every image so that its *shorter* side is 736 px
(`limit_type: min`), which blows a 320 px product photo up 2.3x. Measured on 48 demo photos of 320 px
(2 cores, model number read exactly / ms per photo): default 736 45/48 at 269 ms; 480 44/48 at 130 ms;
no upscaling at all (`max` 960) 41/48 at 86 ms. So the shorter side is brought up to 480 only (photos larger
than that are not resized by the detector; RapidOCR caps the longest side at 2000 px before it), and a
frame without text costs one detector pass and no recognition (RapidOCR recognises only detected boxes).

Products rarely fill the photo: in a lifestyle shot the label is a few pixels high and the detector finds
nothing on the whole frame. A *photo* whose whole frame yields no text is read again on its centre crops
(`zoom`: 60 %, then 50 % of each side, upscaled 2x where the crop is smaller than the detector's side), and the
boxes are mapped back into the photo's pixels. Measured on the demo (320 px photos; 6 of its 145 new photos
read no text on the whole frame, each a lifestyle shot of a labelled product): the 60 % crop read 4 of them,
the 50 % crop 4, the two in turn all 6 (5 exactly, one `8W-5` for `BW-5`), at 250-300 ms a crop on one core.
Frames of videos are not zoomed: most frames carry no text, and each would pay two more passes.

Results are cached like embeddings: keyed by (media_id, ts, OCR model id), never recomputed.

Pure ML code: no Dagster, no Ray.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image

from ml.media import LocalFiles, MediaProblem, MediaReader, decode_image

log = logging.getLogger(__name__)


MIN_SIDE, MAX_ASPECT = 8, 12  # pixels, long side / short side: see `readable`


@dataclass(frozen=True)
class OcrSpec:
    """How to build the OCR engine; picklable, so Ray tasks build their own (once per process)."""

    limit_side_len: int = 480  # the detector brings a shorter side below this up to it (see above)
    limit_type: str = "min"
    text_score: float = 0.5  # recognition confidence below this drops the box
    use_cls: bool = True  # the angle classifier: reads text printed upside down (a product lying the other way)
    zoom: tuple[float, ...] = (0.6, 0.5)  # centre crops (share of each side) read, in turn, where a photo has no text
    threads: int = 1

    @property
    def model_id(self) -> str:
        """The OCR cache key: models and the settings that change what is read (not threads)."""
        from importlib.metadata import version

        key = f"{version('rapidocr')}|{self.limit_side_len}|{self.limit_type}|{self.text_score}|{self.use_cls}"
        key += f"|zoom={','.join(map(str, self.zoom))}" if self.zoom else ""
        return f"rapidocr-ppocrv6@{hashlib.sha256(key.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class TextBox:
    text: str
    confidence: float
    box: tuple[float, ...]  # 4 corners, x0 y0 x1 y1 x2 y2 x3 y3, in the image's pixels


class OcrEngine:
    def __init__(self, spec: OcrSpec):
        from rapidocr import RapidOCR

        self.spec = spec
        self.engine = RapidOCR(
            params={
                "Global.log_level": "error",  # "no text detected" is a warning per blank frame
                "Global.text_score": spec.text_score,
                "Global.use_cls": spec.use_cls,
                "Det.limit_side_len": spec.limit_side_len,
                "Det.limit_type": spec.limit_type,
                "EngineConfig.onnxruntime.intra_op_num_threads": spec.threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
        )

    def read(self, image: Image.Image | np.ndarray) -> list[TextBox]:
        """Text boxes in reading order (RapidOCR's), empty when there is no text or the picture is too thin to
        hold any (`readable`)."""
        pixels = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
        if not readable(pixels.shape[1], pixels.shape[0]):
            return []
        out = self.engine(pixels[..., ::-1].copy())  # RapidOCR takes OpenCV's BGR order
        if out.txts is None or out.boxes is None:
            return []
        return [
            TextBox(str(text), round(float(score), 4), tuple(round(float(v), 1) for v in np.asarray(box).ravel()))
            for text, score, box in zip(out.txts, out.scores, out.boxes, strict=True)
            if str(text).strip()
        ]

    def read_photo(self, image: Image.Image) -> list[TextBox]:
        """`read`, and where the whole photo yields no text, its centre crops in turn (`OcrSpec.zoom`), the
        first that yields text winning; boxes are in the photo's pixels either way."""
        found = self.read(image)
        for share in () if found else self.spec.zoom:
            crop, left, top, scale = centre_crop(image.convert("RGB"), share, self.spec.limit_side_len)
            found = [
                TextBox(
                    b.text,
                    b.confidence,
                    tuple(round(v / scale + (left if k % 2 == 0 else top), 1) for k, v in enumerate(b.box)),
                )
                for b in self.read(crop)
            ]
            if found:
                break
        return found


def readable(width: int, height: int) -> bool:
    """Whether a picture of this size is read at all: its shorter side at least MIN_SIDE and its longer at most
    MAX_ASPECT times that. The detector brings the shorter side up to 480 px, so a strip's cost grows with its
    aspect: a blank 320 x 320 took 0.2-0.3 s, 60 x 480 2.1 s, 50 x 500 2.6 s, 40 x 480 3.1 s; strips of 4 x 400,
    8 x 320 (after another strip), 8 x 1,000 and 10 x 2,000 px gave no answer within 20 s, and 20 x 4,000 raised
    RapidOCR's ResizeImgError. A strip that thin is no product photo: it is left unread, not left to stall a run."""
    short, long = min(width, height), max(width, height)
    return short >= MIN_SIDE and long <= MAX_ASPECT * short


def centre_crop(image: Image.Image, share: float, side: int) -> tuple[Image.Image, int, int, float]:
    """(crop, left, top, scale): the centre `share` of each side of `image`, upscaled 2x where its shorter side
    is below `side` (the detector's), so a small label is read as the whole frame's large text is."""
    w, h = image.size
    cw, ch = max(1, round(w * share)), max(1, round(h * share))
    left, top = (w - cw) // 2, (h - ch) // 2
    crop = image.crop((left, top, left + cw, top + ch))
    scale = 2.0 if min(cw, ch) < side else 1.0
    if scale != 1.0:
        crop = crop.resize((round(cw * scale), round(ch * scale)), Image.BICUBIC)
    return crop, left, top, scale


@lru_cache(maxsize=2)
def cached_engine(spec: OcrSpec) -> OcrEngine:
    """One engine per spec per process (Ray workers reuse it across tasks)."""
    return OcrEngine(spec)


@dataclass
class OcrChunkResult:
    rows: list[dict] = field(default_factory=list)  # {media_id, ts, text, confidence, box, image_w, image_h}
    done: list[dict] = field(default_factory=list)  # {media_id, ts, boxes, ms}: also for photos without text
    errors: list[dict] = field(default_factory=list)  # {media_id, uri, reason}
    seconds: dict[str, float] = field(default_factory=lambda: {"decode": 0.0, "ocr": 0.0})


def ocr_picture(data: bytes) -> Image.Image:
    """A photo's bytes decoded as OCR reads them (the `ocr_text` asset and the one-photo tagger alike)."""
    # RapidOCR shrinks anything past 2000 px anyway: let the JPEG decoder skip the pixels it would drop
    return decode_image(data, draft_size=2000)


def read_or_failure(engine, image: Image.Image) -> tuple[list[TextBox], str | None]:
    """(boxes, None), or ([], "<error type>: <message>") where the engine raises: RapidOCR raises its own errors on
    odd pictures (ResizeImgError, ...), and one photo's must not fail a chunk (`ocr_chunk`) or a request to tag
    a photo now, which both tag the photo without its text."""
    try:
        return engine.read_photo(image), None
    except Exception as exc:  # noqa: BLE001 - whatever the engine raises is the photo's reason
        return [], f"{type(exc).__name__}: {exc}"


def ocr_chunk(spec: OcrSpec, items: list[tuple[str, str]], reader: MediaReader = LocalFiles()) -> OcrChunkResult:
    """OCR of (media_id, uri) photos: the Ray unit of work. A photo that cannot be decoded, or that the OCR
    engine fails on, is reported with its reason, not raised, so the other photos of the chunk are read."""
    engine = cached_engine(spec)
    result = OcrChunkResult()
    for media_id, uri in items:
        t = time.perf_counter()
        try:
            image = ocr_picture(reader.read(uri))
        except (MediaProblem, OSError) as exc:
            result.errors.append({"media_id": media_id, "uri": uri, "reason": getattr(exc, "reason", str(exc))})
            continue
        t1 = time.perf_counter()
        boxes, failure = read_or_failure(engine, image)
        if failure is not None:  # reported with its reason, read again next run; the chunk goes on
            result.errors.append({"media_id": media_id, "uri": uri, "reason": f"OCR failed: {failure}"})
            continue
        t2 = time.perf_counter()
        result.seconds["decode"] += t1 - t
        result.seconds["ocr"] += t2 - t1
        for box in boxes:
            result.rows.append(
                {
                    "media_id": media_id,
                    "ts": None,
                    "text": box.text,
                    "confidence": box.confidence,
                    "box": list(box.box),
                    "image_w": image.width,
                    "image_h": image.height,
                }
            )
        result.done.append({"media_id": media_id, "ts": None, "boxes": len(boxes), "ms": round((t2 - t1) * 1000, 1)})
    return result
