"""The `embeddings` asset: one vector per (media_id, backbone), never computed twice.

The items to embed are the library's usable media plus its example photos, minus those already in the
store for this backbone; the backbones are the library's own and those `backbone_choice` picked for a
facet. They are cut into chunks and fanned out on the task runner (Ray); each task builds
the backbone once and writes one Parquet part file.
"""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from assets_defs.common import progress, record_quarantine, stage_quarantine, table_results, writes_tables
from assets_defs.embedding_runs import calls_per_model, ensemble_parts, join_ensemble
from assets_defs.photo_runs import items_to_embed
from ml.embedding import embed_chunk
from resources.backbone_plan import BackbonePlan
from resources.libraries import LibraryStore
from resources.media_store import MediaStore
from resources.model_store import ModelStore
from resources.ray_runner import TaskRunner
from resources.warehouse import Warehouse


@writes_tables(
    "embeddings", deps=["media", "examples", "backbone_choice"], group_name="embeddings", kinds={"parquet", "ray"}
)
def embeddings(
    context: AssetExecutionContext,
    libraries: LibraryStore,
    media_store: MediaStore,
    model_store: ModelStore,
    runner: TaskRunner,
    warehouse: Warehouse,
):
    """Image embeddings keyed by (media_id, model), with the library's backbone and every backbone some facet's
    head reads (`backbone_choice`); only missing ones are computed."""
    library = context.partition_key
    config = libraries.config(library)
    plan = BackbonePlan(config, model_store, warehouse, library)
    models = plan.in_use()
    items = items_to_embed(warehouse, library)
    # an ensemble in use is embedded as its parts, then joined (its parts' vectors serve a facet reading one alone)
    parts = ensemble_parts(models, plan.candidate_models())
    calls, had = calls_per_model(plan, parts.values(), items, runner, media_store.reader())
    for model_id, n in had.items():
        context.log.info(f"{library}: {len(items)} items, {n} already embedded with {model_id}, {len(items) - n} to do")
    results = runner.map(embed_chunk, calls, on_result=progress(context, "embed"))
    if "ensemble" in models:
        join_ensemble(warehouse, library, parts | models, [i.media_id for i in items])
    failures = [f for r in results for f in r.failures]
    if failures:
        # keep earlier failures of this stage for items still failing, and add the new ones
        prior = stage_quarantine(warehouse, library, "embeddings")
        record_quarantine(warehouse, library, "embeddings", prior + failures)
        for f in failures:
            context.log.warning(f"not embedded {f['uri']}: {f['reason']}")
    embedded = sum(r.n_embedded for r in results)
    seconds = {k: round(sum(r.seconds[k] for r in results), 2) for k in ("read_decode", "infer", "write")}
    wall = sum(r.wall_seconds for r in results)
    yield MaterializeResult(
        asset_key="embeddings",
        metadata={
            "model": models["base"][1],  # the library's backbone (the one `vector_index` and `similar` use)
            "models": MetadataValue.json({role: model_id for role, (_, model_id) in models.items()}),
            "embedded_now": embedded,
            "cached": sum(had.values()),
            "failed": len(failures),
            "task_seconds": round(wall, 2),
            "images_per_task_second": round(embedded / wall, 1) if wall else 0.0,
            **{f"seconds/{k}": v for k, v in seconds.items()},
        },
    )
    yield from table_results(warehouse, library, "embeddings")
