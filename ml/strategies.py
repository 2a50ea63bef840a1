"""The visual strategies a facet head compares, and the helpers every head shares.

- logistic regression on L2-normalised embeddings, its C chosen on an inner split that keeps groups (shoots,
  look-alike clusters: ml/groups.py) on one side, as in the CLIP linear probe;
- LightGBM on a PCA projection;
- nearest class mean (prototype), the no-tuning baseline the others must beat.

Also the evidence helpers shared by training and tagging: galleries of keypoint features, OCR text evidence,
class means and familiarity. Pure ML: importable without Dagster or Ray.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from lightgbm import LGBMClassifier
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from ml.identifiers import text_scores
from ml.keypoints import MIN_MATCHES, Features
from ml.splits import group_folds, holdout_split

STRATEGIES: tuple[str, ...] = ("logreg", "lightgbm", "prototype")
# Tie-break when strategies score the same on holdout: fewest fitted parameters first (prototype has none to
# tune, logreg one linear layer, lightgbm hundreds of trees), because a tie on a small holdout says nothing
# about which generalises better and the simpler model overfits less.
SIMPLICITY_ORDER: tuple[str, ...] = ("prototype", "logreg", "lightgbm")
# 30 and 100 because the grocery-produce probe picks C of 128-512 on L2-normalised features
LOGREG_C_GRID: tuple[float, ...] = (0.1, 0.5, 2.0, 10.0, 30.0, 100.0)
LOGREG_FALLBACK_C = 2.0
PROTOTYPE_TEMPERATURE = 20.0
# Inner C search needs >=2 train and >=1 validation example per class, else C is guessed from noise.
_MIN_PER_CLASS_FOR_INNER_SPLIT = 3

Fitter = Callable[..., tuple[object, dict]]  # (X, y, seed, params, groups=None) -> (model, params)


def _l2_normalise(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, 1e-12)


class PrototypeClassifier:
    """Nearest class mean under cosine similarity; scores are softmax(cos * temperature).

    Why: with a few examples per tag the class mean is the lowest-variance estimate available and needs no
    tuning - it is the baseline the fitted heads have to beat. The temperature turns cosine gaps (small on
    the sphere) into usable probabilities, like CLIP's logit scale.
    """

    def __init__(self, temperature: float = PROTOTYPE_TEMPERATURE) -> None:
        self.temperature = float(temperature)

    def fit(self, X: np.ndarray, y: np.ndarray) -> PrototypeClassifier:
        X = np.asarray(X, dtype=np.float64)
        self.classes_ = np.unique(y)
        means = np.stack([X[y == c].mean(axis=0) for c in self.classes_])
        self.prototypes_ = _l2_normalise(means)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        logits = _l2_normalise(np.asarray(X, dtype=np.float64)) @ self.prototypes_.T * self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)


def aligned_proba(model: object, X: np.ndarray, n_classes: int) -> np.ndarray:
    """Scores in head class order: estimators only know the integer codes they saw (`classes_`)."""
    proba = model.predict_proba(X)  # type: ignore[attr-defined]
    out = np.zeros((len(X), n_classes), dtype=np.float64)
    out[:, np.asarray(model.classes_, dtype=int)] = proba  # type: ignore[attr-defined]
    return out


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_true == y_pred)) if len(y_true) else float("nan")


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over classes present in y_true, so a holdout lacking a tag is scored on what it has."""
    present = np.unique(y_true)
    if len(present) == 0:
        return float("nan")
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in present]))


# A facet with more tags than this does not compare LightGBM: multiclass boosting grows one tree per tag per round
# (150,000 trees for 1,000 tags: minutes), and with ~10 examples a tag it was never close to the best (holdout
# top-1 0.05 against 0.95 for logreg on 100 synthetic tags, 0.02 against 0.50 on 1,000: benchmarks/catalog_growth.py)
LIGHTGBM_MAX_TAGS = 200
# lbfgs stops when every gradient entry of the mean loss is below `tol`; those entries shrink like 1 / tags, so
# on a 1,000-tag facet the default 1e-4 is met before the first step and the head stays uniform (chance top-1:
# benchmarks/catalog_growth.py). Above LOGREG_MANY_TAGS (the demo's 24 products and grocery's 50 train exactly as
# before) the tolerance is 1e-4 x 20 / tags. C is searched with warm starts (each fit from the last C's weights).
LOGREG_TOL, LOGREG_TOL_TAGS, LOGREG_MANY_TAGS = 1e-4, 20, 50
# and a facet with more than LIGHTGBM_MAX_TAGS tags searches two C, not six: each fit of a 1,000-tag facet costs
# ~15 s on 2 cores, and the grid's full search there took 90 of a 115 s retrain for a holdout top-1 within
# noise of the two (benchmarks/catalog_growth.py; README there)
LOGREG_C_GRID_LARGE: tuple[float, ...] = (2.0, 30.0)


def _make_logreg(C: float, n_classes: int = 2, warm: bool = False) -> LogisticRegression:
    tol = LOGREG_TOL * (LOGREG_TOL_TAGS / n_classes if n_classes > LOGREG_MANY_TAGS else 1.0)
    return LogisticRegression(C=C, solver="lbfgs", max_iter=2000, class_weight="balanced", tol=tol, warm_start=warm)


def _choose_logreg_c(X: np.ndarray, y: np.ndarray, seed: int, groups: Sequence[str] | None = None) -> float:
    """C from inner validation on train, as in the CLIP linear probe; with `groups`, every fold (up to 4) of a
    stratified group split, so C is chosen for photos of shoots the fit did not see (a C chosen on near-copies
    is as large as the grid allows), and on all of them: one fold of a few dozen groups is noise. On
    grocery-produce (split seed 2, the ensemble's vectors) one fold chose C = 0.1 and the holdout probe read 0.808;
    the mean of four chose C = 100 and read 0.872; over seeds 0-2 and four candidate backbones, four folds moved
    the probe by -0.002 to +0.064 (benchmarks/trust.py's probes before and after). Each fold fits the grid in
    ascending C, every fit warm-started from the last one's weights: the four folds on grocery's ensemble vectors
    take 7-9 s (18 cold; one fold cold, before, about 5), a 24-tag, 192-photo facet 4-5 s (7 cold; one fold about
    2), so a pipeline run's probes and heads cost more: `.ci/run` went from 18 to 24 minutes. Each fold now fits
    on its rows' span where they are fewer than half the dimensions (`row_space`): the demo's facet takes 0.3 s,
    and the facet's head takes its backbone probe's C rather than searching again (ml/backbone_choice.py
    probe_c). A facet of more than LIGHTGBM_MAX_TAGS tags keeps one fold: each fit there costs seconds.

    Ranked by mean validation balanced accuracy, ties by lower mean log loss (prefers the C that is confidently
    right, which matters for the thresholds). Falls back to a fixed C when a class is too small to split.
    """
    if np.unique(y, return_counts=True)[1].min() < _MIN_PER_CLASS_FOR_INNER_SPLIT:
        return LOGREG_FALLBACK_C
    tags = len(np.unique(y))
    if groups is None:
        fit_mask = holdout_split(y, holdout_frac=0.25, seed=seed) == "train"
        folds = [(np.flatnonzero(fit_mask), np.flatnonzero(~fit_mask))]
    else:
        folds = group_folds(y, groups, 4, seed)[: 1 if tags > LIGHTGBM_MAX_TAGS else 4]
        if not folds:
            return LOGREG_FALLBACK_C
    n_classes = int(y.max()) + 1
    grid = LOGREG_C_GRID_LARGE if tags > LIGHTGBM_MAX_TAGS else LOGREG_C_GRID
    scores = np.zeros((len(grid), 2))
    for fit_rows, val_rows in folds:
        X_fit, X_val = row_space(X[fit_rows], X[val_rows])
        model = _make_logreg(grid[0], tags, warm=True)
        for i, C in enumerate(grid):  # ascending: a warm start from a smaller C's weights is a few steps away
            model.set_params(C=C).fit(X_fit, y[fit_rows])
            proba = aligned_proba(model, X_val, n_classes)
            y_val = y[val_rows]
            log_loss = float(-np.mean(np.log(np.clip(proba[np.arange(len(y_val)), y_val], 1e-15, 1.0))))
            scores[i] += (-balanced_accuracy(y_val, proba.argmax(axis=1)), log_loss)
    best = min(range(len(grid)), key=lambda i: tuple(scores[i]))
    return grid[best]


def row_space(X_fit: np.ndarray, X_other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both blocks in coordinates of an orthonormal basis of the span of `X_fit`'s rows, where they are fewer
    than half the dimensions; else as given. An L2-penalised logistic regression's weights lie in that span
    (its gradient is a sum of the rows), so a fit on the coordinates is the same model, scores included, with
    one feature per row instead of per dimension: on the demo's 108-photo folds of 3,584-dimension ensemble
    vectors, 24 tags, a fold's six C took 0.2 s instead of 1.3 (L-BFGS's cost grows with features x tags); the
    scores agreed to the solver's tolerance. The basis comes from the rows' Gram matrix (n x n), not from an
    SVD of the rows."""
    n, d = X_fit.shape
    if n == 0 or 2 * n > d:
        return X_fit, X_other
    A = np.asarray(X_fit, dtype=np.float64)
    values, vectors = np.linalg.eigh(A @ A.T)
    keep = values > values.max() * 1e-10
    # the basis is A^T U / sqrt(lambda); A's coordinates in it are U sqrt(lambda)
    project = vectors[:, keep] / np.sqrt(values[keep])
    return vectors[:, keep] * np.sqrt(values[keep]), (np.asarray(X_other, dtype=np.float64) @ A.T) @ project


def _fit_logreg(X: np.ndarray, y: np.ndarray, seed: int, params: dict | None, groups=None) -> tuple[object, dict]:
    """Multinomial logistic regression; C from the inner search unless `params` gives it.

    The penalty is kept per example: `params` record C with the rows it was chosen for (`rows`), and a fit on
    another number of rows (the head refitted on every example, a learning-curve subsample, out-of-fold folds)
    scales C by rows / len(y). scikit-learn's C weighs the *sum* of the losses, so the same C on a third more rows
    is a weaker penalty, larger weights and higher scores: thresholds calibrated on the holdout head's scores then
    apply more photos than they were calibrated for. On grocery-produce (fine-tuned views, C = 0.1, split seed 2)
    the refitted head's mean top score rose from 0.047 to 0.060, the thresholds applied 79 % of the test session
    where the holdout said 58 %, and applied precision fell to 0.899 against 0.947 promised; with C scaled, 54 %
    and 0.951. Top-1 moved by at most 0.3 points on six splits (benchmarks/trust.py). `params` without `rows`
    (a head trained before) keep C as given.
    """
    params = dict(params) if params else {"C": _choose_logreg_c(X, y, seed, groups), "rows": len(y)}
    C = params["C"] * params.get("rows", len(y)) / len(y)
    return _make_logreg(C, len(np.unique(y))).fit(X, y), params


def _fit_lightgbm(X: np.ndarray, y: np.ndarray, seed: int, params: dict | None, groups=None) -> tuple[object, dict]:
    """Small, sub-sampled trees on a PCA projection of the embedding.

    Trees on all 1280 dimensions cost minutes per facet with many tags (one tree per tag per round) and
    few-shot data cannot support them anyway; 64 principal components keep what separates the examples and
    make a fit take seconds. min_child_samples=2 lets a tag with two examples still get a leaf.
    """
    params = (
        dict(params)
        if params
        else {
            "n_components": 64,
            "n_estimators": 150,
            "learning_rate": 0.08,
            "num_leaves": 15,
            "min_child_samples": 2,
            "subsample": 0.8,
            "subsample_freq": 1,
            "colsample_bytree": 0.8,
            "max_bin": 63,
            "class_weight": "balanced",
        }
    )
    lgbm = {k: v for k, v in params.items() if k != "n_components"}
    components = max(1, min(params["n_components"], X.shape[0] - 1, X.shape[1]))
    model = make_pipeline(
        PCA(n_components=components, random_state=seed),
        LGBMClassifier(**lgbm, random_state=seed, n_jobs=1, verbose=-1),
    )
    return model.fit(X, y), params


def _fit_prototype(X: np.ndarray, y: np.ndarray, seed: int, params: dict | None, groups=None) -> tuple[object, dict]:
    params = dict(params) if params else {"temperature": PROTOTYPE_TEMPERATURE}
    return PrototypeClassifier(params["temperature"]).fit(X, y), params


FITTERS: dict[str, Fitter] = {"logreg": _fit_logreg, "lightgbm": _fit_lightgbm, "prototype": _fit_prototype}


def build_gallery(
    media_ids: Sequence[str], labels: Sequence[str], features: Sequence[Features | None], per_tag: int = 12
) -> dict[str, list[tuple[str, Features]]]:
    """{tag: [(media_id, features)]} of up to `per_tag` examples with enough keypoints to match."""
    gallery: dict[str, list[tuple[str, Features]]] = {}
    for media_id, label, f in zip(media_ids, labels, features, strict=True):
        if f is not None and len(f.desc) >= MIN_MATCHES and len(gallery.get(str(label), [])) < per_tag:
            gallery.setdefault(str(label), []).append((media_id, f))
    return gallery


def text_evidence(
    boxes: Sequence[Sequence[tuple[str, float]]], identifiers: Mapping[str, Sequence[str]], classes: Sequence[str]
) -> np.ndarray:
    """(n, len(classes)): per row, how well its OCR boxes show each tag's identifiers (ml/identifiers.py)."""
    out = np.zeros((len(boxes), len(classes)), dtype=np.float64)
    wanted = {c: identifiers.get(c, []) for c in classes}
    for i, row in enumerate(boxes):
        if row:
            found = text_scores(row, wanted)
            out[i] = [found.get(c, 0.0) for c in classes]
    return out


def class_means(X: np.ndarray, y: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """L2-normalised mean embedding per class, rows in `classes` order."""
    means = np.stack([X[y == c].mean(axis=0) for c in classes]).astype(np.float32)
    return means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)


def familiarity(prototypes: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of X to its nearest prototype."""
    Xn = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    return (Xn @ prototypes.T).max(axis=1).astype(np.float32)


def as_matrix(X: np.ndarray, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n, d) embedding matrix, got shape {X.shape}")
    return X
