"""From per-frame head scores to `video_segments`: smoothed, merged, thresholded stretches of a tag.

A product on screen for 7 seconds should be one segment 00:38:12-00:38:19, not seven frame hits with a
flicker in the middle. So: per-class scores are smoothed over neighbouring samples, a frame is a hit for
the class on top after smoothing (if above a floor), consecutive hits of a class merge when the gap between
them is at most `max_gap_s`, and each segment ends where its last frame's stretch ends. A segment is
`applied` only when its peak clears the tag's calibrated threshold *and* it lasts `min_duration_s`;
short or low-confidence stretches go to `review`, never silently applied.

Pure ML code: no Dagster, no Ray.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SegmentParams:
    window: int = 3  # samples in the moving average (odd)
    max_gap_s: float = 1.5  # hits further apart than this start a new segment
    min_duration_s: float = 1.0  # shorter segments go to review
    floor: float = 0.15  # a smoothed top score below this is "nothing recognised" (status still needs the threshold)
    frame_s: float = 1.0  # how long one interval sample stands for (the sampling interval)


def smooth_scores(scores: np.ndarray, window: int, scene: np.ndarray | None = None) -> np.ndarray:
    """Centred moving average along time (rows), shrinking at the edges so no frame is dropped.

    `scene` (one label per row) keeps the average inside a scene: the frames before a cut never blur the
    first frames after it, which is what keeps a segment's start on the cut.
    """
    if window <= 1 or len(scores) == 0:
        return scores.astype(np.float32)
    scene = np.zeros(len(scores), np.int64) if scene is None else np.asarray(scene)
    half = window // 2
    padded = np.cumsum(np.vstack([np.zeros((1, scores.shape[1])), scores]), axis=0)
    out = np.empty_like(scores, dtype=np.float32)
    starts = np.r_[0, np.flatnonzero(np.diff(scene)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    for first, stop in zip(starts, ends, strict=True):
        for i in range(first, stop):
            lo, hi = max(first, i - half), min(stop, i + half + 1)
            out[i] = (padded[hi] - padded[lo]) / (hi - lo)
    return out


def build_segments(
    ts: Sequence[float],
    scores: np.ndarray,
    classes: Sequence[str],
    thresholds: Mapping[str, float],
    params: SegmentParams = SegmentParams(),
    scene_starts: Sequence[float] = (),
) -> list[dict]:
    """Segments {tag_id, start_s, end_s, peak_score, status} from frame scores (n_frames, n_classes).

    `scene_starts` are the timestamps of scene-change frames: smoothing does not cross them.
    """
    if len(ts) != len(scores):
        raise ValueError("one score row per timestamp")
    if len(ts) == 0:
        return []
    order = np.argsort(np.asarray(ts, dtype=np.float64), kind="stable")
    times = np.asarray(ts, dtype=np.float64)[order]
    scene = np.searchsorted(np.sort(np.asarray(scene_starts, dtype=np.float64)), times + 1e-6)
    smoothed = smooth_scores(np.asarray(scores, dtype=np.float32)[order], params.window, scene)
    top = smoothed.argmax(axis=1)
    top_score = smoothed[np.arange(len(times)), top]

    segments: list[dict] = []
    current: dict | None = None
    for i, t in enumerate(times):
        hit = top_score[i] >= params.floor
        cls = int(top[i])
        # a miss inside the gap tolerance does not end a segment; another class or a longer gap does
        if current is not None and (t - current["last"] > params.max_gap_s or (hit and cls != current["cls"])):
            segments.append(current)
            current = None
        if not hit:
            continue
        if current is None:
            current = {"cls": cls, "start": t, "last": t, "peak": float(top_score[i])}
        else:
            current["last"] = t
            current["peak"] = max(current["peak"], float(top_score[i]))
    if current is not None:
        segments.append(current)

    out = []
    for seg in segments:
        tag = classes[seg["cls"]]
        # a segment lasts until the next sample after its last hit (a scene-change frame ends it at the cut),
        # but at most one sampling interval past it
        later = times[times > seg["last"]]
        end = min(seg["last"] + params.frame_s, float(later[0]) if len(later) else np.inf)
        duration = end - seg["start"]
        confident = seg["peak"] >= thresholds.get(tag, 1.0)
        status = "applied" if confident and duration >= params.min_duration_s else "review"
        out.append(
            {
                "tag_id": tag,
                "start_s": round(float(seg["start"]), 3),
                "end_s": round(float(end), 3),
                "peak_score": round(seg["peak"], 4),
                "status": status,
            }
        )
    return out


def format_timestamp(seconds: float) -> str:
    """00:38:12 style, as segments are printed next to file names."""
    seconds = int(round(seconds))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def temporal_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def evaluate_segments(predicted: Sequence[Mapping], truth: Sequence[Mapping], min_iou: float = 0.5) -> dict:
    """Segment precision/recall and boundary error against known truth.

    Both are {media, tag_id, start_s, end_s} (one facet). A predicted segment matches a true one of the same
    media and tag when their temporal IoU is at least `min_iou`; matching is one-to-one, best IoU first.
    Boundary errors are |start - true start| and |end - true end| of the matched pairs, in seconds.
    """
    pairs = []
    for i, p in enumerate(predicted):
        for j, t in enumerate(truth):
            if p["media"] == t["media"] and p["tag_id"] == t["tag_id"]:
                iou = temporal_iou((p["start_s"], p["end_s"]), (t["start_s"], t["end_s"]))
                if iou >= min_iou:
                    pairs.append((iou, i, j))
    used_p, used_t, errors = set(), set(), []
    for _, i, j in sorted(pairs, reverse=True):
        if i in used_p or j in used_t:
            continue
        used_p.add(i)
        used_t.add(j)
        errors += [
            abs(predicted[i]["start_s"] - truth[j]["start_s"]),
            abs(predicted[i]["end_s"] - truth[j]["end_s"]),
        ]
    matched = len(used_p)
    return {
        "true_segments": len(truth),
        "predicted": len(predicted),
        "matched": matched,
        "precision": round(matched / len(predicted), 4) if predicted else None,
        "recall": round(matched / len(truth), 4) if truth else None,
        "boundary_error_median_s": round(float(np.median(errors)), 3) if errors else None,
        "boundary_error_p90_s": round(float(np.percentile(errors, 90)), 3) if errors else None,
        "boundary_errors": [round(e, 3) for e in errors],
    }
