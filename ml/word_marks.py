"""Word marks: a tag's name or identifier read by OCR on a photo or frame, as a region with its box.

A sponsor's logo is often its name in a typeface; a product's box prints its model number. OCR (ml/ocr.py)
already reads every photo's text with each box's corners; here a box whose text matches one of a tag's
identifiers (ml/identifiers.py: confusables folded, fuzzy) becomes a detection of the tag, scored by the match
times OCR's confidence, boxed where the text is. The tags' names and aliases count as identifiers: a word mark
is a name. Whether this channel pays is judged like the others, on the examples' group-aware folds
(ml/region_training.py).

Pure ML code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ml.identifiers import identifier_similarity
from ml.regions import Detection

MIN_SIMILARITY = 0.8  # a looser match is another word


def word_mark_detections(
    boxes: Iterable[tuple[str, float, Sequence[float], int | None, int | None]],
    identifiers: Mapping[str, Sequence[str]],
) -> list[Detection]:
    """Per tag its best matching text box as a Detection (score = similarity x confidence), from OCR rows
    (text, confidence, the box's 4 corners in pixels, the read image's width and height). A box of an image
    whose size was not recorded is skipped: its place on the photo is unknown."""
    best: dict[str, Detection] = {}
    for text, confidence, corners, width, height in boxes:
        if not width or not height or len(corners) < 8:
            continue
        xs, ys = corners[0::2], corners[1::2]
        x0, y0 = max(0.0, min(xs) / width), max(0.0, min(ys) / height)
        box = (x0, y0, min(1.0, max(xs) / width) - x0, min(1.0, max(ys) / height) - y0)
        for tag, names in identifiers.items():
            similarity = max((identifier_similarity(n, text) for n in names), default=0.0)
            score = similarity * float(confidence)
            if similarity >= MIN_SIMILARITY and (tag not in best or score > best[tag].score):
                best[tag] = Detection(tag, score, box, 0)
    return sorted(best.values(), key=lambda d: -d.score)
