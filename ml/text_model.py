"""Printed text learned from the examples themselves: which words and character n-grams of a photo's OCR text
go with which tag, as one more evidence channel ("text") for a facet head's learned combiner (ml/fusion.py).

Why: catalog identifiers (ml/identifiers.py) are matched exactly where a catalog lists them, but most catalogs
list none, while the examples' own print already says a lot: brand words, variant names, model numbers that
look alike differ only by ("H500" against "H750"). A linear text classifier over TF-IDF character n-grams
(2-4, within words: robust to OCR slips and glued tokens) and word unigrams learns them from a few examples per
tag. Its scores for the training rows are *out-of-fold*, folds keeping groups (shoots) whole, for the same
reason as the visual scores: a combiner that sees a text model score the very photos it was fitted on learns to
trust the text too much.

Tag names are weak identifiers: the words of a tag's catalog name or alias (3+ characters, not stop-words)
found in the OCR text add evidence, each word weighted by how few of the facet's tags share it ("Hydra" in two
names counts half). Rows without text get zero evidence: what the combiner learnt for photos without print.

Pure ML code: no Dagster, no Ray.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from ml.identifiers import normalise as fold_confusables
from ml.splits import group_folds

Boxes = Sequence[Sequence[tuple[str, float]]]  # per photo: OCR boxes (text, confidence)

TEXT_C = 10.0  # few, short, L2-normalised documents: a weak penalty keeps the probabilities informative
FOLDS = 5  # out-of-fold text scores, as many as the visual ones (ml/fusion.py out_of_fold_scores)
MIN_NAME_WORD = 3
NAME_WEIGHT = 0.5  # a name word found is weaker evidence than what the examples' print showed
_WORD = re.compile(r"\w+")
# common words of catalog names in the languages catalogs are written in: never evidence of one tag
STOP_WORDS = frozenset(
    "the and for with from new set pack mit und der die das von fur les des pour avec une sur par aux"
    " del con per por los las".split()
)
_FOLDED_STOP_WORDS = frozenset(fold_confusables(w) for w in STOP_WORDS)


def normalise_text(text: str) -> str:
    """NFKC, accents folded, casefolded, whitespace collapsed: 'Thé  NOVA' -> 'the nova'."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(unicodedata.normalize("NFC", plain).casefold().split())


def photo_text(boxes: Sequence[tuple[str, float]]) -> str:
    """One photo's OCR boxes as one normalised document ('' when nothing was read)."""
    return normalise_text(" ".join(text for text, _ in boxes or ()))


def name_words(names: Mapping[str, Sequence[str]] | None, classes: Sequence[str]) -> list[list[dict[str, float]]]:
    """Per class, per name (catalog name, aliases): {folded word: weight}. A word's weight is one over the number
    of the facet's tags whose names have it; words every tag has (and short or stop-words) are left out."""
    names = names or {}
    per_tag = [
        [
            {fold_confusables(w) for w in _WORD.findall(normalise_text(n)) if len(w) >= MIN_NAME_WORD}
            - _FOLDED_STOP_WORDS
            for n in names.get(c, ())
        ]
        for c in classes
    ]
    shared: dict[str, int] = {}
    for tag in per_tag:
        for word in set().union(*tag):
            shared[word] = shared.get(word, 0) + 1
    everywhere = {w for w, k in shared.items() if k == len(classes) > 1}
    return [[{w: 1.0 / shared[w] for w in name - everywhere} for name in tag] for tag in per_tag]


def name_evidence(texts: Sequence[str], words: list[list[dict[str, float]]]) -> np.ndarray:
    """(n, len(words)): per row and tag, the best share (by weight) of one of the tag's names found in the text."""
    out = np.zeros((len(texts), len(words)), dtype=np.float64)
    for i, text in enumerate(texts):
        if not text:
            continue
        found = {fold_confusables(t) for t in _WORD.findall(text)}
        for k, tag in enumerate(words):
            out[i, k] = max(
                (sum(w for word, w in name.items() if word in found) / sum(name.values()) for name in tag if name),
                default=0.0,
            )
    return out


def _pipeline() -> Pipeline:
    features = FeatureUnion(
        [
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, lowercase=False)),
            ("words", TfidfVectorizer(token_pattern=r"(?u)\b\w+\b", sublinear_tf=True, lowercase=False)),
        ]
    )
    classifier = LogisticRegression(C=TEXT_C, max_iter=2000, class_weight="balanced")
    return Pipeline([("features", features), ("classifier", classifier)])


@dataclass
class TextModel:
    """The fitted text evidence of one facet: the classifier over the examples' OCR text (None when fewer than
    two tags had text) and the tags' name words. Picklable; `evidence` puts columns in `classes` order."""

    classes: list[str]
    words: list[list[dict[str, float]]]
    pipeline: Pipeline | None = None
    learned: np.ndarray | None = None  # (len(classes),) True for the tags the classifier knows

    @property
    def has(self) -> np.ndarray:
        """(len(classes),) True where a tag can have text evidence: seen printed in examples, or named."""
        named = np.array([any(name for name in tag) for tag in self.words], dtype=bool)
        return named if self.learned is None else named | self.learned

    def evidence(self, boxes: Boxes) -> np.ndarray:
        """(n, len(classes)) text evidence 0..1 per row (zeros where nothing was read): the classifier's
        probability and the name match, combined as either one showing the tag (noisy-or)."""
        texts = [photo_text(b) for b in boxes]
        out = NAME_WEIGHT * name_evidence(texts, self.words)
        rows = np.flatnonzero([bool(_WORD.search(t)) for t in texts])
        if self.pipeline is not None and len(rows):
            learned = np.zeros_like(out)
            columns = np.asarray(self.pipeline.classes_, dtype=int)
            learned[rows[:, None], columns[None, :]] = self.pipeline.predict_proba([texts[i] for i in rows])
            out = 1.0 - (1.0 - learned) * (1.0 - out)
        return out


def fit_text_model(
    boxes: Boxes, y: np.ndarray, classes: Sequence[str], names: Mapping[str, Sequence[str]] | None = None
) -> TextModel:
    """The text classifier fitted on the rows with text (`y`: codes into `classes`), and the name words."""
    model = TextModel(list(classes), name_words(names, classes))
    texts = [photo_text(b) for b in boxes]
    rows = [i for i, t in enumerate(texts) if _WORD.search(t)]
    y = np.asarray(y, dtype=int)
    if len({int(y[i]) for i in rows}) >= 2:
        model.pipeline = _pipeline().fit([texts[i] for i in rows], y[rows])
        model.learned = np.isin(np.arange(len(classes)), model.pipeline.classes_)
    return model


def out_of_fold_text(
    boxes: Boxes,
    y: np.ndarray,
    classes: Sequence[str],
    names: Mapping[str, Sequence[str]] | None = None,
    groups: Sequence[str] | None = None,
    seed: int = 0,
    folds: int = FOLDS,
) -> np.ndarray:
    """(n, len(classes)) text evidence of each row from a text model fitted without it (nor its group); rows no
    fold scores get the name evidence only, which needs no fitting."""
    boxes = list(boxes)
    y = np.asarray(y, dtype=int)
    out = TextModel(list(classes), name_words(names, classes)).evidence(boxes)  # names only: nothing to fit
    for train_idx, test_idx in group_folds(y, groups, folds, seed):
        model = fit_text_model([boxes[i] for i in train_idx], y[train_idx], classes, names)
        out[test_idx] = model.evidence([boxes[i] for i in test_idx])
    return out


def text_channel(
    ocr_train: Boxes,
    y_train: np.ndarray,
    ocr_hold: Boxes,
    classes: Sequence[str],
    names: Mapping[str, Sequence[str]] | None = None,
    groups: Sequence[str] | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The "text" channel of a facet head: (out-of-fold train evidence, holdout evidence from the model fitted on
    every train row, which tags can have it), or None when no training row has text or no tag can show any."""
    if not any(_WORD.search(photo_text(b)) for b in ocr_train):
        return None
    model = fit_text_model(ocr_train, y_train, classes, names)
    if not model.has.any():
        return None
    return out_of_fold_text(ocr_train, y_train, classes, names, groups, seed), model.evidence(ocr_hold), model.has
