"""The promoted heads' scores on a video's sampled frames: what `video_segments` smooths into segments.

Frames are scored one time range at a time (`ranges_of` yields a range's stamps and embeddings), so memory
holds scores, not embeddings, for a whole video. Each facet's head reads its own backbone's frame embeddings;
heads that read printed text get the OCR boxes read on the frames (spread over the frames of a scene, since a
label is legible on some frames only), heads that match keypoints get the frames' ORB features, and a frame
unlike every example of the facet (an empty room, a title card) recognises nothing: its scores are zeroed.

Pure ML code: no Dagster, no Ray, no storage (the caller reads the tables and passes what they hold).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ml.facet_head import FacetHead
from ml.keypoints import Features

# (stamps, embeddings) of one time range of a video, read from one backbone's frame embeddings
RangeEmbeddings = tuple[list[float], np.ndarray]


@dataclass
class FrameScores:
    """One facet's scores on a video's frames: `scores[i]` (one column per class of the head) at `stamps[i]`."""

    stamps: list[float]
    scores: np.ndarray


def stamp_key(ts: float) -> float:
    """Frame stamps as the tables' keys: rounded to 0.1 ms, so float noise never misses a match."""
    return round(ts, 4)


def score_video_frames(
    heads: Mapping[str, FacetHead],
    ranges_of: Callable[[str], Iterable[RangeEmbeddings]],
    default_model: str,
    cuts: Sequence[float] = (),
    boxes: Mapping[float, Sequence[tuple[str, float]]] | None = None,
    keypoints_of: Callable[[list[float]], Mapping[float, tuple]] | None = None,
) -> dict[str, FrameScores]:
    """Every facet's combined scores on one video's frames, for the facets whose backbone embedded any frame.

    `heads`: {facet: head}; `ranges_of(model)`: the video's frame embeddings by that backbone, range by range;
    `default_model`: the backbone of heads that do not name one; `cuts`: the scene changes' stamps; `boxes`:
    {stamp_key(ts): [(text, confidence), ...]} read on the frames; `keypoints_of(stamps)`: the stored ORB
    features of the range holding those stamps, {stamp_key(ts): Features.from_bytes arguments}.
    """
    boxes = boxes or {}
    by_model: dict[str, list[str]] = {}  # the facets whose heads read each backbone's frame embeddings
    for facet, head in heads.items():
        by_model.setdefault(head.model_id or default_model, []).append(facet)
    stamps_of: dict[str, list[float]] = {facet: [] for facet in heads}
    visual: dict[str, list[np.ndarray]] = {facet: [] for facet in heads}
    # per facet reading text, per channel ("ocr": identifiers, "text": learnt from the examples' print)
    text: dict[str, dict[str, list[np.ndarray]]] = {facet: {} for facet, head in heads.items() if head.reads_text}
    matched: dict[str, list[np.ndarray]] = {facet: [] for facet, head in heads.items() if head.matches_keypoints}
    familiar: dict[str, list[np.ndarray]] = {facet: [] for facet in heads}
    for model, facets in by_model.items():
        for ts, X in ranges_of(model):  # one range at a time
            features = None
            if keypoints_of is not None and any(f in matched for f in facets):
                stored = keypoints_of(ts)
                keys = [stamp_key(t) for t in ts]
                features = [Features.from_bytes(*stored[k]) if k in stored else None for k in keys]
            for facet in facets:
                head = heads[facet]
                stamps_of[facet].extend(ts)
                scored = head.visual_scores(X)
                visual[facet].append(scored.astype(np.float32))
                familiar[facet].append(head.familiar(X))
                if facet in text:
                    read = [boxes.get(stamp_key(t), []) for t in ts]
                    for channel, found in head.evidence(scored, boxes=read).items():
                        text[facet].setdefault(channel, []).append(found.astype(np.float32))
                if facet in matched:
                    found = head.evidence(scored, features=features).get("keypoints", np.zeros_like(scored))
                    matched[facet].append(found.astype(np.float32))
    out: dict[str, FrameScores] = {}
    for facet, head in heads.items():
        stamps = stamps_of[facet]
        if not stamps:
            continue
        # printed text read on any frame of a scene counts for the scene's nearby frames, then the head
        # combines it with the picture
        evidence = {
            channel: spread_within_scenes(stamps, np.concatenate(parts), list(cuts))
            for channel, parts in text.get(facet, {}).items()
        }
        if facet in matched:
            evidence["keypoints"] = np.concatenate(matched[facet])
        combined = head.combine(np.concatenate(visual[facet]), evidence)
        # a frame unlike every example (nothing on screen) recognises nothing: its scores are zeroed
        scores = np.where(np.concatenate(familiar[facet])[:, None], combined, 0.0).astype(np.float32)
        out[facet] = FrameScores(stamps, scores)
    return out


def top_tags(scores: np.ndarray, classes: Sequence[str]) -> tuple[list[str | None], list[float | None]]:
    """Each frame's top tag and its score; None for both where nothing is recognised (every score is 0)."""
    top = scores.argmax(axis=1)
    best = scores[np.arange(len(top)), top].astype(np.float64)
    tags = [classes[i] if v > 0 else None for i, v in zip(top, best, strict=True)]
    return tags, [float(v) if v > 0 else None for v in best]


def spread_within_scenes(
    stamps: list[float], evidence: np.ndarray, cuts: list[float], window_s: float = 5.0
) -> np.ndarray:
    """Each frame's text evidence becomes the largest of the frames of its scene within `window_s`."""
    order = np.argsort(np.asarray(stamps, dtype=np.float64), kind="stable")
    times = np.asarray(stamps, dtype=np.float64)[order]
    scene = np.searchsorted(np.sort(np.asarray(cuts, dtype=np.float64)), times + 1e-6)
    ordered = evidence[order]
    out = np.empty_like(evidence)
    lo = np.searchsorted(times, times - window_s, side="left")
    hi = np.searchsorted(times, times + window_s, side="right")
    for i in range(len(times)):
        window = slice(lo[i], hi[i])
        out[order[i]] = ordered[window][scene[window] == scene[i]].max(axis=0)
    return out
