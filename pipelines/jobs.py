"""Jobs: the whole pipeline per library, and a heads-only retrain (embeddings are cached: seconds)."""

from dagster import AssetSelection, define_asset_job

from assets_defs.partitions import library_partitions

tag_library_job = define_asset_job(
    "tag_library",
    selection=AssetSelection.all(),
    partitions_def=library_partitions,
    description="Catalog, media, examples, embeddings, heads, tags, vector index and views of one library.",
)

retrain_heads_job = define_asset_job(
    "retrain_heads",
    selection=AssetSelection.assets("catalog", "examples", "heads").downstream(),
    partitions_def=library_partitions,
    description="Retrain heads from cached embeddings and retag (after catalog or example edits).",
)
