"""The library teaches the head: the photos a head is surest of become training rows of its next fit.

Why: a new shoot differs from the examples' shoot as a whole (light, backdrop, camera), and the photos of that
shoot that the head already reads with confidence show it what the shoot looks like. One round of
self-training (pseudo-labels) on the library's own photos moves the head towards the shoot it must tag.
On grocery-produce (benchmarks/trust.py: the pipeline's code path, the group-aware split, the ensemble backbone,
the test session in the library as the uploads) the head's test top-1 went from 0.892 / 0.886 / 0.886 to
0.910 / 0.912 / 0.905 on split seeds 0 / 1 / 2, and the holdout's balanced accuracy, its own photos in the pool,
from 0.852 / 0.865 / 0.873 to 0.887 / 0.889 / 0.892; the promise stayed within 0.03 of the test session. In
scratch runs on the same vectors every share from 0.6 to 0.9 gained on test (0.6: +1.1 to +2.0 points, 0.9: +1.8
to +2.2), 0.7 the most on the holdout; the pseudo-labels there were 96-97 % right. A head keeps it only where its
holdout says it wins (ml/heads.py). On a synthetic 1,000-tag facet (benchmarks/catalog_growth.py) it took the
library photos' top-1 from 0.635 to 0.738, for a retrain of 56 s instead of 30.

What it does and does not change: a photo's tags still come from the head alone, never from which other photos
are tagged with it, so a run, a nightly increment and one photo tagged now agree. A head is trained once per
version (its examples and settings) and reused: the library photos it learnt from are those present when it
was trained (their count is in its metrics), and new photos do not retrain it. Photos of a shoot that arrives
later are read by the same head; they gain only as much as earlier shoots resemble them.

Pure ML: no Dagster, no Ray.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ml.strategies import FITTERS, aligned_proba, balanced_accuracy

SHARE = 0.7  # of the pool's photos, the surest become training rows: on grocery 0.6-0.9 all gained, 0.7 most on
# the holdout (the pseudo-labels were 96-97 % right there; 0.9 took in 93 % right ones and gained less)
PER_TAG = 3.0  # a tag takes at most this many pseudo rows per example of its own: no tag floods the fit
POOL_MAX = 20_000  # library photos a head learns from at most (a seeded sample): the fit stays seconds


def pool_sample(n: int, seed: int, most: int = POOL_MAX) -> np.ndarray:
    """Indices of at most `most` of `n` pool photos, a seeded sample in ascending order (all where n <= most)."""
    if n <= most:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=most, replace=False))


def pseudo_labels(
    scores: np.ndarray, examples_per_tag: np.ndarray, share: float = SHARE, per_tag: float = PER_TAG
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, codes): the pool rows to learn from and their tags, from a head's `scores` (n x tags).

    The surest `share` of the rows by top score, each with its top tag, then per tag at most `per_tag` x its
    examples (`examples_per_tag`, one count per tag code), the surest first. Rows in ascending order."""
    scores = np.asarray(scores, dtype=np.float64)
    if not len(scores) or share <= 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    top, codes = scores.max(axis=1), scores.argmax(axis=1)
    order = np.argsort(-top, kind="stable")[: int(np.floor(share * len(scores)))]
    room = np.floor(per_tag * np.asarray(examples_per_tag, dtype=float)).astype(int)
    kept = []
    for row in order:
        if room[codes[row]] > 0:
            room[codes[row]] -= 1
            kept.append(row)
    rows = np.sort(np.array(kept, dtype=int))
    return rows, codes[rows]


def self_train(
    fit: Callable[[np.ndarray, np.ndarray], object],
    score: Callable[[object, np.ndarray], np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    X_pool: np.ndarray,
    n_classes: int,
    share: float = SHARE,
    per_tag: float = PER_TAG,
    first: object | None = None,
) -> tuple[object, dict]:
    """One round: `fit(X, y)` (or `first`, that fit already made), `score(model, X_pool)`, then `fit` again on
    (X, y) plus the surest pool rows with their predicted tag codes. Returns (model, {"pool": pool rows,
    "pseudo_rows": rows learnt from})."""
    model = fit(X, y) if first is None else first
    if not len(X_pool):
        return model, {"pool": 0, "pseudo_rows": 0}
    rows, codes = pseudo_labels(score(model, X_pool), np.bincount(y, minlength=n_classes), share, per_tag)
    if len(rows):
        model = fit(np.vstack([X, X_pool[rows]]), np.concatenate([y, codes]))
    return model, {"pool": int(len(X_pool)), "pseudo_rows": int(len(rows))}


def logreg_scorers(params: dict, seed: int, n_classes: int):
    """(fit, score) of logistic regression with `params` (its C, kept per row) for `self_train`."""
    return (
        lambda X, y: FITTERS["logreg"](X, y, seed, params)[0],
        lambda model, X: aligned_proba(model, X, n_classes),
    )


def logreg_self_trained(
    plain, before: float, X_train, y_train, X_hold, y_hold, X_pool, params: dict, seed: int, n_classes: int
) -> tuple[np.ndarray, dict]:
    """Logistic regression (`plain`: its fit on the train rows; `before`: that fit's holdout balanced accuracy)
    self-trained on the pool and the holdout's own photos (unlabelled: a new shoot in the library), judged on
    the holdout: (its holdout scores, {"used": whether it beats `before`, and the figures})."""
    started = time.perf_counter()
    fit, score = logreg_scorers(params, seed, n_classes)
    model, info = self_train(fit, score, X_train, y_train, np.vstack([X_pool, X_hold]), n_classes, first=plain)
    scores = score(model, X_hold)
    after = balanced_accuracy(y_hold, scores.argmax(axis=1))
    return scores, {
        **info,
        "holdout_balanced_plain": round(float(before), 4),
        "holdout_balanced": round(float(after), 4),
        "seconds": round(time.perf_counter() - started, 2),
        "used": bool(after > before),
    }
