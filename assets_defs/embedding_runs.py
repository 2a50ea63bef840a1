"""Embedding photos on the task runner, shared by the assets that need vectors: `embeddings` (every photo,
every candidate backbone) and `examples` (the example photos with the library's backbone, whose near-copies
and look-alike clusters are the groups of the holdout split: ml/groups.py).

Both write into the same per-model store, so what `examples` embeds is never embedded again by `embeddings`.
Which backbones to embed with is not decided here but in resources/backbone_plan.py.
"""

from __future__ import annotations

import hashlib

import numpy as np

from assets_defs.common import chunked, progress
from assets_defs.photo_runs import missing
from ml.backbone_choice import ENSEMBLE_OF
from ml.backbones import BackboneSpec
from ml.backbones.concat import join
from ml.embedding import ChunkResult, EmbedItem, embed_chunk, write_embeddings
from ml.media import MediaReader
from resources.backbone_plan import BackbonePlan
from resources.ray_runner import TaskRunner
from resources.warehouse import Warehouse

CHUNK = 256


def balanced_chunk(n_items: int, slots: int, max_chunk: int = CHUNK) -> int:
    """Largest chunk <= max_chunk that cuts n_items into a multiple of `slots` equal tasks.

    With a fixed 256, 768 items make 3 tasks on 2 slots: the third runs alone and half the machine idles for
    a third of the run.
    """
    rounds = max(1, -(-n_items // (slots * max_chunk)))
    return max(1, -(-n_items // (rounds * slots)))


def embed_calls(
    spec: BackboneSpec,
    model_id: str,
    todo: list[EmbedItem],
    warehouse: Warehouse,
    library: str,
    runner: TaskRunner,
    reader: MediaReader,
) -> list[tuple]:
    """The embed_chunk calls for `todo` with one backbone: balanced chunks, one Parquet part file each."""
    out_dir = warehouse.embeddings_dir(library, model_id)
    # In tasks: one runtime thread per reserved core and one decode thread (decoding shares the cores anyway).
    decode_threads = 1 if runner.threads_per_task() else 2
    size = balanced_chunk(len(todo), runner.slots()) if todo else CHUNK
    calls = []
    for chunk in chunked(todo, size):
        digest = hashlib.sha256("".join(i.media_id for i in chunk).encode()).hexdigest()[:16]
        calls.append((spec, list(chunk), str(out_dir / f"part-{digest}.parquet"), reader, decode_threads))
    return calls


def calls_per_model(
    plan: BackbonePlan,
    models,
    items: list[EmbedItem],
    runner: TaskRunner,
    reader: MediaReader,
) -> tuple[list[tuple], dict[str, int]]:
    """The embed_chunk calls for `items` with every (backbone name, model id) of `models` (from `plan`), each for
    the items it has no vector for yet; and per model id how many items it had already."""
    warehouse, library = plan.warehouse, plan.library
    calls, had = [], {}
    for name, model_id in models:
        todo = missing(items, warehouse.embedded_ids(library, model_id))
        had[model_id] = len(items) - len(todo)
        spec = plan.spec(name=name, threads=runner.threads_per_task())
        calls += embed_calls(spec, model_id, todo, warehouse, library, runner, reader)
    return calls, had


def embed_missing(
    context,
    plan: BackbonePlan,
    runner: TaskRunner,
    items: list[EmbedItem],
    reader: MediaReader,
) -> list[ChunkResult]:
    """Embed the `items` the library's backbone has no vector for yet (progress in the Dagster log)."""
    warehouse, library = plan.warehouse, plan.library
    model_id = plan.library_model_id()
    todo = missing(items, warehouse.embedded_ids(library, model_id))
    if not todo:
        return []
    spec = plan.spec(threads=runner.threads_per_task())
    calls = embed_calls(spec, model_id, todo, warehouse, library, runner, reader)
    return runner.map(embed_chunk, calls, on_result=progress(context, "embed examples"))


def ensemble_parts(models: dict, candidates: dict) -> dict:
    """`models` ({role: (name, model id)}) with the ensemble replaced by its parts (from `candidates`, the plan's
    candidate models): what to embed, the ensemble being joined afterwards by `join_ensemble`. Its parts' vectors
    are kept and shared with a facet that reads a part alone."""
    out = {role: model for role, model in models.items() if role != "ensemble"}
    if "ensemble" in models:
        out |= {role: candidates[role] for role in ENSEMBLE_OF}
    return out


def join_ensemble(warehouse: Warehouse, library: str, models: dict, media_ids: list[str]) -> int:
    """Write the ensemble's vectors of `media_ids` that it lacks, from its parts' (ml/backbones/concat.py `join`,
    what the ensemble backbone computes: never embedded twice); a photo some part has no vector for (it failed,
    and was quarantined with its reason) is left out. `models`: {role: (name, model id)} holding the ensemble and
    its parts. Returns how many were written."""
    model = models["ensemble"][1]
    todo = sorted(set(media_ids) - warehouse.embedded_ids(library, model))
    parts = [dict(zip(*warehouse.read_embeddings(library, models[r][1], todo), strict=True)) for r in ENSEMBLE_OF]
    ids = [m for m in todo if all(m in part for part in parts)]
    if ids:
        vectors = join([np.stack([part[m] for m in ids]) for part in parts])
        digest = hashlib.sha256("".join(ids).encode()).hexdigest()[:16]
        write_embeddings(str(warehouse.embeddings_dir(library, model) / f"part-{digest}.parquet"), ids, model, vectors)
    return len(ids)
