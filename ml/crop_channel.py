"""Sliding windows as regions: a multi facet's tags in square windows of a photo, read by whole-photo heads.

Keypoints (ml/regions.py) find what is printed and textured: logos, packaging. A sofa, a side table or a bar
from the rental inventory has few keypoints that survive a new room's light; what finds it is the backbone's
embedding of a window around it. So the photo is cut into square windows (`ml/regions.proposals` at
CROP_SCALES of its short side, overlapping by a quarter), each window is embedded by the library's backbone, and
per-tag binary heads (ml/multilabel.py) score it; a tag's score on the photo is its best window's, and that
window is its box.

The heads learn from the examples' whole photos (an item fills 10-100 % of an example, about what it fills of a
window around it) against negatives: the `none` examples' windows, and windows of a sample of the library's
own photos (background: its rooms, stages, crowds). A library window can show one of the tags unlabelled; the
sample is small against the examples, and the holdout (ml/region_head.py) judges whether the channel pays.

Pure ML code: the caller maps `window_task` and `crop_task` over its workers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ml.backbones import BackboneSpec, cached_backbone
from ml.media import MediaProblem, MediaReader, decode_image
from ml.multilabel import CANDIDATE, MultiLabelHead, train_multilabel_head
from ml.regions import Box, Detection, proposals

CROP_SCALES = (0.25, 0.5)
OVERLAP = 0.25
DECODE_SIDE = 1024  # windows of a larger photo gain nothing at the model's 224 px input
BACKGROUND_PHOTOS = 24  # library photos whose windows are negatives
BACKGROUND_WINDOWS = 8  # per background photo, drawn at random


def windows(image) -> tuple[list[Box], list]:
    """The photo's windows (normalised boxes) and their crops."""
    boxes = proposals(image.width, image.height, CROP_SCALES, OVERLAP)
    w, h = image.width, image.height
    crops = [
        image.crop((round(x * w), round(y * h), round((x + bw) * w), round((y + bh) * h))) for x, y, bw, bh in boxes
    ]
    return boxes, crops


def window_task(spec: BackboneSpec, uris: Sequence[str], reader: MediaReader) -> list:
    """Per uri, (boxes, window vectors (windows, dim)) or the reason it could not be read (a str)."""
    backbone = cached_backbone(spec)
    out: list = []
    for uri in uris:
        try:
            boxes, crops = windows(decode_image(reader.read(uri), DECODE_SIDE))
        except (MediaProblem, OSError) as exc:
            out.append(f"cannot read: {getattr(exc, 'reason', exc)}")
            continue
        out.append((boxes, backbone.embed(crops)))
    return out


def best_windows(head: MultiLabelHead, boxes: Sequence[Box], vectors: np.ndarray, floor: float = CANDIDATE):
    """Per tag, its best window as a Detection when that window's score reaches `floor`."""
    if len(vectors) == 0:
        return []
    scores = head.scores(vectors)
    best = scores.argmax(axis=0)
    return [
        Detection(tag, float(scores[best[k], k]), tuple(boxes[best[k]]), 0)
        for k, tag in enumerate(head.tags)
        if scores[best[k], k] >= floor
    ]


def crop_task(spec: BackboneSpec, head: MultiLabelHead, uris: Sequence[str], reader: MediaReader) -> list:
    """Per uri, the tags' best windows (Detections) or the reason it could not be read (a str)."""
    return [r if isinstance(r, str) else best_windows(head, *r) for r in window_task(spec, uris, reader)]


def background_vectors(found: Sequence, seed: int) -> np.ndarray:
    """BACKGROUND_WINDOWS random windows' vectors of each background photo (`window_task` results)."""
    rng = np.random.default_rng([seed, 7])
    parts = []
    for r in found:
        if isinstance(r, str) or len(r[1]) == 0:
            continue
        pick = rng.choice(len(r[1]), size=min(BACKGROUND_WINDOWS, len(r[1])), replace=False)
        parts.append(r[1][pick])
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def train_crop_head(
    facet: str,
    X: np.ndarray,
    labels: Sequence[set[str]],
    negatives: np.ndarray,
    target_precision: float,
    seed: int,
) -> MultiLabelHead:
    """Per-tag heads on the examples' whole photos plus window negatives (labelled with no tag)."""
    if len(negatives):
        X = np.concatenate([X, negatives])
        labels = [*labels, *[set()] * len(negatives)]
    return train_multilabel_head(facet, X, labels, X[:0], [], target_precision, seed=seed)
