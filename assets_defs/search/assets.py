"""The `vector_index`: the library's photo embeddings in its own Qdrant collection, for `similar`."""

import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, asset

from assets_defs.common import usable
from assets_defs.partitions import library_partitions
from resources.backbone_plan import BackbonePlan
from resources.libraries import LibraryStore
from resources.model_store import ModelStore
from resources.vector_store import VectorStore
from resources.warehouse import Warehouse


@asset(partitions_def=library_partitions, group_name="search", deps=["media", "embeddings"], kinds={"qdrant"})
def vector_index(
    context: AssetExecutionContext,
    libraries: LibraryStore,
    model_store: ModelStore,
    vector_store: VectorStore,
    warehouse: Warehouse,
) -> MaterializeResult:
    """Upserts every usable photo's vector (ids are stable, so re-upserting is idempotent)."""
    library = context.partition_key
    config = libraries.config(library)
    model_id = BackbonePlan(config, model_store, warehouse, library).library_model_id()
    photos = usable(warehouse.read(library, "media"), "image")
    first_uri = dict(photos.unique("media_id", keep="first").select("media_id", "uri").iter_rows())
    indexed = warehouse.read(library, "vector_index")
    done = set(indexed.filter(pl.col("model") == model_id)["media_id"].to_list())
    with vector_store.index(library) as index:  # one client for the step
        if index.count() < len(done):
            context.log.warning("the collection lost points (new or wiped store): re-indexing everything")
            done = set()
        gone = sorted(done - set(first_uri))
        if gone:
            index.delete(gone)
            done -= set(gone)
        ids, X = warehouse.read_embeddings(library, model_id, [m for m in first_uri if m not in done])
        payloads = [{"media_id": m, "uri": first_uri[m], "model": model_id} for m in ids]
        if ids:
            index.upsert(ids, X, payloads)
        total = index.count()
    if ids or gone:
        table = pl.DataFrame({"media_id": sorted(done) + ids, "model": [model_id] * (len(done) + len(ids))})
        warehouse.write(library, "vector_index", table)
    context.log.info(f"{library}: {len(ids)} vectors upserted, collection holds {total}")
    return MaterializeResult(metadata={"upserted": len(ids), "removed": len(gone), "points": total, "model": model_id})
