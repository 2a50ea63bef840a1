"""Sponsor recognition against known truth: what a generated event (or a hand-labelled one) says about the
tags and segments the pipeline applied. Used by the demo and benchmarks/event.py.

- photo sets: per sponsor, precision and recall of the photos with an applied tag of it;
- boxes: each applied tag's IoU with the truth box of that sponsor on that photo (the best of its logos);
- no-logo photos: the share given any sponsor;
- screen time: per sponsor, the union of its applied segments against the union of its true stretches.

Pure: rows in, figures out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ml.regions import Box, box_iou
from ml.sponsor_figures import merge_stretches


def screen_time(stretches: Iterable[tuple[float, float]]) -> float:
    return sum(e - s for s, e, _ in merge_stretches((s, e, 0.0) for s, e in stretches))


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 3) if b else None


def evaluate_sponsors(
    sponsors: Sequence[str],
    applied: Iterable[tuple[str, str, Box | None]],
    segments: Iterable[tuple[str, float, float]],
    photos: Mapping[str, Sequence[tuple[str, Box]]],
    video: Iterable[tuple[str, float, float]],
) -> dict:
    """`applied`: (photo, tag, box) of applied tags; `segments`: (tag, start_s, end_s) applied; `photos`: every
    photo's true (tag, box) list ([] = no logo); `video`: true (tag, start_s, end_s) stretches."""
    said: dict[str, set[str]] = {}
    ious = []
    for photo, tag, box in applied:
        said.setdefault(photo, set()).add(tag)
        truth = [b for t, b in photos.get(photo, []) if t == tag]
        if truth and box is not None:
            ious.append(max(box_iou(tuple(box), b) for b in truth))
    counts = {t: {"tp": 0, "fp": 0, "fn": 0} for t in sponsors}
    empty_hit = 0
    for photo, logos in photos.items():
        shown, found = {t for t, _ in logos}, said.get(photo, set())
        empty_hit += bool(found) and not shown
        for tag, c in counts.items():
            c["tp"] += tag in shown and tag in found
            c["fp"] += tag in found and tag not in shown
            c["fn"] += tag in shown and tag not in found
    segments, video = list(segments), list(video)
    per_sponsor = {}
    for tag, c in counts.items():
        true_s = screen_time((s, e) for t, s, e in video if t == tag)
        found_s = screen_time((s, e) for t, s, e in segments if t == tag)
        per_sponsor[tag] = {
            "photos": c["tp"] + c["fn"],
            "precision": _ratio(c["tp"], c["tp"] + c["fp"]),
            "recall": _ratio(c["tp"], c["tp"] + c["fn"]),
            "screen_time_true_s": round(true_s, 1),
            "screen_time_found_s": round(found_s, 1),
            "screen_time_error_s": round(found_s - true_s, 1),
        }
    tp, fp, fn = (sum(c[k] for c in counts.values()) for k in ("tp", "fp", "fn"))
    n_empty = sum(not v for v in photos.values())
    return {
        "photos": len(photos),
        "no_logo_photos": n_empty,
        "photo_set_precision": _ratio(tp, tp + fp),
        "photo_set_recall": _ratio(tp, tp + fn),
        "no_logo_photos_given_a_sponsor": _ratio(empty_hit, n_empty),
        "mean_box_iou": round(sum(ious) / len(ious), 3) if ious else None,
        "box_iou_at_least_0.5": _ratio(sum(i >= 0.5 for i in ious), len(ious)),
        "screen_time_abs_error_s_mean": round(
            sum(abs(v["screen_time_error_s"]) for v in per_sponsor.values()) / max(1, len(per_sponsor)), 2
        ),
        "per_sponsor": per_sponsor,
    }
