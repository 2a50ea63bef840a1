"""A learned combiner of the picture and other evidence (printed text, keypoints) into one score per tag.

Why learned: how much a read model number should outweigh the picture depends on the catalog (how often
OCR misreads, how alike the products look, how many tags have identifiers at all); a hand-set weight is
right for one library and wrong for the next. The combiner is a logistic regression over (photo, tag)
pairs: "is this tag the photo's tag?", from features that mean the same for every tag (the visual score,
its margin over the best other tag, the text evidence and its margin, whether the tag has identifiers).
Being tag-agnostic, it learns from a few dozen examples and applies to tags it saw few of. Scores are the
pair logits soft-maxed over the facet's tags, so they rank and threshold like any head's.

It is trained on *out-of-fold* visual scores (each training photo scored by a visual model that did not
see it), otherwise it would learn to trust an overfit picture score.

Pure ML code: no Dagster, no Ray.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.linear_model import LogisticRegression

from ml.splits import group_folds
from ml.strategies import row_space

VISUAL_FEATURES = ("visual", "visual_log", "visual_margin", "visual_top")
CHANNEL_FEATURES = ("evidence", "margin", "has")


def _margin(M: np.ndarray) -> np.ndarray:
    """M[i, c] minus the best other entry of row i."""
    if M.shape[1] < 2:
        return M.copy()
    order = np.sort(M, axis=1)
    best, second = order[:, -1:], order[:, -2:-1]
    other_best = np.where(M >= best, second, best)
    return M - other_best


def pair_features(
    visual: np.ndarray, evidence: Mapping[str, np.ndarray], has: Mapping[str, np.ndarray]
) -> np.ndarray:
    """(n * C, features) of every (row, tag) pair, row-major: the visual ones, then 3 per evidence channel
    (its value, its margin over the row's best other tag, whether the tag can have that evidence at all)."""
    n, c = visual.shape
    columns = [
        visual,
        np.log(np.clip(visual, 1e-6, 1.0)),
        _margin(visual),
        (visual >= visual.max(axis=1, keepdims=True)).astype(np.float64),
    ]
    for name in sorted(has):
        present = np.broadcast_to(np.asarray(has[name], dtype=np.float64)[None, :], (n, c))
        values = evidence.get(name)
        values = np.zeros((n, c)) if values is None else np.asarray(values, dtype=np.float64)
        columns += [values, _margin(values) * present, present]
    return np.stack([col.reshape(-1) for col in columns], axis=1)


class Combiner:
    """Fitted pair model over the visual scores and the evidence channels it was given ({name: has (C,)})."""

    def __init__(self, has: Mapping[str, np.ndarray], C: float = 1.0):
        self.has = {name: np.asarray(v, dtype=bool) for name, v in has.items()}
        self.model = LogisticRegression(C=C, max_iter=2000, class_weight="balanced")

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(sorted(self.has))

    def fit(self, visual: np.ndarray, evidence: Mapping[str, np.ndarray], y: np.ndarray) -> Combiner:
        n, c = visual.shape
        target = np.zeros((n, c), dtype=int)
        target[np.arange(n), np.asarray(y, dtype=int)] = 1
        self.model.fit(pair_features(visual, evidence, self.has), target.reshape(-1))
        return self

    def scores(self, visual: np.ndarray, evidence: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """(n, C) probabilities; a missing channel counts as "no evidence found" (zeros)."""
        n, c = visual.shape
        logits = self.model.decision_function(pair_features(visual, evidence or {}, self.has)).reshape(n, c)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def weights(self) -> dict[str, float]:
        """The learned weight of each feature: what the report shows as "why"."""
        names = list(VISUAL_FEATURES) + [f"{ch}_{f}" for ch in self.channels for f in CHANNEL_FEATURES]
        return {name: round(float(w), 4) for name, w in zip(names, self.model.coef_[0], strict=True)}


def out_of_fold_scores(
    fit, X: np.ndarray, y: np.ndarray, n_classes: int, seed: int, folds: int = 5, groups=None, linear: bool = False
) -> np.ndarray:
    """(n, n_classes) scores of each row by a model fitted without it. `fit(X, y) -> predict(X) -> scores`.

    Folds are stratified and, with `groups` (shoots, look-alike clusters), never split a group: a combiner
    that learns from scores of near-copies of the training photos learns to trust the picture too much.
    Without groups their number is capped by the rarest class (at least 2). `linear`: `fit` is an L2-penalised
    linear model, whose scores are the same on the rows' coordinates in their span (ml/strategies.py row_space),
    a fit with one feature per row instead of per dimension.
    """
    out = np.zeros((len(y), n_classes), dtype=np.float64)
    cuts = group_folds(y, groups, folds, seed)
    if not cuts:
        raise ValueError("too few examples per tag for out-of-fold scores")
    for train_idx, test_idx in cuts:
        X_fit, X_out = row_space(X[train_idx], X[test_idx]) if linear else (X[train_idx], X[test_idx])
        out[test_idx] = fit(X_fit, y[train_idx])(X_out)
    return out
