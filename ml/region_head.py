"""The head of a multi facet: any number of its tags on a photo, each where it is, or none of them.

A multi facet (sponsor, products in event photos, inventory: ml/catalog.py's `mode: multi`) is recognised by
two channels, each scored per (photo, tag):

- `regions`: the facet's example photos as a logo index (ml/regions.py): keypoints that one homography maps
  from an example onto the photo. It finds a logo at 1-5 % of the frame, rotated, tilted, partly hidden, and
  says where it is (the box). Its score is inliers / (inliers + 15), from 0.35 (8 inliers, the fewest that
  fix a homography) up.
- `whole`: per-tag binary heads on the whole photo's embedding (ml/multilabel.py), for what fills the photo
  (a sofa in a lounge): no box.

Three strategies are compared on the group-aware holdout: each channel alone and both fused (a tag's score is
the higher of the two). The examples are cut into folds by group (ml/splits.py: a shoot, session or look-alike
cluster never on both sides); each fold's photos are scored by an index and heads built from the other folds,
so every example photo gets an out-of-fold score, and photos labelled `none` (explicit negatives) and other
tags' photos are the negatives. Per-tag thresholds come from these scores with ml/multilabel.py's rule (the
Wilson lower bound of precision reaches the facet's `target_precision`, 0.95 for sponsors, and at most 5 % of
the `none` photos get a tag), each then lowered to the bottom of the gap the holdout cannot see into
(`lowest_in_gap`: a new photo's small logo scores lower than an example's large one). A strategy must beat
the simpler one by `MARGIN` in exact-set accuracy to be chosen (regions, then whole, then both). The head in
use is then built from every example.

Scores under a tag's threshold but above the channel's floor are candidates sent to review; photos where no
channel sees anything get no row at all ("none of them" is an answer).

Pure ML code: no Dagster, no Ray (the caller maps `fold_task` and `detect_task` over its workers).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ml.calibration import NEVER, wilson_interval
from ml.keypoints import SATURATION
from ml.media import MediaProblem, MediaReader, decode_image
from ml.multilabel import CANDIDATE, MultiLabelHead, calibrate_multilabel, label_matrix, train_multilabel_head
from ml.regions import Detection, LogoIndex, RegionSpec, detect
from ml.splits import group_folds

STRATEGIES = ("regions", "whole", "regions+whole")
MARGIN = 0.02  # exact-set accuracy a costlier strategy must add
FOLDS = 4
DECODE_SIDE = 1280  # photos are decoded at about this long side (ml/regions.py works at 1280 px)


def region_floor(spec: RegionSpec) -> float:
    """The lowest score a detection can have: `min_matches` inliers."""
    return spec.min_matches / (spec.min_matches + SATURATION)


def floor_of(strategy: str, spec: RegionSpec) -> float:
    return CANDIDATE if strategy == "whole" else region_floor(spec)


@dataclass(frozen=True)
class MultiExample:
    media_id: str
    uri: str
    labels: frozenset[str]  # the facet's tags the photo shows; empty for a `none` example
    group: str


@dataclass
class RegionHead:
    """A multi facet's head; `strategy` is one of STRATEGIES."""

    facet: str
    classes: list[str]
    strategy: str
    thresholds: dict[str, float]
    spec: RegionSpec
    index: LogoIndex | None = None  # regions (None: the strategy reads the whole photo only)
    whole: MultiLabelHead | None = None  # whole-photo binary heads (None: regions only)
    metrics: dict = field(default_factory=dict)
    holdout: list[dict] = field(default_factory=list)  # per example photo: truth, out-of-fold scores, applied
    model_id: str | None = None  # the backbone the whole-photo heads read
    multi = True
    reads_text = False  # no OCR or whole-photo keypoint evidence: regions carry their own keypoints
    matches_keypoints = False

    @property
    def uses_regions(self) -> bool:
        return self.index is not None

    def tag_rows(self, detections: Sequence[Detection] | None, vector: np.ndarray | None) -> list[dict]:
        """Rows {tag_id, score, status, box} for one photo: a tag whose score reaches its threshold is `applied`,
        one above the floor goes to `review`; the box is the tag's best detection (None: the whole photo)."""
        best: dict[str, Detection] = {}
        for d in detections or []:
            if d.tag_id in self.thresholds and (d.tag_id not in best or d.score > best[d.tag_id].score):
                best[d.tag_id] = d
        whole = (
            dict(zip(self.whole.tags, self.whole.scores(vector[None, :])[0], strict=True))
            if (self.whole is not None and vector is not None)
            else {}
        )
        rows = []
        for tag in self.classes:
            found = best.get(tag)
            region = found.score if found else 0.0
            score = max(region, float(whole.get(tag, 0.0)))
            if score < floor_of(self.strategy, self.spec):
                continue
            status = "applied" if score >= self.thresholds[tag] else "review"
            box = list(found.box) if found and region >= score else None
            rows.append({"tag_id": tag, "score": float(score), "status": status, "box": box})
        return sorted(rows, key=lambda r: -r["score"])


def load_picture(reader: MediaReader, uri: str):
    return decode_image(reader.read(uri), DECODE_SIDE)


def build_index(examples: Mapping[str, Sequence[str]], reader: MediaReader, spec: RegionSpec) -> LogoIndex:
    """The logo index of {tag: example uris}; an example that cannot be decoded is left out."""
    pictures: dict[str, list] = {}
    for tag, uris in examples.items():
        for uri in uris:
            try:
                pictures.setdefault(tag, []).append(load_picture(reader, uri))
            except MediaProblem:
                continue  # the examples step quarantined it with its reason
    return LogoIndex.build(pictures, spec)


def detect_task(index: LogoIndex, uris: Sequence[str], reader: MediaReader, floor: float) -> list:
    """Per uri, its detections at or above `floor`, or the reason it could not be read (a str)."""
    out: list = []
    for uri in uris:
        try:
            out.append(detect(index, load_picture(reader, uri), floor))
        except (MediaProblem, OSError) as exc:
            out.append(f"cannot read: {exc}")
    return out


def detect_video_task(index: LogoIndex, uri: str, timestamps: Sequence[float], reader: MediaReader, floor: float):
    """[(ts, detections)] at the video's sampled frames, or the reason it could not be read (a str)."""
    from ml.video import open_video  # PyAV/decord load only where videos are read

    try:
        video = open_video(uri, media=reader)
    except MediaProblem as exc:
        return f"cannot read: {exc.reason}"
    try:
        wanted = sorted(timestamps)
        out = []
        for frame in video.frames_at(wanted):
            ts = min(wanted, key=lambda t, at=frame.ts: abs(t - at))  # the sampled stamp the frame stands for
            out.append((ts, detect(index, frame.image, floor)))
        return out
    except MediaProblem as exc:
        return f"cannot read: {exc.reason}"
    finally:
        video.close()


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


def judge(
    scores: np.ndarray, Y: np.ndarray, tags: Sequence[str], target: float, floor: float, lowest: float | None = None
) -> dict:
    """Thresholds from out-of-fold scores, and what they give on those photos (the group-aware figures);
    `lowest`: see `lowest_in_gap` (None: thresholds stay at the lowest qualifying observed score)."""
    thresholds = calibrate_multilabel(scores, Y, tags, target, floor=floor)
    if lowest is not None:
        thresholds = lowest_in_gap(thresholds, scores, floor, lowest)
    applied = np.column_stack([scores[:, k] >= thresholds[t] for k, t in enumerate(tags)]).astype(bool)
    truth = Y.astype(bool)
    per_tag = {}
    for k, tag in enumerate(tags):
        tp = int((applied[:, k] & truth[:, k]).sum())
        per_tag[tag] = {
            "n": int(truth[:, k].sum()),
            "applied": int(applied[:, k].sum()),
            "precision": tp / applied[:, k].sum() if applied[:, k].any() else None,
            "recall": tp / truth[:, k].sum() if truth[:, k].any() else None,
            "threshold": thresholds[tag],
        }
    tp, n_applied, n_true = int((applied & truth).sum()), int(applied.sum()), int(truth.sum())
    empty = ~truth.any(axis=1)
    low, high = wilson_interval(tp, n_applied) if n_applied else (0.0, 1.0)
    recalls = [v["recall"] for v in per_tag.values() if v["recall"] is not None]
    return {
        "thresholds": thresholds,
        "applied": applied,
        "accuracy": float((applied == truth).all(axis=1).mean()),  # exact set: every tag right, none extra
        "balanced_accuracy": float(np.mean(recalls)) if recalls else 0.0,  # mean per-tag applied recall
        "applied_precision": tp / n_applied if n_applied else None,
        "applied_precision_low": low,
        "applied_precision_high": high,
        "applied_recall": tp / n_true if n_true else None,
        "none_photos": int(empty.sum()),
        "none_false_positive_rate": float(applied[empty].any(axis=1).mean()) if empty.any() else None,
        "per_tag": per_tag,
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
) -> RegionHead:
    """A multi facet's head from its example photos (`X`: their whole-photo embeddings, None: regions only).
    `run(fn, calls)` maps a task over the caller's workers (the folds, then the final index, run there)."""
    tags = sorted({t for e in examples for t in e.labels})
    if not tags:
        raise ValueError(f"facet {facet!r}: no example shows any of its tags")
    folds = fold_plan(examples, seed)
    if not folds:
        raise ValueError(f"facet {facet!r}: too few examples or groups to hold any out (need 2 per tag)")
    Y = label_matrix([set(e.labels) for e in examples], tags)
    started = time.perf_counter()
    calls = fold_calls(examples, folds, reader, spec)
    region, found = region_scores(examples, folds, run(fold_task, calls), tags)
    scores = {"regions": region}
    seconds = {"regions": time.perf_counter() - started}
    if X is not None:
        started = time.perf_counter()
        scores["whole"] = whole_scores(examples, folds, X, tags, target_precision, seed)
        scores["regions+whole"] = np.maximum(region, scores["whole"])
        seconds["whole"] = time.perf_counter() - started
        seconds["regions+whole"] = seconds["regions"] + seconds["whole"]
    judged = {
        s: judge(S, Y, tags, target_precision, floor_of(s, spec), spec.threshold if s != "whole" else None)
        for s, S in scores.items()
    }
    strategy = choose(judged)
    chosen = judged[strategy]

    by_tag: dict[str, list[str]] = {}
    for e in examples:
        for tag in e.labels:
            by_tag.setdefault(tag, []).append(e.uri)
    index = run(build_index, [(by_tag, reader, spec)])[0] if strategy != "whole" else None
    whole = None
    if strategy != "regions":
        whole = train_multilabel_head(
            facet, X, [set(e.labels) for e in examples], X[:0], [], target_precision, seed=seed
        )
    head = RegionHead(facet, tags, strategy, chosen["thresholds"], spec, index, whole)
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
