"""Heads of facets with many tags (ml/strategies.py, ml/heads.py): logistic regression trains at all on a
1,000-tag facet, and LightGBM (one tree per tag and round) is left out of the comparison above 200 tags."""

from __future__ import annotations

import numpy as np
import pytest

from ml.heads import train_facet_head
from ml.strategies import FITTERS, LIGHTGBM_MAX_TAGS, LOGREG_C_GRID_LARGE, _make_logreg, aligned_proba


def separated(n_tags: int, per_tag: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors near one random centre per tag: any working classifier gets them right."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_tags, dim))
    y = np.repeat(np.arange(n_tags), per_tag)
    X = centres[y] + 0.2 * rng.normal(size=(len(y), dim))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32), y


def test_logreg_tolerance_shrinks_with_the_tags_so_a_large_facet_is_trained_at_all():
    # lbfgs stops when every gradient entry is below tol, and they shrink like 1 / tags: on the benchmark's
    # 1,000-tag facet (benchmarks/catalog_growth.py) the default 1e-4 stopped it before its first step
    assert _make_logreg(2.0, 2).tol == _make_logreg(2.0, 50).tol == 1e-4  # up to 50 tags: trained as before
    assert _make_logreg(2.0, 1000).tol == pytest.approx(2e-6)
    X, y = separated(300, 3, 64)
    model, params = FITTERS["logreg"](X, y, 0, None)  # the C search over 200 tags: two candidates
    assert params["C"] in LOGREG_C_GRID_LARGE and model.tol == pytest.approx(1e-4 * 20 / 300)
    assert (aligned_proba(model, X, 300).argmax(axis=1) == y).mean() > 0.9  # chance: 0.003


def test_lightgbm_is_not_compared_on_a_facet_with_more_than_200_tags():
    n = LIGHTGBM_MAX_TAGS + 1
    X, y = separated(n, 3, 16)
    tags = np.array([f"t{k:03d}" for k in y])
    hold = np.arange(len(y)) % 3 == 0
    head = train_facet_head("product", X[~hold], tags[~hold], X[hold], tags[hold], strategies=("lightgbm", "prototype"))
    assert head.metrics["skipped_strategies"] == ["lightgbm"]
    assert set(head.metrics["strategies"]) == {"prototype"}
    small = hold & (y < 20)
    rows = small | (~hold & (y < 20))
    few = train_facet_head(
        "product", X[rows & ~hold], tags[rows & ~hold], X[small], tags[small], strategies=("lightgbm", "prototype")
    )
    assert few.metrics["skipped_strategies"] == [] and set(few.metrics["strategies"]) == {"lightgbm", "prototype"}
