"""The trained artefact of one facet (`FacetHead`) and how it scores new photos.

`ml/heads.py` trains and chooses heads; this module holds what a trained head is and does at prediction time:
visual scores in class order, the evidence channels it combines (OCR identifiers, text learnt from the
examples, keypoint matches), familiarity, thresholds. A plain picklable dataclass; pure ML, no Dagster or Ray.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ml.fusion import Combiner
from ml.keypoints import Features, keypoint_evidence, top_candidates
from ml.strategies import aligned_proba, as_matrix, familiarity, text_evidence
from ml.text_model import TextModel


# ---------------------------------------------------------------------------------------------- artefact
@dataclass
class StrategyResult:
    """Holdout score of one strategy fitted on train; kept in the head's metrics for the model card."""

    strategy: str
    accuracy: float
    balanced_accuracy: float
    n_holdout: int
    fit_seconds: float


@dataclass
class FacetHead:
    """The trained artefact of one facet: model, class order, per-tag thresholds and how it was chosen.

    `model` was fitted on integer codes into `classes`; always go through `predict_scores`, which puts the
    estimator's columns back into `classes` order.
    """

    facet: str
    strategy: str
    classes: list[str]
    model: object
    thresholds: dict[str, float]
    metrics: dict = field(default_factory=dict)
    # familiarity: cosine similarity to the nearest class mean of the examples. `min_familiarity` is the least
    # familiar holdout example's; a video frame below it (an empty room, a crowd, a title card) is unlike any
    # example, so nothing is recognised there, whatever the classifier's softmax says.
    prototypes: np.ndarray | None = None
    min_familiarity: float | None = None
    # combined heads ("<visual>+ocr", "+keypoints"): the learned combiner, the identifiers it matches OCR text
    # against and the examples' ORB features it matches photos against, per tag
    combiner: Combiner | None = None
    identifiers: dict[str, list[str]] | None = None
    # the chosen strategy's holdout predictions, in holdout row order: {true, predicted, score} (the
    # evaluation report's per-tag precision/recall and confusions; the caller may add media ids)
    holdout: list[dict] | None = None
    gallery: dict[str, list[tuple[str, Features]]] | None = None
    # the embeddings the head reads (a backbone's model id); set by the caller that chose the backbone
    model_id: str | None = None
    # "+text" heads: the classifier over the examples' OCR text and the tags' name words (ml/text_model.py)
    text_model: TextModel | None = None

    @property
    def channels(self) -> tuple[str, ...]:
        return self.combiner.channels if self.combiner is not None else ()

    @property
    def reads_text(self) -> bool:
        return "ocr" in self.channels or "text" in self.channels

    @property
    def matches_keypoints(self) -> bool:
        return "keypoints" in self.channels

    def evidence(
        self,
        visual: np.ndarray,
        boxes: Sequence[Sequence[tuple[str, float]]] | None = None,
        features: Sequence[Features | None] | None = None,
    ) -> dict[str, np.ndarray]:
        """The evidence channels this head combines, from OCR boxes and ORB features of the same rows."""
        out: dict[str, np.ndarray] = {}
        if "ocr" in self.channels and boxes is not None:
            out["ocr"] = self.text_evidence(boxes)
        if "text" in self.channels and boxes is not None and self.text_model is not None:
            out["text"] = self.text_model.evidence(boxes)
        if self.matches_keypoints and features is not None and self.gallery:
            out["keypoints"] = keypoint_evidence(features, self.gallery, self.classes, top_candidates(visual))
        return out

    def text_evidence(self, boxes: Sequence[Sequence[tuple[str, float]]]) -> np.ndarray:
        """(n, len(classes)) text evidence from each row's OCR boxes (zeros for a head that reads no text)."""
        if self.identifiers is None:
            return np.zeros((len(boxes), len(self.classes)))
        return text_evidence(boxes, self.identifiers, self.classes)

    def familiarity(self, X: np.ndarray) -> np.ndarray:
        """(n,) cosine similarity of each row to the nearest class mean (1.0 everywhere when unknown)."""
        X = as_matrix(X, "X")
        if self.prototypes is None or len(X) == 0:
            return np.ones(len(X), dtype=np.float32)
        return familiarity(self.prototypes, X)

    def familiar(self, X: np.ndarray) -> np.ndarray:
        """(n,) True where a row is at least as like the examples as the least familiar holdout example."""
        if self.min_familiarity is None:
            return np.ones(len(X), dtype=bool)
        return self.familiarity(X) >= self.min_familiarity

    def predict_scores(
        self,
        X: np.ndarray,
        boxes: Sequence[Sequence[tuple[str, float]]] | None = None,
        features: Sequence[Features | None] | None = None,
    ) -> np.ndarray:
        """(n, len(classes)) probabilities, rows summing to 1, columns in `classes` order.

        `boxes` (OCR) and `features` (ORB) of the same rows feed a combined head; without them it scores as
        if no text or keypoints were found (what it learnt for photos without readable print).
        """
        visual = self.visual_scores(X)
        return self.combine(visual, self.evidence(visual, boxes, features))

    def visual_scores(self, X: np.ndarray) -> np.ndarray:
        """(n, len(classes)) scores of the visual model alone."""
        X = as_matrix(X, "X")
        if len(X) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float64)
        return aligned_proba(self.model, X, len(self.classes))

    def combine(self, visual: np.ndarray, evidence: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """The head's scores from visual scores and evidence channels (the visual scores for a plain head)."""
        return visual if self.combiner is None or len(visual) == 0 else self.combiner.scores(visual, evidence)

    def predict(
        self,
        X: np.ndarray,
        boxes: Sequence[Sequence[tuple[str, float]]] | None = None,
        features: Sequence[Features | None] | None = None,
    ) -> list[tuple[str, float, str]]:
        """Top-1 per row as (tag_id, score, status); status 'applied' if score >= the tag's threshold."""
        scores = self.predict_scores(X, boxes, features)
        out: list[tuple[str, float, str]] = []
        for row, k in enumerate(scores.argmax(axis=1)):
            tag_id, score = self.classes[k], float(scores[row, k])
            out.append((tag_id, score, "applied" if score >= self.thresholds[tag_id] else "review"))
        return out


def predict_table(
    head: FacetHead,
    media_ids: Sequence[str],
    X: np.ndarray,
    boxes: Sequence[Sequence[tuple[str, float]]] | None = None,
    features: Sequence[Features | None] | None = None,
    top: int = 3,
) -> list[dict]:
    """Top-1 prediction per media as rows ready for a table: {media_id, facet, tag_id, score, status,
    candidates}; `candidates` (JSON) holds the best `top` tags with their scores: what a reviewer picks from."""
    media_ids = list(media_ids)
    X = as_matrix(X, "X")
    if len(media_ids) != len(X):
        raise ValueError(f"{len(media_ids)} media_ids but {len(X)} embedding rows")
    scores = head.predict_scores(X, boxes, features)
    best = np.argsort(-scores, axis=1, kind="stable")[:, :top]
    rows = []
    for media_id, order, row in zip(media_ids, best, scores, strict=True):
        tag_id, score = head.classes[order[0]], float(row[order[0]])
        rows.append(
            {
                "media_id": media_id,
                "facet": head.facet,
                "tag_id": tag_id,
                "score": score,
                "status": "applied" if score >= head.thresholds[tag_id] else "review",
                "candidates": json.dumps([[head.classes[k], round(float(row[k]), 4)] for k in order]),
            }
        )
    return rows
