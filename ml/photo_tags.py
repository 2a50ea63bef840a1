"""How a photo's evidence becomes its `tags` rows: the one scoring path of a Dagster run and of one photo now.

The `tags` and `detections` assets (assets_defs/tags/) score every photo of a library from the tables a run
wrote (embeddings, OCR boxes, keypoints, detections); the HTTP API's "tag this photo now" (tagsmith/tag_now.py)
computes the same evidence for one uploaded file. Both call the functions here, so a photo tagged now gets the
rows a run would write for it, and a change to how heads score reaches both at once.

Pure ML code: no Dagster, no Ray.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ml.crop_channel import crop_task
from ml.facet_head import predict_table
from ml.keypoints import Features
from ml.media import MediaReader
from ml.region_head import detect_task, region_floor
from ml.regions import Detection


def single_tag_rows(
    head,
    version: str,
    ids: Sequence[str],
    X: np.ndarray,
    boxes: Sequence[Sequence[tuple[str, float]]] | None = None,
    features: Sequence[Features | None] | None = None,
) -> list[dict]:
    """`tags` rows of a single facet: each photo's top tag (ml/facet_head.py predict_table) under `version`; a
    combined head gets each photo's OCR boxes (text, confidence) and keypoint features (None: none found)."""
    if not len(ids):
        return []
    return [{**row, "head_version": version} for row in predict_table(head, ids, X, boxes, features)]


def multi_tag_rows(head, version: str, found: Mapping[str, Sequence[Detection]], ids: Sequence[str], X) -> list[dict]:
    """`tags` rows of a multi facet: per photo, each tag its head applies or sends to review (ml/region_head.py);
    a photo where it sees none of them gets no row."""
    rows = []
    for i, media_id in enumerate(ids):
        vector = X[i] if head.whole is not None else None
        for row in head.tag_rows(found.get(media_id, []), vector):
            rows.append({"media_id": media_id, "facet": head.facet, "head_version": version, **row})
    return rows


def reads_regions(head) -> bool:
    """Whether a promoted head looks for its tags in parts of the photo (logo regions or windows): only those
    get `detections`; another multi head scores the whole photo."""
    return bool(getattr(head, "multi", False) and (head.uses_regions or head.uses_crops))


def pixel_tasks(head, uris: Sequence[str], reader: MediaReader) -> list[tuple[str, Callable, tuple]]:
    """(label, task, arguments) of each channel of a region-reading head that reads the photos' pixels: logo
    regions (ml/region_head.py) and windows (ml/crop_channel.py). Each task returns, per uri, its detections or
    the reason it could not be read (a str). Word marks are no task: a lookup in OCR rows already read."""
    tasks = []
    if head.uses_regions:
        tasks.append(("regions", detect_task, (head.index, list(uris), reader, region_floor(head.spec))))
    if head.uses_crops:
        tasks.append(("windows", crop_task, (head.crop_spec, head.crop_head, list(uris), reader)))
    return tasks


def joined(results: Sequence[list[Detection] | str]) -> list[Detection] | str:
    """One photo's detections of every channel, or the first channel's reason it could not be read."""
    problem = next((r for r in results if isinstance(r, str)), None)
    return problem if problem is not None else [d for r in results for d in r]
