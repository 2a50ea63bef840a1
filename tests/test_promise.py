"""The promise for a new shoot, checked against one: a small generated two-shoot library in embedding space.

Every tag is photographed on several days; photos of one day are near-copies, and each day's light and angle
shift a tag's look towards other tags. Examples are days 0-7 (with the day as the manifest's `group`), the new
shoot is three more days. The pipeline's own code path (ml/groups.py, ml/splits.py, ml/heads.py) promises a
top-1 and an applied precision; the new shoot measures them. A random split of the same examples is the
counter-example: it promises what the next shoot does not deliver.
"""

from __future__ import annotations

import numpy as np

from ml.calibration import top_predictions
from ml.groups import PhotoFacts, holdout_units, shoot_groups
from ml.heads import train_facet_head
from ml.splits import group_holdout_split, holdout_split

TAGS, DIM, PER_DAY = 24, 32, 5


def shoot(rng: np.random.Generator, means: np.ndarray, day: int):
    X, y, group = [], [], []
    for t in range(TAGS):
        drift = rng.normal(size=DIM)
        drift *= 0.6 / np.linalg.norm(drift)
        drift += rng.uniform(0, 0.7) * (means[rng.integers(TAGS)] - means[t])  # this day, it looks like another
        for _ in range(PER_DAY):
            noise = rng.normal(size=DIM)
            X.append(means[t] + drift + 0.1 * noise / np.linalg.norm(noise))
            y.append(f"tag{t:02d}")
            group.append(f"day{day}")
    return np.array(X), np.array(y), group


def library(seed: int):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(TAGS, DIM))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    days = [shoot(rng, means, d) for d in range(8)]
    new = [shoot(rng, means, d) for d in range(8, 11)]
    stack = lambda parts: (np.vstack([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))  # noqa: E731
    X, y = stack(days)
    return X, y, [g for p in days for g in p[2]], *stack(new)


def promise_and_truth(X, y, days, X_new, y_new, grouped: bool, learn_from_new: bool = False) -> tuple[dict, dict]:
    """`learn_from_new`: the new shoot is in the library when the head trains, as its pool (ml/self_training.py)."""
    ids = [f"photo{i}" for i in range(len(y))]
    if grouped:
        photos = [PhotoFacts(ids[i], f"/shoots/{ids[i]}.jpg", (("product", y[i]),), days[i]) for i in range(len(y))]
        units, _, _ = holdout_units(photos, shoot_groups(photos, X), X)
        split, groups = group_holdout_split(ids, ["product"] * len(y), list(y), units, 0.25, 0), np.array(units)
    else:
        split, groups = holdout_split(y, 0.25, 0), None
    tr = split == "train"
    head = train_facet_head(
        "product", X[tr], y[tr], X[~tr], y[~tr], strategies=("logreg", "prototype"),
        groups_train=None if groups is None else groups[tr], X_pool=X_new if learn_from_new else None,
    )
    pred, top, correct = top_predictions(head.predict_scores(X_new), list(y_new), head.classes)
    applied = np.array([top[i] >= head.thresholds[head.classes[k]] for i, k in enumerate(pred)])
    truth = {"top1": correct.mean(), "applied_precision": correct[applied].mean() if applied.any() else None}
    return {**head.metrics["new_shoot"], "self_training": head.metrics.get("self_training")}, truth


def test_the_group_aware_promise_holds_on_the_next_shoot_and_a_random_split_does_not():
    gaps, random_gaps, precision = [], [], []
    for seed in range(6):
        X, y, days, X_new, y_new = library(seed)
        new, truth = promise_and_truth(X, y, days, X_new, y_new, grouped=True)
        gaps.append(new["top1_projected"] - truth["top1"])
        if truth["applied_precision"] is not None:
            precision.append((new["applied_precision"], truth["applied_precision"]))
        naive, _ = promise_and_truth(X, y, days, X_new, y_new, grouped=False)
        random_gaps.append(naive["top1"] - truth["top1"])
    assert abs(np.mean(gaps)) <= 0.08, gaps  # measured: -0.11 to +0.02, mean -0.04 (seeds 0-5)
    # near-copies on both sides: the random split promises what the next shoot does not deliver (+0.17 to +0.28)
    assert np.mean(random_gaps) >= 0.15 and all(r > abs(g) for r, g in zip(random_gaps, gaps, strict=True))
    # where the thresholds apply anything, the promised applied precision is the next shoot's, within noise
    # of a 240-row holdout (measured: 0.967 / 0.891, 0.955 / 0.932, 1.0 / 1.0 on seeds 1, 3 and 5)
    assert len(precision) >= 3 and all(got >= 0.85 for _, got in precision), precision  # target 0.9
    assert all(abs(promised - got) <= 0.08 for promised, got in precision), precision
    assert np.mean([abs(promised - got) for promised, got in precision]) <= 0.05, precision


def test_the_promise_holds_when_the_head_learns_from_the_new_shoot_in_the_library():
    gaps, precision, used = [], [], []
    for seed in range(6):
        X, y, days, X_new, y_new = library(seed)
        new, truth = promise_and_truth(X, y, days, X_new, y_new, grouped=True, learn_from_new=True)
        gaps.append(new["top1_projected"] - truth["top1"])
        used.append(new["self_training"]["used"])
        if truth["applied_precision"] is not None:
            precision.append((new["applied_precision"], truth["applied_precision"]))
    assert sum(used) >= 4, used  # measured: kept on 5 of 6 seeds (the holdout said no on seed 2)
    assert abs(np.mean(gaps)) <= 0.08, gaps  # measured: -0.10 to +0.02, mean -0.04
    # measured: applied precision promised on 5 seeds (3 without the pool), 0.89-1.0 on the new shoot
    assert len(precision) >= 4 and all(got >= 0.85 for _, got in precision), precision
    assert all(abs(promised - got) <= 0.08 for promised, got in precision), precision
    assert np.mean([abs(promised - got) for promised, got in precision]) <= 0.05, precision


def test_the_projection_extends_the_error_as_a_power_law_of_the_examples():
    from ml.projection import projected_accuracy

    y = np.repeat(np.arange(3), 100)
    groups = [f"g{i // 10}" for i in range(300)]
    seen = []

    def fit_and_score(rows):  # the subsample (two thirds of the groups) does worse: 0.6 against 0.7
        seen.append(len(rows))
        return 0.6

    out = projected_accuracy(fit_and_score, y, groups, measured=0.7, n_all=400, seed=0)
    n_sub = out["n_subsample"]
    assert seen and 150 <= n_sub <= 250 and out["subsample_top1"] == 0.6
    alpha = np.log(0.4 / 0.3) / np.log(300 / n_sub)
    assert out["alpha"] == round(alpha, 3)
    assert out["top1"] == round(1 - 0.3 * (300 / 400) ** alpha, 4)
    straight = 0.7 + (0.7 - 0.6) / np.log(300 / n_sub) * np.log(400 / 300)
    assert 0.7 < out["top1"] < straight - 0.01  # less than a straight line in log(examples) would say
    # a subsample that did better says nothing learnable: the measured figure stands
    assert projected_accuracy(lambda rows: 0.8, y, groups, 0.7, 400, 0)["top1"] == 0.7
    # nothing more to learn from: the measured figure
    assert projected_accuracy(fit_and_score, y, groups, 0.7, 300, 0)["top1"] == 0.7
