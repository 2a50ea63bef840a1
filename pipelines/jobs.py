"""Jobs: the whole pipeline per library, and a retrain after catalog or example edits that leaves new media alone."""

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
    description="Everything but `media` (after catalog or example edits): new examples are embedded, the backbone "
    "choice, heads, tags, video tags and views rerun; library photos' vectors, text and keypoints come from cache, "
    "and files added to the media folder since the last run wait for `tag_library`.",
)
