"""Multi facets' heads inside the `heads` step: regions and whole-photo heads, chosen and calibrated on the
group-aware folds of the examples (ml/region_head.py), versioned like the single facets' heads."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import polars as pl

from ml.region_head import MultiExample, RegionHead, train_region_head
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


def region_extra() -> str:
    """What a multi facet's head version depends on beyond its examples: the strategies and region settings."""
    return json.dumps({"mode": "multi", "regions": asdict(SPEC)}, sort_keys=True)


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
) -> RegionHead:
    """A multi facet's head: every example photo scored out of fold (the folds run on the runner's workers)."""
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
    )
    head.model_id = model
    return head
