"""Training a multi facet's head (ml/region_head.py): every example photo scored out of fold by each channel,
thresholds calibrated on those scores, the strategy chosen, the head in use built from every example.

See ml/region_head.py for the channels, the holdout and the rules. Pure ML code: `run(fn, calls)` maps the
tasks (folds, windows, the final index) over the caller's workers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ml.backbones import BackboneSpec
from ml.calibration import NEVER
from ml.crop_channel import BACKGROUND_PHOTOS, background_vectors, best_windows, train_crop_head, window_task
from ml.media import MediaReader
from ml.multilabel import applied_figures, calibrate_multilabel, label_matrix, train_multilabel_head
from ml.region_head import (
    FOLDS,
    MARGIN,
    STRATEGIES,
    MultiExample,
    RegionHead,
    build_index,
    detect_task,
    floor_of,
    region_floor,
)
from ml.regions import Detection, RegionSpec
from ml.splits import group_folds
from ml.word_marks import word_mark_detections


def fold_task(train: Mapping[str, Sequence[str]], test: Sequence[str], reader: MediaReader, spec: RegionSpec) -> list:
    """One fold: the index of the other folds' examples, run on this fold's photos."""
    return detect_task(build_index(train, reader, spec), test, reader, region_floor(spec))


def fold_plan(examples: Sequence[MultiExample], seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, test rows) per fold, groups never on both sides, stratified by each photo's first tag."""
    strata = np.array([min(e.labels) if e.labels else "" for e in examples])
    return group_folds(strata, [e.group for e in examples], FOLDS, seed)


def fold_calls(examples: Sequence[MultiExample], folds, reader: MediaReader, spec: RegionSpec) -> list[tuple]:
    calls = []
    for train, test in folds:
        by_tag: dict[str, list[str]] = {}
        for i in train:
            for tag in examples[i].labels:
                by_tag.setdefault(tag, []).append(examples[i].uri)
        calls.append((by_tag, [examples[i].uri for i in test], reader, spec))
    return calls


def region_scores(examples, folds, fold_results, tags: Sequence[str]) -> tuple[np.ndarray, list[list[Detection]]]:
    """(photos, tags) out-of-fold best detection score per tag (0: none), and the detections per photo."""
    S = np.zeros((len(examples), len(tags)))
    found: list[list[Detection]] = [[] for _ in examples]
    column = {t: k for k, t in enumerate(tags)}
    for (_, test), results in zip(folds, fold_results, strict=True):
        for i, detections in zip(test, results, strict=True):
            found[i] = [] if isinstance(detections, str) else list(detections)
            for d in found[i]:
                if d.tag_id in column:
                    S[i, column[d.tag_id]] = max(S[i, column[d.tag_id]], d.score)
    return S, found


def whole_scores(examples, folds, X: np.ndarray, tags: Sequence[str], target: float, seed: int) -> np.ndarray:
    """(photos, tags) out-of-fold whole-photo probabilities (0 where a fold could not learn a tag)."""
    S = np.zeros((len(examples), len(tags)))
    labels = [set(e.labels) for e in examples]
    for train, test in folds:
        try:
            head = train_multilabel_head("fold", X[train], [labels[i] for i in train], X[:0], [], target, seed=seed)
        except ValueError:
            continue  # a fold where some tag has no negative or no positive: its photos keep 0
        scores = head.scores(X[test])
        for k, tag in enumerate(head.tags):
            S[test, tags.index(tag)] = scores[:, k]
    return S


def lowest_in_gap(thresholds: dict[str, float], scores: np.ndarray, floor: float, lowest: float) -> dict[str, float]:
    """Each threshold lowered to just above the highest holdout score under it (of any tag; `lowest` at least).

    Between two observed scores the holdout cannot tell thresholds apart: every one applies the same pairs. New
    photos' evidence is weaker than the examples' (a logo at 2 % of an event photo against 20 % of an example)
    and lands in that gap, so the lowest threshold of the gap is taken. `lowest` keeps it from reaching the
    floor where the holdout has no wrong score at all (RegionSpec.threshold: 10 inliers, benchmarks/regions.py).
    """
    observed = np.sort(scores[scores >= floor])
    out = {}
    for tag, t in thresholds.items():
        below = observed[observed < t]
        gap_start = float(np.nextafter(below[-1], 2.0)) if len(below) else floor
        out[tag] = t if t >= NEVER else float(min(t, max(lowest, gap_start)))
    return out


def crop_scores(examples, folds, X, labels, tags, crop_spec, backgrounds, reader, run, target: float, seed: int):
    """(photos, tags) out-of-fold best-window scores, and every window negative (for the final head): each
    fold's heads learn from the other folds' whole photos, their `none` photos' windows and background windows."""
    uris = [e.uri for e in examples]
    found = [
        r
        for part in run(window_task, [(crop_spec, uris[i : i + 16], reader) for i in range(0, len(uris), 16)])
        for r in part
    ]
    sample = list(backgrounds)[:BACKGROUND_PHOTOS]
    background = background_vectors(run(window_task, [(crop_spec, sample, reader)])[0], seed) if sample else None
    none_rows = {i for i, e in enumerate(examples) if not e.labels and not isinstance(found[i], str)}

    def negatives(rows) -> np.ndarray:
        parts = [found[i][1] for i in rows if i in none_rows]
        if background is not None and len(background):
            parts.append(background)
        return np.concatenate(parts) if parts else X[:0]

    S = np.zeros((len(examples), len(tags)))
    for train, test in folds:
        try:
            head = train_crop_head("fold", X[train], [labels[i] for i in train], negatives(train), target, seed)
        except ValueError:
            continue  # a fold where some tag has no positive: its photos keep 0
        for i in test:
            if isinstance(found[i], str):
                continue
            for d in best_windows(head, *found[i], floor=0.0):
                S[i, tags.index(d.tag_id)] = d.score
    return S, negatives(range(len(examples)))


def text_scores(examples, ocr_of, identifiers, tags: Sequence[str]) -> np.ndarray:
    """(photos, tags) word-mark scores of the examples (0: not read)."""
    S = np.zeros((len(examples), len(tags)))
    for i, e in enumerate(examples):
        for d in word_mark_detections(ocr_of.get(e.media_id, []), identifiers):
            if d.tag_id in tags:
                S[i, tags.index(d.tag_id)] = d.score
    return S


def judge(
    scores: np.ndarray, Y: np.ndarray, tags: Sequence[str], target: float, floor: float, lowest: float | None = None
) -> dict:
    """Thresholds from out-of-fold scores, and what they give on those photos (the group-aware figures);
    `lowest`: see `lowest_in_gap` (None: thresholds stay at the lowest qualifying observed score)."""
    thresholds = calibrate_multilabel(scores, Y, tags, target, floor=floor)
    if lowest is not None:
        thresholds = lowest_in_gap(thresholds, scores, floor, lowest)
    applied = np.column_stack([scores[:, k] >= thresholds[t] for k, t in enumerate(tags)]).astype(bool)
    figures = applied_figures(applied, Y, tags)
    for tag, row in figures["per_tag"].items():
        row["threshold"] = thresholds[tag]
    recalls = [v["recall"] for v in figures["per_tag"].values() if v["recall"] is not None]
    return {
        "thresholds": thresholds,
        "applied": applied,
        "accuracy": figures.pop("exact_set_accuracy"),  # exact set: every tag right, none extra
        "balanced_accuracy": float(np.mean(recalls)) if recalls else 0.0,  # mean per-tag applied recall
        **figures,
    }


def choose(judged: Mapping[str, dict]) -> str:
    """The simplest strategy within MARGIN of the best exact-set accuracy (STRATEGIES is ordered by cost)."""
    best = max(j["accuracy"] for j in judged.values())
    return next(s for s in STRATEGIES if s in judged and judged[s]["accuracy"] >= best - MARGIN)


def train_region_head(
    facet: str,
    examples: Sequence[MultiExample],
    X: np.ndarray | None,
    reader: MediaReader,
    run: Callable[[Callable, list[tuple]], list],
    target_precision: float = 0.95,
    spec: RegionSpec = RegionSpec(),
    seed: int = 0,
    crop_spec: BackboneSpec | None = None,
    backgrounds: Sequence[str] = (),
    ocr_of: Mapping[str, Sequence[tuple]] | None = None,
    identifiers: Mapping[str, Sequence[str]] | None = None,
) -> RegionHead:
    """A multi facet's head from its example photos (`X`: their whole-photo embeddings, None: regions only).
    `run(fn, calls)` maps a task over the caller's workers (the folds, then the final index, run there);
    `crop_spec`: the backbone of the window channel (None: no windows), `backgrounds`: library photos whose
    windows are its negatives; `ocr_of`: per media_id its OCR rows (text, confidence, corners, width, height)
    and `identifiers`: per tag its word marks, for the word-mark channel (None: OCR did not run)."""
    tags = sorted({t for e in examples for t in e.labels})
    if not tags:
        raise ValueError(f"facet {facet!r}: no example shows any of its tags")
    folds = fold_plan(examples, seed)
    if not folds:
        raise ValueError(f"facet {facet!r}: too few examples or groups to hold any out (need 2 per tag)")
    Y = label_matrix([set(e.labels) for e in examples], tags)
    labels = [set(e.labels) for e in examples]
    started = time.perf_counter()
    calls = fold_calls(examples, folds, reader, spec)
    region, found = region_scores(examples, folds, run(fold_task, calls), tags)
    scores = {"regions": region}
    seconds = {"regions": time.perf_counter() - started}
    judged = {"regions": judge(region, Y, tags, target_precision, region_floor(spec), spec.threshold)}
    crop_negatives = None
    # a strategy within MARGIN of every example right cannot be displaced (`choose`): the costlier channels
    # are then not computed at all
    if judged["regions"]["accuracy"] < 1.0 - MARGIN and X is not None:
        started = time.perf_counter()
        scores["whole"] = whole_scores(examples, folds, X, tags, target_precision, seed)
        scores["regions+whole"] = np.maximum(region, scores["whole"])
        seconds["whole"] = time.perf_counter() - started
        seconds["regions+whole"] = seconds["regions"] + seconds["whole"]
        if ocr_of and any(identifiers.values()):
            started = time.perf_counter()
            scores["regions+ocr"] = np.maximum(region, text_scores(examples, ocr_of, identifiers, tags))
            seconds["regions+ocr"] = seconds["regions"] + time.perf_counter() - started
        if crop_spec is not None:
            started = time.perf_counter()
            scores["crops"], crop_negatives = crop_scores(
                examples, folds, X, labels, tags, crop_spec, backgrounds, reader, run, target_precision, seed
            )
            scores["regions+crops"] = np.maximum(region, scores["crops"])
            seconds["crops"] = time.perf_counter() - started
            seconds["regions+crops"] = seconds["regions"] + seconds["crops"]
        for s, S in scores.items():
            if s not in judged:
                judged[s] = judge(
                    S, Y, tags, target_precision, floor_of(s, spec), spec.threshold if "regions" in s else None
                )
    strategy = choose(judged)
    chosen = judged[strategy]

    by_tag: dict[str, list[str]] = {}
    for e in examples:
        for tag in e.labels:
            by_tag.setdefault(tag, []).append(e.uri)
    index = run(build_index, [(by_tag, reader, spec)])[0] if "regions" in strategy else None
    whole = crop_head = None
    if "whole" in strategy:
        whole = train_multilabel_head(facet, X, labels, X[:0], [], target_precision, seed=seed)
    if "crops" in strategy:
        crop_head = train_crop_head(facet, X, labels, crop_negatives, target_precision, seed)
    head = RegionHead(
        facet,
        tags,
        strategy,
        chosen["thresholds"],
        spec,
        index,
        whole,
        crop_head,
        crop_spec if crop_head is not None else None,
        {t: list(identifiers.get(t, [])) for t in tags} if "ocr" in strategy else None,
    )
    head.metrics = {
        **{k: v for k, v in chosen.items() if k not in ("thresholds", "applied")},
        "strategy": strategy,
        "strategies": {
            s: {
                "accuracy": j["accuracy"],
                "balanced_accuracy": j["balanced_accuracy"],
                "n_holdout": len(examples),
                "fit_seconds": seconds[s],
                "applied_precision": j["applied_precision"],
                "applied_recall": j["applied_recall"],
            }
            for s, j in judged.items()
        },
        "target_precision": target_precision,
        "folds": len(folds),
        "n_train": len(examples),
        "n_holdout": len(examples),
        "never_applied": [t for t, v in chosen["thresholds"].items() if v >= NEVER],
        "compared": sorted(judged),  # the channels not computed could not have displaced the simplest
    }
    S = scores[strategy]
    head.holdout = [
        {
            "media_id": e.media_id,
            "true": sorted(e.labels),
            "applied": [t for k, t in enumerate(tags) if chosen["applied"][i, k]],
            "scores": {t: round(float(S[i, k]), 4) for k, t in enumerate(tags) if S[i, k] > 0},
            "boxes": {d.tag_id: list(d.box) for d in found[i]},
        }
        for i, e in enumerate(examples)
    ]
    return head
