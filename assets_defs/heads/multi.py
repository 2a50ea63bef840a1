"""Multi facets' heads inside the `heads` step: regions and whole-photo heads, chosen and calibrated on the
group-aware folds of the examples (ml/region_head.py), versioned like the single facets' heads."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import polars as pl

from ml.backbones import BackboneSpec
from ml.crop_channel import BACKGROUND_PHOTOS, CROP_SCALES, OVERLAP
from ml.ocr import OcrSpec
from ml.region_head import MultiExample, RegionHead
from ml.region_training import train_region_head
from ml.regions import RegionSpec
from resources.media_store import MediaStore
from resources.ray_runner import TaskRunner
from resources.warehouse import Warehouse

SPEC = RegionSpec()


def multi_examples(group: pl.DataFrame) -> list[MultiExample]:
    """One MultiExample per photo of a multi facet's example rows (a `none` row: no tags)."""
    out = []
    for (media_id,), rows in group.group_by("media_id", maintain_order=True):
        labels = frozenset(t for t in rows["tag_id"].to_list() if t != "none")
        out.append(MultiExample(media_id, rows["uri"][0], labels, rows["group"][0] or media_id))
    return out


def region_extra(identifiers: dict[str, list[str]], ocr: str) -> str:
    """What a multi facet's head version depends on beyond its examples: the region and window settings, the
    tags' word marks and the OCR model that read the examples ('' when OCR did not run)."""
    crops = {"scales": CROP_SCALES, "overlap": OVERLAP, "backgrounds": BACKGROUND_PHOTOS}
    marks = {"identifiers": identifiers, "ocr": ocr}
    return json.dumps({"mode": "multi", "regions": asdict(SPEC), "crops": crops, **marks}, sort_keys=True)


def train_multi(
    warehouse: Warehouse,
    library: str,
    model: str,
    group: pl.DataFrame,
    media_store: MediaStore,
    runner: TaskRunner,
    target_precision: float,
    seed: int,
    log,
    crop_spec: BackboneSpec,
    identifiers: dict[str, list[str]],
) -> RegionHead:
    """A multi facet's head: every example photo scored out of fold (the folds run on the runner's workers). The
    window channel's background negatives are a sample of the library's photos taken now (BACKGROUND_PHOTOS, by
    media_id): not part of the head's version, so a growing library does not retrain its multi facets."""
    examples = multi_examples(group)
    ids, X = warehouse.read_embeddings(library, model, [e.media_id for e in examples])
    vectors = None
    if len(ids) == len(examples):  # the whole-photo channel needs every example's vector
        row_of = {m: i for i, m in enumerate(ids)}
        vectors = np.asarray(X)[[row_of[e.media_id] for e in examples]]
    else:
        log(f"{group['facet'][0]}: {len(examples) - len(ids)} examples have no {model} vector: regions only")
    head = train_region_head(
        group["facet"][0],
        examples,
        vectors,
        media_store.reader(),
        lambda fn, calls: runner.map(fn, calls),
        target_precision=target_precision,
        spec=SPEC,
        seed=seed,
        crop_spec=crop_spec,
        backgrounds=background_uris(warehouse, library, {e.media_id for e in examples}),
        ocr_of=ocr_rows(warehouse.read(library, "ocr_text")),
        identifiers=identifiers,
    )
    head.model_id = model
    return head


def background_uris(warehouse: Warehouse, library: str, exclude: set[str]) -> list[str]:
    """Up to BACKGROUND_PHOTOS of the library's photos (not examples), by media_id (a content hash: no order)."""
    media = warehouse.read(library, "media")
    photos = media.filter((pl.col("status") == "ok") & (pl.col("kind") == "image") & ~pl.col("media_id").is_in(exclude))
    return photos.unique("media_id").sort("media_id").head(BACKGROUND_PHOTOS)["uri"].to_list()


def ocr_rows(table: pl.DataFrame, ts: bool = False) -> dict:
    """{media_id: [(text, confidence, corners, width, height)]} of the current OCR settings' reading of photos
    (`ts`: {(media_id, ts): ...} of video frames), what ml/word_marks.py matches."""
    current = table.filter(pl.col("model") == OcrSpec().model_id)
    out: dict = {}
    for media_id, at, *row in current.select(
        "media_id", "ts", "text", "confidence", "box", "image_w", "image_h"
    ).iter_rows():
        out.setdefault((media_id, at) if ts else media_id, []).append(tuple(row))
    return out


def word_marks_of(catalog, facet: str) -> dict[str, list[str]]:
    """Per tag of the facet: its identifiers, name and aliases (a word mark is a name)."""
    return {t.tag_id: [*t.identifiers, t.name, *t.aliases] for t in catalog.tags if t.facet == facet}
