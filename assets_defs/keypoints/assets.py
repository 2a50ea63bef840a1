"""The `keypoints` asset: ORB (or RootSIFT) features of every photo and example, cached per (media_id, settings).

About 3 ms per photo (decode at 320 px and ORB), fanned out on the task runner like embeddings. Heads match
them against each tag's examples when they evaluate the "+keypoints" strategies; `tags` matches a photo's
only when its facet's head chose such a strategy. Library option `keypoints: false` turns it off; the kind
(`keypoint_spec`) is ORB unless the library config names another (a `keypoint_kind` field, once it has one).
"""

import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, asset

from assets_defs.partitions import library_partitions
from assets_defs.photo_runs import items_to_embed, missing, run_missing
from ml.keypoints import Features, KeypointSpec, keypoints_chunk
from resources.libraries import LibraryConfig, LibraryStore
from resources.media_store import MediaStore
from resources.ray_runner import TaskRunner
from resources.tables import frame
from resources.warehouse import Warehouse

CHUNK = 256
def keypoint_spec(config: LibraryConfig) -> KeypointSpec | None:
    """The library's keypoint settings: the kind its `keypoints:` names (ORB by default), None when off."""
    return KeypointSpec(kind=config.keypoint_kind) if config.keypoint_kind else None


def read_features(warehouse: Warehouse, library: str, spec: KeypointSpec = KeypointSpec()) -> dict[str, Features]:
    """{media_id: features} of the library's photos and examples under `spec` (empty when none were extracted)."""
    table = warehouse.read(library, "keypoints")
    model = spec.model_id
    rows = table.filter(pl.col("model") == model).select("media_id", "xy", "desc").iter_rows()
    return {media_id: Features.from_bytes(xy, desc) for media_id, xy, desc in rows}


@asset(partitions_def=library_partitions, group_name="keypoints", deps=["media", "examples"], kinds={"parquet", "ray"})
def keypoints(
    context: AssetExecutionContext,
    libraries: LibraryStore,
    media_store: MediaStore,
    runner: TaskRunner,
    warehouse: Warehouse,
) -> MaterializeResult:
    """Keypoints and descriptors per photo and example; only photos not yet done are read."""
    library = context.partition_key
    config = libraries.config(library)
    spec = keypoint_spec(config)
    if spec is None:
        context.log.info(f"{library}: keypoints are off for this library")
        return MaterializeResult(metadata={"enabled": False})
    old = warehouse.read(library, "keypoints")
    old = old.filter(pl.col("model") == spec.model_id)
    done = set(old["media_id"].to_list())
    todo = missing(items_to_embed(warehouse, library), done)
    context.log.info(f"{library}: {len(done)} photos have keypoints ({spec.model_id}), {len(todo)} to extract")
    results = run_missing(context, runner, keypoints_chunk, spec, todo, CHUNK, media_store.reader(), "keypoints")
    new = frame("keypoints", [{**r, "model": spec.model_id} for res in results for r in res.rows])
    warehouse.write(library, "keypoints", pl.concat([old.join(new.select("media_id"), on="media_id", how="anti"), new]))
    for res in results:
        for e in res.errors:  # already quarantined by `media` or `examples`
            context.log.warning(f"no keypoints for {e['uri']}: {e['reason']}")
    seconds = sum(r.seconds for r in results)
    return MaterializeResult(
        metadata={
            "enabled": True,
            "model": spec.model_id,
            "extracted_now": new.height,
            "cached": len(done),
            "ms_per_photo": round(seconds / new.height * 1000, 2) if new.height else 0.0,
        }
    )
