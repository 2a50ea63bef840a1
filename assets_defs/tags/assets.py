"""Tags on photos from the promoted heads, and the DuckDB views analysts query."""

import polars as pl
from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, Output, asset

from assets_defs.common import usable
from assets_defs.heads.assets import ocr_boxes
from assets_defs.keypoints.assets import keypoint_spec, read_features
from assets_defs.partitions import library_partitions
from assets_defs.tags.regions import found_on_photos
from ml.photo_tags import multi_tag_rows, single_tag_rows
from resources.backbone_plan import BackbonePlan
from resources.libraries import LibraryStore
from resources.model_store import ModelStore
from resources.tables import view_assets
from resources.tags_table import people_labels, tags_table
from resources.warehouse import Warehouse


@asset(
    partitions_def=library_partitions,
    group_name="tags",
    deps=["media", "embeddings", "ocr_text", "keypoints", "detections"],
    kinds={"parquet"},
    io_manager_key="tables",
)
def tags(
    context: AssetExecutionContext,
    promoted_heads: dict[str, str],
    libraries: LibraryStore,
    model_store: ModelStore,
    warehouse: Warehouse,
) -> Output[pl.DataFrame]:
    """Per photo and single facet, the head's top tag; per photo and multi facet, each tag its head finds (with
    its box), or no row when it finds none. `applied` above the tag's threshold, else `review`. The table goes to
    the `tables` IO manager (resources/table_io.py). People win: a tag someone accepted, set or rejected
    (`tagsmith review`) is `manual` / `rejected` whatever the heads say."""
    library = context.partition_key
    config = libraries.config(library)
    model_id = BackbonePlan(config, model_store, warehouse, library).library_model_id()
    media_table = warehouse.read(library, "media")
    photos = usable(media_table, "image")
    wanted = photos["media_id"].unique(maintain_order=True).to_list()
    heads = {
        facet: (version, model_store.load_head(library, facet, version)) for facet, version in promoted_heads.items()
    }
    regions = warehouse.read(library, "detections")
    # re-tag from cache: a model's row of the last run stands while its head version is in use (the photo's
    # vectors, text and keypoints do not change under a media_id), so only photos a head has not tagged are scored
    previous = warehouse.read(library, "tags").filter(pl.col("origin") == "model")
    cached_of, todo_of = {}, {}
    for facet, (version, head) in heads.items():
        if not getattr(head, "multi", False):
            mine = (pl.col("facet") == facet) & (pl.col("head_version") == version) & pl.col("media_id").is_in(wanted)
            cached_of[facet] = previous.filter(mine)
            done = set(cached_of[facet]["media_id"])
            todo_of[facet] = [m for m in wanted if m not in done]
    scoring = {f: heads[f][1] for f, todo in todo_of.items() if todo}
    boxes_of = ocr_boxes(warehouse.read(library, "ocr_text")) if any(h.reads_text for h in scoring.values()) else {}
    kp_spec = keypoint_spec(config)
    matching = kp_spec is not None and any(h.matches_keypoints for h in scoring.values())
    features_of = read_features(warehouse, library, kp_spec) if matching else {}
    rows, reused = [], 0
    for facet, (version, head) in sorted(heads.items()):
        model = head.model_id or model_id  # heads saved before backbones were compared read the library's
        if getattr(head, "multi", False):  # any number of tags per photo, with their boxes (tags/regions.py)
            ids, X = warehouse.read_embeddings(library, model, wanted)
            rows += multi_tag_rows(head, version, found_on_photos(regions, version), ids, X)
            continue
        cached = cached_of[facet]
        rows += cached.drop("origin", "set_by", "set_at").to_dicts()
        reused += cached.height
        todo = todo_of[facet]
        ids, X = warehouse.read_embeddings(library, model, todo) if todo else ([], None)
        if len(todo) > len(ids):
            context.log.warning(
                f"{len(todo) - len(ids)} photos have no {model} embedding yet (see quarantine); they get no {facet} tag"
            )
        # a combined head gets each photo's OCR boxes and ORB features (none: no such evidence found)
        boxes = [boxes_of.get(m, []) for m in ids] if head.reads_text else None
        features = [features_of.get(m) for m in ids] if head.matches_keypoints else None
        rows += single_tag_rows(head, version, ids, X, boxes, features)
    context.log.info(
        f"{library}: {reused} photo tags reused from the last run (same head versions), "
        f"{sum(len(t) for t in todo_of.values())} scored"
    )
    # retired tags left out, people's labels laid over: resources/tags_table.py, as for one photo now
    catalog = libraries.catalog(library)
    labels = people_labels(libraries.dir(library), catalog)
    finished = tags_table(rows, catalog, labels, wanted)
    table, stale = finished.table, finished.retired_left_out
    if stale:
        context.log.warning(
            f"{stale} predictions of retired tags left out (a head in use was trained before they retired)"
        )
    counts = dict(table.group_by("status").len().iter_rows()) if table.height else {}
    return Output(
        table,
        metadata={
            "photos_tagged": table["media_id"].n_unique(),
            "backbones": MetadataValue.json({f: h.model_id or model_id for f, (_, h) in sorted(heads.items())}),
            "applied": counts.get("applied", 0),
            "review": counts.get("review", 0),
            "manual": counts.get("manual", 0),
            "rejected": counts.get("rejected", 0),
            "retired_left_out": stale,
            "reused_from_last_run": reused,
            "heads": MetadataValue.json(promoted_heads),
        },
    )


@asset(
    partitions_def=library_partitions,
    group_name="tags",
    deps=[AssetKey(path) for path in view_assets()],  # every table a view reads (resources/tables.py)
    kinds={"duckdb"},
)
def warehouse_views(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """DuckDB views over the library's Parquet tables (schema = library name), plus sql/views.sql."""
    library = context.partition_key
    created = warehouse.register_views(library)
    return MaterializeResult(
        metadata={
            "views": MetadataValue.json(created),
            "duckdb": MetadataValue.path(warehouse.duckdb_path),
            "example": f'SELECT * FROM "{library}".tag_details LIMIT 20',
        }
    )
