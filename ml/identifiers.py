"""Catalog identifiers (model numbers, SKUs, variant words) matched against OCR text.

OCR confuses O/0, I/1/l, S/5 and B/8 on small print, drops or invents dashes and spaces, and loses accents;
a catalog writes "AS-100" where the box says "AS 1OO". Both sides are normalised the same way (accents
stripped, upper case, confusable letters folded to one symbol, separators removed), then compared with
rapidfuzz. Each tag gets the best similarity of any of its identifiers to any OCR token or line (0..1),
weighted by the OCR confidence: that is the text evidence a learned combiner weighs against the picture.

A short identifier ("R5") is only compared with whole tokens, never searched inside a line, so "R5" does
not fire on "R500"; longer ones (4+ symbols after normalising) are also searched inside lines, because OCR
often glues neighbouring words ("SKU-4485GF-1").

Pure ML code: no Dagster, no Ray.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

from rapidfuzz import fuzz

# confusable shapes folded to one symbol (what a small-print OCR mixes up)
_FOLD = str.maketrans({"O": "0", "Q": "0", "D": "0", "I": "1", "L": "1", "|": "1", "S": "5", "B": "8", "Z": "2"})
_SEPARATORS = re.compile(r"[\s\-_./·:,;'\"()\[\]#]+")
MIN_INNER = 4  # identifiers at least this long (normalised) are also looked for inside longer lines


def normalise(text: str) -> str:
    """'AS-1OO' and 'as 100' -> 'A5100': accents off, upper case, confusables folded, separators removed.
    Apply it to both the identifier and the OCR text."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SEPARATORS.sub("", plain.upper()).translate(_FOLD)


def tokens(line: str) -> list[str]:
    return [t for t in (normalise(p) for p in _SEPARATORS.split(line)) if t]


def identifier_similarity(identifier: str, line: str) -> float:
    """0..1: how well one OCR line shows one identifier."""
    ident = normalise(identifier)
    if not ident:
        return 0.0
    whole = normalise(line)
    candidates = [whole, *tokens(line)]
    # neighbouring tokens joined: "AS 100" read as two tokens is still "AS100"
    parts = tokens(line)
    candidates += [a + b for a, b in zip(parts, parts[1:], strict=False)]
    best = max((fuzz.ratio(ident, c) for c in candidates if c), default=0.0)
    if len(ident) >= MIN_INNER and len(whole) > len(ident):
        best = max(best, fuzz.partial_ratio(ident, whole))
    return best / 100.0


def text_scores(boxes: Iterable[tuple[str, float]], identifiers: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """{tag_id: evidence 0..1} from OCR boxes (text, confidence) and each tag's identifiers: the best
    similarity of any identifier to any box, times that box's confidence. Tags without identifiers are left out."""
    boxes = list(boxes)
    out: dict[str, float] = {}
    for tag_id, idents in identifiers.items():
        if not idents:
            continue
        out[tag_id] = max(
            (identifier_similarity(ident, text) * conf for ident in idents for text, conf in boxes), default=0.0
        )
    return out
