"""From the holdout's figure to the shipped head's: a two-point learning curve.

The holdout measures a head trained on the train split (about 75 % of the examples). The head that ships is
refitted on every example, and with few photos per tag a quarter more data, from shoots it had not seen, is
worth several points: on grocery-produce the holdout said 0.70 for the train-split head, and the refitted
head measured 0.75 on the test session (benchmarks/trust.py). So the promise for a new shoot is projected:
the same strategy refitted on two thirds of the train split's groups (a whole-group subsample, as the holdout
is) gives a second point of the learning curve, and accuracy is extended linearly in log(examples) from
n_train to n_train + n_holdout, never below the measured figure and never above 1. It moves the promise
within a few points of the test session (figures in benchmarks/trust.py); the measured figure stays beside
it and is what the promotion bar judges.

Pure ML code: no Dagster, no Ray.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ml.splits import group_folds


def projected_accuracy(
    fit_and_score: Callable[[np.ndarray], float],
    y_train: np.ndarray,
    groups_train: Sequence[str] | None,
    measured: float,
    n_all: int,
    seed: int,
    repeats: int = 2,
) -> dict:
    """{"top1": projected, "subsample_top1": the second point, "n_subsample"}.

    `fit_and_score(rows)` fits the head's strategy on those train rows and returns its holdout accuracy.
    """
    n_train = len(y_train)
    points = []
    for r in range(repeats):
        folds = group_folds(y_train, groups_train, 3, seed + 101 * (r + 1))
        rows = folds[0][0] if folds else np.arange(n_train)
        if len(np.unique(y_train[rows])) < 2 or len(rows) >= n_train:
            continue
        points.append((fit_and_score(rows), len(rows)))
    if not points or n_all <= n_train:
        return {"top1": round(measured, 4), "subsample_top1": None, "n_subsample": 0}
    sub = float(np.mean([p for p, _ in points]))
    n_sub = float(np.mean([n for _, n in points]))
    slope = (measured - sub) / np.log(n_train / n_sub)
    projected = float(np.clip(measured + slope * np.log(n_all / n_train), measured, 1.0))
    return {"top1": round(projected, 4), "subsample_top1": round(sub, 4), "n_subsample": int(round(n_sub))}
