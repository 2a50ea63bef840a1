"""Heads and linear probes on cached features: the evaluation half of the accuracy benchmark.

Two ways to score a feature variant:
- `score_heads`: the pipeline's own `ml.heads.train_facet_head` (fit on train, choose on the holdout = the
  data set's val split, refit on train+val), scored on test - what a library would actually get;
- `linear_probe`: the CLIP-benchmark linear probe - logistic regression with C swept more widely than the
  head's grid and chosen on val, optionally after a fitted feature transform (standardisation,
  PCA-whitening) that the head does not have - to see what the features can give at best.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ml.heads import STRATEGIES, StrategyResult, choose_strategy, train_facet_head

log = logging.getLogger(__name__)

PROBE_C_GRID: tuple[float, ...] = (0.5, 2.0, 8.0, 32.0, 128.0, 512.0)
TRANSFORMS = ("l2", "sqrt", "standardize", "pca-whiten")


def top1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_true == y_pred))


def balanced(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]))


@dataclass
class Split:
    """Rows of one variant: train may hold several rows per photo (training-time augmentation)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def score_heads(split: Split, strategies: Sequence[str] = STRATEGIES, seed: int = 0) -> dict[str, dict]:
    """Per strategy: test top-1/balanced accuracy of the head refitted on train+val, plus the holdout (val)
    figures the pipeline chooses by; the entry 'chosen' repeats the strategy `choose_strategy` would keep."""
    out: dict[str, dict] = {}
    results = []
    for strategy in strategies:
        started = time.perf_counter()
        head = train_facet_head("label", split.X_train, split.y_train, split.X_val, split.y_val,
                                strategies=[strategy], seed=seed)
        pred = np.asarray(head.classes)[head.predict_scores(split.X_test).argmax(axis=1)]
        val = head.metrics["strategies"][strategy]
        results.append(StrategyResult(**val))
        out[strategy] = {
            "top1": top1(split.y_test, pred),
            "balanced": balanced(split.y_test, pred),
            "val_top1": val["accuracy"],
            "val_balanced": val["balanced_accuracy"],
            "params": head.metrics["params"],
            "seconds": round(time.perf_counter() - started, 1),
        }
        log.info("head %s: test top-1 %.3f balanced %.3f (%.0fs)", strategy, out[strategy]["top1"],
                 out[strategy]["balanced"], out[strategy]["seconds"])
    chosen = choose_strategy(results)
    out["chosen"] = {"strategy": chosen, **out[chosen]}
    return out


def fit_transform(kind: str, X_fit: np.ndarray, *Xs: np.ndarray) -> list[np.ndarray]:
    """Fit a feature transform on X_fit and apply it to each of Xs (rows re-L2-normalised afterwards).

    l2: nothing (inputs are already L2-normalised); sqrt: signed square root (power normalisation, no fit);
    standardize: per-dimension z-score; pca-whiten: PCA to 99 % variance with whitening.
    """
    if kind == "l2":
        return list(Xs)
    if kind == "sqrt":
        return [_l2(np.sign(X) * np.sqrt(np.abs(X))) for X in Xs]
    if kind == "standardize":
        scaler = StandardScaler().fit(X_fit)
        return [_l2(scaler.transform(X)) for X in Xs]
    if kind == "pca-whiten":
        pca = PCA(n_components=0.99, whiten=True, svd_solver="full", random_state=0).fit(X_fit)
        return [_l2(pca.transform(X)) for X in Xs]
    raise ValueError(f"unknown transform {kind!r}; expected one of {TRANSFORMS}")


def _l2(X: np.ndarray) -> np.ndarray:
    return (X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _logreg(C: float) -> LogisticRegression:
    # Same model as the head's logreg (balanced class weights, lbfgs); only the C range differs.
    return LogisticRegression(C=C, solver="lbfgs", max_iter=3000, class_weight="balanced")


def linear_probe(split: Split, transform: str = "l2", c_grid: Sequence[float] = PROBE_C_GRID) -> dict:
    """Logistic regression: transform fitted on train, C chosen on val accuracy, refit on train+val, test.

    The val split is small (about 4 photos per class), so C is chosen by val log-loss among the C values
    within one photo of the best val accuracy - a tie-break that prefers the better-calibrated fit.
    """
    started = time.perf_counter()
    X_tr, X_val = fit_transform(transform, split.X_train, split.X_train, split.X_val)
    scores = []
    for C in c_grid:
        model = _logreg(C).fit(X_tr, split.y_train)
        proba = model.predict_proba(X_val)
        index = {c: k for k, c in enumerate(model.classes_)}
        y_idx = np.array([index[y] for y in split.y_val])
        loss = float(-np.mean(np.log(np.clip(proba[np.arange(len(y_idx)), y_idx], 1e-15, 1))))
        scores.append((top1(split.y_val, model.classes_[proba.argmax(axis=1)]), loss, C))
    best_acc = max(s[0] for s in scores)
    _, _, best_c = min((s for s in scores if s[0] >= best_acc - 1.0 / len(split.y_val)), key=lambda s: s[1])
    X_all = np.vstack([split.X_train, split.X_val])
    y_all = np.concatenate([split.y_train, split.y_val])
    X_all_t, X_te = fit_transform(transform, X_all, X_all, split.X_test)
    pred = _logreg(best_c).fit(X_all_t, y_all).predict(X_te)
    result = {
        "top1": top1(split.y_test, pred),
        "balanced": balanced(split.y_test, pred),
        "C": best_c,
        "val_top1_by_C": {str(c): round(a, 4) for a, _, c in scores},
        "transform": transform,
        "seconds": round(time.perf_counter() - started, 1),
    }
    log.info("probe %s C=%s: test top-1 %.3f balanced %.3f (%.0fs)", transform, best_c, result["top1"],
             result["balanced"], result["seconds"])
    return result
