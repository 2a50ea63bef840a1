"""Jobs: the whole pipeline per library, a retrain after catalog or example edits that leaves new media alone, a
re-tag from cache after a rollback, and an event's sponsor report per (library, event)."""

from dagster import AssetSelection, define_asset_job

from assets_defs.partitions import event_report_partitions, library_partitions

# per (library, event), not per library: never part of a library job (the event sensor and `tagsmith report`
# run them once an event's upload is tagged)
EVENT_REPORTS = AssetSelection.groups("events")

tag_library_job = define_asset_job(
    "tag_library",
    selection=AssetSelection.all() - EVENT_REPORTS,
    partitions_def=library_partitions,
    description="Catalog, media, examples, embeddings, heads, tags, vector index and views of one library.",
)

retrain_heads_job = define_asset_job(
    "retrain_heads",
    selection=AssetSelection.assets("catalog", "catalog_changes", "examples", "heads").downstream() - EVENT_REPORTS,
    partitions_def=library_partitions,
    description="Everything but `media` (after catalog or example edits): new examples are embedded, the backbone "
    "choice, heads, tags, video tags and views rerun; library photos' vectors, text and keypoints come from cache, "
    "and files added to the media folder since the last run wait for `tag_library`.",
)

sponsor_report_job = define_asset_job(
    "sponsor_report",
    selection=EVENT_REPORTS,
    partitions_def=event_report_partitions,
    description="One event's sponsor report (library.yaml events:): HTML pages, photo-set zips and the sponsor "
    "tables, from the library's tags and video segments.",
)

# after `tagsmith rollback`: the promoted heads and what a head change affects, nothing embedded or trained. Its
# run has no `heads` step and no blocking check, so `promoted_heads` keeps the versions in use except where a pin
# says otherwise. Not downstream: `vector_index` (its payloads hold no tags) and the event reports (their own job).
retag_job = define_asset_job(
    "retag",
    selection=AssetSelection.assets("promoted_heads").required_multi_asset_neighbors().downstream() - EVENT_REPORTS,
    config={"ops": {"promoted_heads": {"config": {"keep_in_use": True}}}},
    description="Re-tag from cache with the heads in use and the pinned versions (`tagsmith rollback`): promoted "
    "heads, tags, detections, video segments, contact sheets and views; nothing is embedded or retrained.",
)
