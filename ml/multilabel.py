"""Multi-label facets: any number of a facet's tags on one photo (sponsors, rental inventory), or none of them.

A single-label head (ml/facet_head.py) picks one tag per photo with a softmax: right for a colourway, wrong for
an event photo with three sponsors' banners or none. Here every tag gets its own binary head (logistic
regression on the embeddings, one-vs-rest): its positives are the example photos labelled with it, its
negatives every other example photo of the facet, which includes other tags' photos and photos labelled
`none` (the explicit "no sponsor here" examples). Scores are independent probabilities, so a photo can clear
several tags' thresholds, or none: a photo with no sponsor gets no sponsor tag.

Thresholds follow ml/calibration.py's rule on the group-aware holdout: the facet's threshold is the lowest score
at which the Wilson lower bound of the precision of the holdout's (photo, tag) pairs at or above it reaches
`target_precision`; a tag whose own pairs show it is worse (upper bound below the target) gets a higher
threshold of its own. Precision over pairs does not keep photos with none of the tags clean (one wrong tag on
each of a few empty photos is still a small share of the pairs), so the thresholds are also raised until at
most `none_rate` (5 %) of the holdout's empty photos would get a tag. A pair is a candidate once its head says
yes (score >= 0.5); a candidate under its threshold goes to review, above it is applied. Everything is measured
on holdout groups the heads never saw.

Pure ML code: no Dagster, no Ray.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression

from ml.calibration import NEVER, _lowest_qualifying, wilson_interval

NONE = "none"  # the label of an explicit negative example: none of the facet's tags is on the photo
CANDIDATE = 0.5  # a tag's head says yes: applied at or above the tag's threshold, else sent to review
NONE_RATE = 0.05  # at most this share of photos with none of the tags may get one applied


@dataclass
class MultiLabelHead:
    facet: str
    tags: list[str]
    coef: np.ndarray  # (tags, dim)
    intercept: np.ndarray  # (tags,)
    thresholds: dict[str, float]
    metrics: dict = field(default_factory=dict)

    def scores(self, X: np.ndarray) -> np.ndarray:
        """(photos, tags) probabilities, each tag's on its own."""
        z = np.asarray(X, dtype=np.float64) @ self.coef.T + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def predict(self, X: np.ndarray) -> list[list[tuple[str, float, str]]]:
        """Per photo, (tag, score, status) of every candidate tag, best first: `applied` at or above the tag's
        threshold, `review` below it; [] when no tag's head says yes."""
        out = []
        for row in self.scores(X):
            found = [
                (tag, float(s), "applied" if s >= self.thresholds[tag] else "review")
                for tag, s in zip(self.tags, row, strict=True)
                if s >= CANDIDATE
            ]
            out.append(sorted(found, key=lambda t: -t[1]))
        return out


def label_matrix(labels: Sequence[set[str]], tags: Sequence[str]) -> np.ndarray:
    """(photos, tags) 0/1: which tags each photo shows (a `none` photo: a row of zeros)."""
    index = {t: k for k, t in enumerate(tags)}
    Y = np.zeros((len(labels), len(tags)), dtype=np.int8)
    for i, found in enumerate(labels):
        for tag in found - {NONE}:
            Y[i, index[tag]] = 1
    return Y


def _none_floor(scores: np.ndarray, Y: np.ndarray, none_rate: float, candidate: float = CANDIDATE) -> float:
    """Lowest threshold (one for all tags) at which at most `none_rate` of the photos with no tag would get one."""
    empty = ~Y.astype(bool).any(axis=1)
    if not empty.any():
        return candidate
    top = np.sort(scores[empty].max(axis=1))[::-1]  # each empty photo's best wrong score, highest first
    allowed = int(np.floor(none_rate * len(top)))  # that many may stay at or above the threshold
    return candidate if allowed >= len(top) else float(np.nextafter(top[allowed], 2.0))


def calibrate_multilabel(
    scores: np.ndarray,
    Y: np.ndarray,
    tags: Sequence[str],
    target_precision: float,
    confidence: float = 0.95,
    none_rate: float = NONE_RATE,
    floor: float = CANDIDATE,
) -> dict[str, float]:
    """Per-tag thresholds from holdout scores and truth (see the module's docstring); NEVER where no score
    reaches the target (that tag is always reviewed). `floor`: the score at which a pair becomes a candidate
    (0.5 for the binary heads; ml/region_head.py's detections start lower)."""
    candidate = scores >= floor
    pooled = _lowest_qualifying(scores[candidate], Y[candidate].astype(bool), target_precision, confidence)
    pooled = max(pooled, _none_floor(scores, Y, none_rate, floor))
    thresholds = {}
    for k, tag in enumerate(tags):
        mine = candidate[:, k] & (scores[:, k] >= pooled)
        t = pooled
        if mine.any():
            upper = wilson_interval(int(Y[mine, k].sum()), int(mine.sum()), confidence)[1]
            if upper < target_precision:
                own = candidate[:, k]
                t = max(pooled, _lowest_qualifying(scores[own, k], Y[own, k].astype(bool), target_precision, None))
        thresholds[str(tag)] = float(max(t, floor))
    return thresholds


def applied_figures(applied: np.ndarray, Y: np.ndarray, tags: Sequence[str]) -> dict:
    """What an applied (photos, tags) matrix gives against the truth `Y`: applied precision (with its Wilson
    interval) and recall per tag and pooled, the share of photos with none of the tags that got one anyway, and
    exact-set accuracy (every photo's applied set equals its truth)."""
    applied, truth = applied.astype(bool), Y.astype(bool)
    per_tag = {}
    for k, tag in enumerate(tags):
        tp = int((applied[:, k] & truth[:, k]).sum())
        per_tag[tag] = {
            "n": int(truth[:, k].sum()),
            "applied": int(applied[:, k].sum()),
            "precision": tp / applied[:, k].sum() if applied[:, k].any() else None,
            "recall": tp / truth[:, k].sum() if truth[:, k].any() else None,
        }
    tp, n_applied, n_true = int((applied & truth).sum()), int(applied.sum()), int(truth.sum())
    empty = ~truth.any(axis=1)
    low, high = wilson_interval(tp, n_applied) if n_applied else (0.0, 1.0)
    return {
        "applied_precision": tp / n_applied if n_applied else None,
        "applied_precision_low": low,
        "applied_precision_high": high,
        "applied_recall": tp / n_true if n_true else None,
        "none_photos": int(empty.sum()),
        "none_false_positive_rate": float(applied[empty].any(axis=1).mean()) if empty.any() else None,
        "exact_set_accuracy": float((applied == truth).all(axis=1).mean()) if len(applied) else None,
        "per_tag": per_tag,
    }


def evaluate(head: MultiLabelHead, X: np.ndarray, Y: np.ndarray) -> dict:
    """`applied_figures` of the head's thresholds on (X, Y)."""
    S = head.scores(X)
    applied = np.column_stack([S[:, k] >= head.thresholds[t] for k, t in enumerate(head.tags)]) if len(X) else Y
    return {"n_photos": len(X), **applied_figures(applied, Y, head.tags)}


def train_multilabel_head(
    facet: str,
    X_train: np.ndarray,
    labels_train: Sequence[set[str]],
    X_hold: np.ndarray,
    labels_hold: Sequence[set[str]],
    target_precision: float = 0.95,
    C: float = 1.0,
    seed: int = 0,
) -> MultiLabelHead:
    """One binary head per tag from the train photos; thresholds and figures from the holdout photos (groups
    the heads never saw: the caller splits, ml/splits.py). Labels: each photo's set of tags, {"none"} or set()
    for a photo with none of them."""
    tags = sorted({t for found in labels_train for t in found} - {NONE})
    if len(tags) == 0:
        raise ValueError(f"facet {facet!r}: no example shows any tag")
    Y_train, Y_hold = label_matrix(labels_train, tags), label_matrix(labels_hold, tags)
    coef, intercept = [], []
    for k, tag in enumerate(tags):
        y = Y_train[:, k]
        if y.min() == y.max():
            raise ValueError(f"facet {facet!r}: tag {tag!r} needs photos with and without it to learn from")
        model = LogisticRegression(C=C, class_weight="balanced", max_iter=2000, random_state=seed)
        model.fit(X_train, y)
        coef.append(model.coef_[0])
        intercept.append(model.intercept_[0])
    head = MultiLabelHead(facet, tags, np.array(coef), np.array(intercept), {t: NEVER for t in tags})
    if len(X_hold):
        head.thresholds = calibrate_multilabel(head.scores(X_hold), Y_hold, tags, target_precision)
        head.metrics = evaluate(head, X_hold, Y_hold)
    head.metrics.update(target_precision=target_precision, n_train=len(X_train), n_holdout=len(X_hold))
    return head
