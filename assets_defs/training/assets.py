"""Training inputs: the `catalog` table and the `examples` training set with its holdout split."""

import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, asset

from assets_defs.common import chunked, progress, record_quarantine
from assets_defs.partitions import library_partitions
from ml.heads import photo_holdout_split
from ml.inspect import inspect_media
from resources.libraries import LibraryStore
from resources.media_store import MediaStore
from resources.ray_runner import TaskRunner
from resources.warehouse import Warehouse

EXAMPLES_SCHEMA = {
    "media_id": pl.String,
    "uri": pl.String,
    "facet": pl.String,
    "tag_id": pl.String,
    "source": pl.String,
    "split": pl.String,
}
CATALOG_SCHEMA = {
    "tag_id": pl.String,
    "facet": pl.String,
    "name": pl.String,
    "aliases": pl.List(pl.String),
    "identifiers": pl.List(pl.String),
    "attributes": pl.String,
}


@asset(partitions_def=library_partitions, group_name="training", kinds={"parquet"})
def catalog(context: AssetExecutionContext, libraries: LibraryStore, warehouse: Warehouse) -> MaterializeResult:
    """The tags to recognise (validated; a catalog with problems is refused with all of them listed)."""
    library = context.partition_key
    parsed = libraries.catalog(library)
    table = pl.DataFrame([t.as_row() for t in parsed.tags], schema=CATALOG_SCHEMA)
    warehouse.write(library, "catalog", table)
    per_facet = dict(table.group_by("facet").len().sort("facet").iter_rows())
    return MaterializeResult(metadata={"tags": table.height, **{f"facet/{k}": v for k, v in per_facet.items()}})


@asset(partitions_def=library_partitions, group_name="training", deps=[catalog], kinds={"parquet"})
def examples(
    context: AssetExecutionContext,
    libraries: LibraryStore,
    media_store: MediaStore,
    runner: TaskRunner,
    warehouse: Warehouse,
) -> MaterializeResult:
    """Labelled example photos with a train/holdout split (per photo across facets, stratified per facet and
    tag); bad photos quarantined."""
    library = context.partition_key
    config = libraries.config(library)
    listed = libraries.examples(library)  # validated against the catalog, every problem listed by line
    if not listed:
        raise ValueError(f"library {library!r} has no examples: `tagsmith examples {library} MANIFEST`")
    uris = sorted({e.uri for e in listed})
    calls = [(list(chunk), media_store.s3_endpoint_url()) for chunk in chunked(uris, 128)]
    inspected = {
        r["uri"]: r for rs in runner.map(inspect_media, calls, progress(context, "inspect examples")) for r in rs
    }
    bad = [r for r in inspected.values() if r["status"] != "ok"]
    record_quarantine(
        warehouse,
        library,
        "examples",
        [{"uri": r["uri"], "media_id": r["media_id"], "reason": r["error"]} for r in bad],
    )
    for r in bad:
        context.log.warning(f"example quarantined {r['uri']}: {r['error']}")
    rows = [
        {
            "media_id": inspected[e.uri]["media_id"],
            "uri": e.uri,
            "facet": e.facet,
            "tag_id": e.tag_id,
            "source": e.source,
            "split": None,
        }
        for e in listed
        if inspected[e.uri]["status"] == "ok"
    ]
    table = pl.DataFrame(rows, schema=EXAMPLES_SCHEMA).unique(["media_id", "facet"], keep="first", maintain_order=True)
    # a photo is held out in all its facets at once, so the photos a fine-tuned backbone may learn from (in no
    # facet's holdout) are most of them; stratified per facet and tag (ml/heads.py photo_holdout_split)
    split = photo_holdout_split(
        table["media_id"].to_list(),
        table["facet"].to_list(),
        table["tag_id"].to_list(),
        holdout_frac=config.holdout_frac,
        seed=config.seed,
    )
    table = table.with_columns(pl.Series("split", list(split), dtype=pl.String))
    warehouse.write(library, "examples", table)
    counts = table.group_by("facet", "split").len().sort("facet", "split")
    return MaterializeResult(
        metadata={
            "examples": table.height,
            "quarantined": len(bad),
            **{f"{f}/{s}": n for f, s, n in counts.iter_rows()},
        }
    )
