"""Tags on photos from the promoted heads, and the DuckDB views analysts query."""

import numpy as np
import polars as pl
from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, Output, asset

from assets_defs.common import usable
from assets_defs.heads.assets import ocr_boxes
from assets_defs.keypoints.assets import keypoint_spec, read_features
from assets_defs.partitions import library_partitions
from assets_defs.tags.regions import found_on_photos, multi_tag_rows
from ml.heads import predict_table
from ml.verdicts import apply_labels, person_labels
from resources.backbone_plan import BackbonePlan
from resources.libraries import LibraryStore
from resources.model_store import ModelStore
from resources.tables import frame, view_assets
from resources.verdicts import read_verdicts
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
    boxes_of = ocr_boxes(warehouse.read(library, "ocr_text"))
    regions = warehouse.read(library, "detections")
    kp_spec = keypoint_spec(config)
    matching = kp_spec is not None and any(h.matches_keypoints for _, h in heads.values())
    features_of = read_features(warehouse, library, kp_spec) if matching else {}
    embedded: dict[str, tuple[list[str], np.ndarray]] = {}  # per backbone the heads read (one read each)
    rows = []
    for facet, (version, head) in sorted(heads.items()):
        model = head.model_id or model_id  # heads saved before backbones were compared read the library's
        if model not in embedded:
            embedded[model] = warehouse.read_embeddings(library, model, wanted)
            missing = len(wanted) - len(embedded[model][0])
            if missing:
                context.log.warning(
                    f"{missing} photos have no {model} embedding yet (see quarantine); they get no {facet} tag"
                )
        ids, X = embedded[model]
        if getattr(head, "multi", False):  # any number of tags per photo, with their boxes (tags/regions.py)
            rows += multi_tag_rows(head, version, found_on_photos(regions, version), ids, X)
            continue
        # a combined head gets each photo's OCR boxes and ORB features (none: no such evidence found)
        boxes = [boxes_of.get(m, []) for m in ids] if head.reads_text else None
        features = [features_of.get(m) for m in ids] if head.matches_keypoints else None
        for row in predict_table(head, ids, X, boxes, features) if ids else []:
            rows.append({**row, "head_version": version})
    # people win: a tag someone set or refused is laid over what the heads proposed (ml/verdicts.py)
    catalog = libraries.catalog(library)
    # a head trained before a tag was retired still knows it (one that retrains without it may be held back by
    # the blocking check): no head's prediction of a retired tag is written, whichever head is in use (a person's
    # label of it still is)
    proposed = frame("tags", rows)
    retired = sorted(catalog.retired())
    stale = proposed.filter(pl.col("tag_id").is_in(retired))
    if stale.height:
        context.log.warning(
            f"{stale.height} predictions of retired tags left out (a head in use was trained before they retired)"
        )
        proposed = proposed.filter(~pl.col("tag_id").is_in(retired))
    labels = person_labels(read_verdicts(libraries.dir(library)), catalog.multi_facets())
    labels = labels.filter(pl.col("media_id").is_in(wanted))  # a photo gone from the library keeps its log only
    table = frame("tags", apply_labels(proposed, labels, catalog.multi_facets()))
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
            "retired_left_out": stale.height,
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
