"""Per-facet classification heads on frozen image embeddings.

Each facet (product type, colour, material, ...) gets its own small classifier on top of L2-normalised
backbone embeddings. Product libraries are few-shot and uneven, so no single head type wins everywhere:
every strategy (ml/strategies.py) is fitted on the train split, scored on the group-aware holdout (shoots and
look-alike clusters the model never saw: ml/groups.py, ml/splits.py), and the best one is kept, together with
per-tag score thresholds (ml/calibration.py) that decide whether a prediction is applied automatically or sent
to human review, and the figures they promise for a new shoot. The kept model is then refitted on
train+holdout, because with a handful of examples per tag every example matters more than an untouched
holdout does once the choice is made. Given the library's own photos, logistic regression also learns from
those it is surest of (ml/self_training.py), where the holdout says that wins.

Pure ML: importable without Dagster or Ray; the trained `FacetHead` is a plain picklable dataclass.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from itertools import combinations

import numpy as np

from ml.calibration import calibrate_thresholds, precision_coverage, promise
from ml.facet_head import FacetHead, StrategyResult, predict_table  # noqa: F401  (predict_table: callers)
from ml.fusion import Combiner, out_of_fold_scores
from ml.keypoints import Features, keypoint_evidence, top_candidates
from ml.projection import projected_accuracy
from ml.self_training import logreg_scorers, logreg_self_trained, self_train
from ml.splits import holdout_split
from ml.strategies import (
    FITTERS,
    LIGHTGBM_MAX_TAGS,
    PROTOTYPE_TEMPERATURE,
    SIMPLICITY_ORDER,
    STRATEGIES,
    accuracy,
    aligned_proba,
    as_matrix,
    balanced_accuracy,
    build_gallery,
    class_means,
    familiarity,
    text_evidence,
)
from ml.text_model import fit_text_model, text_channel

logger = logging.getLogger(__name__)
CONFIDENCE = 0.95  # of every interval and lower bound a head reports

__all__ = [
    "STRATEGIES",
    "FacetHead",
    "StrategyResult",
    "choose_strategy",
    "predict_table",
    "train_facet_head",
]


# -------------------------------------------------------------------------------------------- training
def choose_strategy(results: Iterable[StrategyResult]) -> str:
    """Best holdout balanced accuracy; ties by accuracy, then by SIMPLICITY_ORDER (simplest first)."""

    def rank(r: StrategyResult) -> tuple[float, float, int]:
        # a combined head ranks after every plain one, and after combinations with fewer kinds of evidence
        simplicity = (
            SIMPLICITY_ORDER.index(r.strategy)
            if r.strategy in SIMPLICITY_ORDER
            else len(STRATEGIES) + r.strategy.count("+")
        )
        return (-_nan_to_neg(r.balanced_accuracy), -_nan_to_neg(r.accuracy), simplicity)

    results = list(results)
    if not results:
        raise ValueError("no strategy results to choose from")
    return min(results, key=rank).strategy


def _nan_to_neg(x: float) -> float:
    return -1.0 if np.isnan(x) else float(x)


def train_facet_head(
    facet: str,
    X_train: np.ndarray,
    y_train: Sequence[str],
    X_hold: np.ndarray,
    y_hold: Sequence[str],
    strategies: Sequence[str] = STRATEGIES,
    seed: int = 0,
    target_precision: float = 0.9,
    prototype_temperature: float = PROTOTYPE_TEMPERATURE,
    ocr_train: Sequence[Sequence[tuple[str, float]]] | None = None,
    ocr_hold: Sequence[Sequence[tuple[str, float]]] | None = None,
    identifiers: Mapping[str, Sequence[str]] | None = None,
    tag_names: Mapping[str, Sequence[str]] | None = None,
    keypoints_train: Sequence[Features | None] | None = None,
    keypoints_hold: Sequence[Features | None] | None = None,
    ids_train: Sequence[str] | None = None,
    ids_hold: Sequence[str] | None = None,
    force: str | None = None,
    groups_train: Sequence[str] | None = None,
    confidence: float = CONFIDENCE,
    logreg_c: float | None = None,
    X_pool: np.ndarray | None = None,
) -> FacetHead:
    """Fit every strategy on train, keep the best on holdout, calibrate thresholds, refit on all data.

    Selection uses holdout balanced accuracy (ties: accuracy, then SIMPLICITY_ORDER) because facets are
    imbalanced and a head that ignores rare tags must not win on plain accuracy. Thresholds come from the
    chosen strategy's holdout predictions (the only unbiased scores available); the final model is the same
    strategy and hyper-parameters refitted on train+holdout, and keeps those thresholds.

    Evidence beyond the picture adds strategies: with OCR boxes (text, confidence) per example and the
    catalog's `identifiers` per tag, "<visual>+ocr"; with OCR boxes and text on some training rows,
    "<visual>+text" (a text classifier learnt from the examples' own print, out-of-fold on train, with
    `tag_names` {tag: [name, aliases]} as weak identifiers: ml/text_model.py); with ORB features per example
    (and the examples' media ids), "<visual>+keypoints" (matched against the training examples of the visually
    likeliest tags); with several, their combinations ("<visual>+keypoints+ocr+text"). Each is the best visual
    head combined with that evidence by a learned combiner (ml/fusion.py) trained on out-of-fold visual scores.
    `force` picks a strategy by name instead of the best (the catalog's choice).

    `X_pool`: the vectors of library photos that are not examples (unlabelled). Where given, logistic regression
    is also fitted once more with the pool photos it is surest of as extra rows, each with its predicted tag
    (ml/self_training.py); the holdout judges it with its own photos in the pool (a new shoot in the library),
    and it replaces plain logistic regression only where its holdout balanced accuracy is higher. The shipped
    head then learns the same way from the pool (`metrics["self_training"]`).

    `logreg_c`: the C of logistic regression where it is known for these very rows (the backbone probe's, which
    searched it on the same train split: ml/backbone_choice.py `probe_c`); else it is searched here.

    `groups_train` (the training rows' groups: shoots, look-alike clusters) keeps the inner C search and the
    out-of-fold scores the combiners learn from honest too: no group on both sides of any split. The
    thresholds are calibrated on the holdout with a margin for small counts (ml/calibration.py); what they
    promise for a new shoot (top-1, applied precision, share applied, with intervals) is `metrics["new_shoot"]`,
    and the same strategy's figure on a random split of the same photos, optimistic by construction, is
    `metrics["same_shoot"]`.

    Raises ValueError for a facet with fewer than two tags (nothing to learn), a train split with a single
    tag, an empty holdout, or an unknown strategy name.
    """
    X_train, X_hold = as_matrix(X_train, "X_train"), as_matrix(X_hold, "X_hold")
    y_train, y_hold = [str(y) for y in y_train], [str(y) for y in y_hold]
    if len(X_train) != len(y_train) or len(X_hold) != len(y_hold):
        raise ValueError("embedding rows and labels differ in length")
    if X_train.shape[1] != X_hold.shape[1]:
        raise ValueError(f"train dim {X_train.shape[1]} != holdout dim {X_hold.shape[1]}")
    classes = sorted(set(y_train) | set(y_hold))
    if len(classes) < 2:
        only = classes[0] if classes else "none"
        raise ValueError(f"facet {facet!r} has only one tag ({only}); a head needs at least two tags")
    if len(set(y_train)) < 2:
        raise ValueError(f"facet {facet!r} has only one tag in its train split; a head needs at least two")
    if not y_hold:
        raise ValueError(f"facet {facet!r} has an empty holdout; cannot choose a strategy or thresholds")
    strategies = list(dict.fromkeys(strategies))
    unknown = [s for s in strategies if s not in FITTERS]
    if unknown or not strategies:
        raise ValueError(f"unknown or no strategies {unknown or strategies}; expected some of {STRATEGIES}")
    skipped = []
    if len(classes) > LIGHTGBM_MAX_TAGS and len(strategies) > 1 and (force or "").split("+")[0] != "lightgbm":
        skipped = [s for s in strategies if s == "lightgbm"]  # one tree per tag and round: minutes, never the best
        strategies = [s for s in strategies if s != "lightgbm"]
        if skipped:
            logger.info("facet %s: %d tags, lightgbm left out (over %d)", facet, len(classes), LIGHTGBM_MAX_TAGS)

    index = {c: k for k, c in enumerate(classes)}
    y_tr = np.array([index[y] for y in y_train], dtype=int)
    y_ho = np.array([index[y] for y in y_hold], dtype=int)
    start_params: dict[str, dict | None] = {"prototype": {"temperature": prototype_temperature}}
    if logreg_c is not None:
        start_params["logreg"] = {"C": float(logreg_c), "rows": len(y_tr)}

    results: dict[str, StrategyResult] = {}
    hold_scores: dict[str, np.ndarray] = {}
    params: dict[str, dict] = {}
    models: dict[str, object] = {}
    for strategy in strategies:
        started = time.perf_counter()
        model, params[strategy] = FITTERS[strategy](X_train, y_tr, seed, start_params.get(strategy), groups_train)
        models[strategy] = model
        fit_seconds = time.perf_counter() - started
        hold_scores[strategy] = aligned_proba(model, X_hold, len(classes))
        y_pred = hold_scores[strategy].argmax(axis=1)
        results[strategy] = StrategyResult(
            strategy=strategy,
            accuracy=accuracy(y_ho, y_pred),
            balanced_accuracy=balanced_accuracy(y_ho, y_pred),
            n_holdout=len(y_ho),
            fit_seconds=fit_seconds,
        )
        logger.info(
            "facet %s: %s holdout acc=%.3f bal_acc=%.3f (fit %.2fs, params %s)",
            facet,
            strategy,
            results[strategy].accuracy,
            results[strategy].balanced_accuracy,
            fit_seconds,
            params[strategy],
        )

    plain_logreg = results["logreg"].accuracy if "logreg" in results else None
    self_training = None
    if X_pool is not None and len(X_pool) and "logreg" in results:
        before = results["logreg"].balanced_accuracy
        scores, self_training = logreg_self_trained(
            models["logreg"], before, X_train, y_tr, X_hold, y_ho, X_pool, params["logreg"], seed, len(classes)
        )
        if self_training["used"]:
            hold_scores["logreg"] = scores
            results["logreg"] = StrategyResult(
                "logreg",
                accuracy(y_ho, scores.argmax(axis=1)),
                balanced_accuracy(y_ho, scores.argmax(axis=1)),
                len(y_ho),
                results["logreg"].fit_seconds + self_training["seconds"],
            )
        logger.info("facet %s: logreg self-trained on the library: %s", facet, self_training)

    if force and "+" in force and force.split("+")[0] in results:
        visual = force.split("+")[0]  # a forced combination names its visual head too
    else:
        visual = choose_strategy(results.values())
    # evidence beyond the picture, per channel: (train rows, holdout rows, which tags can have it)
    channels: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    oof: np.ndarray | None = None

    def fit_visual(Xa: np.ndarray, ya: np.ndarray):
        model, _ = FITTERS[visual](Xa, ya, seed, params[visual])
        return lambda Xb: aligned_proba(model, Xb, len(classes))

    linear = visual == "logreg"  # its out-of-fold fits run on the rows' span (ml/fusion.py)
    started = time.perf_counter()
    if identifiers is not None and ocr_train is not None and ocr_hold is not None:
        has = np.array([bool(identifiers.get(c)) for c in classes])
        if has.any():
            train_ev, hold_ev = (
                text_evidence(ocr_train, identifiers, classes),
                text_evidence(ocr_hold, identifiers, classes),
            )
            channels["ocr"] = (train_ev, hold_ev, has)
    if ocr_train is not None and ocr_hold is not None:  # out-of-fold on train, like the visual scores
        learned = text_channel(ocr_train, y_tr, ocr_hold, classes, tag_names, groups_train, seed)
        if learned is not None:
            channels["text"] = learned
    if keypoints_train is not None and keypoints_hold is not None and ids_train is not None:
        gallery = build_gallery(ids_train, y_train, keypoints_train)
        has = np.array([c in gallery for c in classes])
        if has.any():
            oof = out_of_fold_scores(fit_visual, X_train, y_tr, len(classes), seed, groups=groups_train, linear=linear)
            train_ev = keypoint_evidence(keypoints_train, gallery, classes, top_candidates(oof), exclude=ids_train)
            hold_ev = keypoint_evidence(keypoints_hold, gallery, classes, top_candidates(hold_scores[visual]))
            channels["keypoints"] = (train_ev, hold_ev, has)
    if channels and oof is None:
        oof = out_of_fold_scores(fit_visual, X_train, y_tr, len(classes), seed, groups=groups_train, linear=linear)
    names = sorted(channels)
    for size in range(1, len(names) + 1):
        for subset in combinations(names, size):
            # the learned combination of the picture and this evidence (ml/fusion.py), on the visual head
            combiner = Combiner({c: channels[c][2] for c in subset}).fit(oof, {c: channels[c][0] for c in subset}, y_tr)
            fused = combiner.scores(hold_scores[visual], {c: channels[c][1] for c in subset})
            name = "+".join((visual, *subset))
            hold_scores[name] = fused
            results[name] = StrategyResult(
                strategy=name,
                accuracy=accuracy(y_ho, fused.argmax(axis=1)),
                balanced_accuracy=balanced_accuracy(y_ho, fused.argmax(axis=1)),
                n_holdout=len(y_ho),
                fit_seconds=results[visual].fit_seconds + time.perf_counter() - started,
            )
            logger.info("facet %s: %s holdout acc=%.3f", facet, name, results[name].accuracy)
    if force is not None and force not in results:
        raise ValueError(f"facet {facet!r}: strategy {force!r} is not available here; evaluated: {sorted(results)}")
    chosen = force or choose_strategy(results.values())
    base, *used = chosen.split("+")
    thresholds = calibrate_thresholds(hold_scores[chosen], y_hold, classes, target_precision, confidence)
    all_codes = np.concatenate([y_tr, y_ho])
    if base == "logreg" and self_training is not None and self_training["used"]:
        final_model, final_info = self_train(
            *logreg_scorers(params["logreg"], seed, len(classes)),
            np.vstack([X_train, X_hold]),
            all_codes,
            X_pool,
            len(classes),
        )
        self_training["shipped_pseudo_rows"] = final_info["pseudo_rows"]
    else:
        final_model, _ = FITTERS[base](np.vstack([X_train, X_hold]), all_codes, seed, params[base])
    combiner, final_gallery, text_model = None, None, None
    if used:  # refitted on every example: out-of-fold train scores and the holdout's
        combiner = Combiner({c: channels[c][2] for c in used}).fit(
            np.vstack([oof, hold_scores[visual]]), {c: np.vstack(channels[c][:2]) for c in used}, all_codes
        )
        if "keypoints" in used:
            final_gallery = build_gallery(
                list(ids_train) + list(ids_hold or []),
                list(y_train) + list(y_hold),
                list(keypoints_train) + list(keypoints_hold),
            )
        if "text" in used:
            text_model = fit_text_model(list(ocr_train) + list(ocr_hold), all_codes, classes, tag_names)
    logger.info("facet %s: chose %s, refitted on %d examples", facet, chosen, len(y_tr) + len(y_ho))
    metrics = {
        "chosen": chosen,
        "forced": force is not None,
        "strategies": {name: asdict(result) for name, result in results.items()},
        "skipped_strategies": skipped,
        "accuracy": results[chosen].accuracy,
        "balanced_accuracy": results[chosen].balanced_accuracy,
        "n_train": len(y_tr),
        "n_holdout": len(y_ho),
        "params": params[base],
        "target_precision": target_precision,
        "confidence": confidence,
        "new_shoot": promise(hold_scores[chosen], y_hold, classes, thresholds, confidence).as_dict(),
        "curve": precision_coverage(hold_scores[chosen], y_hold, classes),
        "same_shoot": same_shoot_figure(
            base, params[base], np.vstack([X_train, X_hold]), all_codes, seed, results[base].accuracy
        ),
        "projected": projected_accuracy(
            lambda rows: accuracy(y_ho, fit_visual(X_train[rows], y_tr[rows])(X_hold).argmax(axis=1)),
            y_tr,
            groups_train,
            plain_logreg if visual == "logreg" else results[visual].accuracy,
            len(all_codes),
            seed,
        ),
        **({"combiner_weights": combiner.weights()} if combiner is not None else {}),
    }
    # the shipped head learns from every example: the visual head's learning curve projects the promise
    gain = metrics["projected"]["top1"] - (plain_logreg if visual == "logreg" else results[visual].accuracy)
    if self_training is not None:
        metrics["self_training"] = self_training
    new = metrics["new_shoot"]
    new["top1_projected"] = round(min(1.0, results[chosen].accuracy + gain), 4)
    new["top1_projected_high"] = round(min(1.0, new["top1_high"] + gain), 4)
    # familiarity is calibrated like the thresholds: prototypes of the train split, measured on the holdout
    min_familiarity = float(familiarity(class_means(X_train, y_tr, np.unique(y_tr)), X_hold).min())
    prototypes = class_means(np.vstack([X_train, X_hold]), all_codes, np.unique(all_codes))
    metrics["min_familiarity"] = round(min_familiarity, 4)
    chosen_scores = hold_scores[chosen]
    holdout = [
        {"true": y, "predicted": classes[int(k)], "score": round(float(chosen_scores[i, k]), 4)}
        for i, (y, k) in enumerate(zip(y_hold, chosen_scores.argmax(axis=1), strict=True))
    ]
    return FacetHead(
        facet,
        chosen,
        classes,
        final_model,
        thresholds,
        metrics,
        prototypes,
        min_familiarity,
        combiner,
        {c: list(identifiers.get(c, [])) for c in classes} if "ocr" in used else None,
        holdout,
        final_gallery,
        text_model=text_model,
    )


def same_shoot_figure(strategy: str, params: dict, X: np.ndarray, y: np.ndarray, seed: int, group_aware: float) -> dict:
    """Top-1 of the visual strategy on a random stratified split of all the examples, photos of one shoot on
    both sides: the figure a naive holdout reports. Shown beside the same strategy's group-aware figure, labelled
    optimistic, so the gap between the two is visible (0.95 against 0.74 on grocery-produce). The visual head
    alone: a combined head's other evidence (text, keypoints) is not refitted for it."""
    split = holdout_split(y, holdout_frac=0.25, seed=seed) == "train"
    if split.all() or len(np.unique(y[split])) < 2:
        return {"strategy": strategy, "top1": None, "n_holdout": 0, "group_aware_top1": round(group_aware, 4)}
    model, _ = FITTERS[strategy](X[split], y[split], seed, params)
    predicted = aligned_proba(model, X[~split], int(y.max()) + 1).argmax(axis=1)
    return {
        "strategy": strategy,
        "top1": round(accuracy(y[~split], predicted), 4),
        "n_holdout": int((~split).sum()),
        "group_aware_top1": round(group_aware, 4),
    }
