"""The `media` asset: every file in the library's media folder/bucket, identified and checked.

Incremental: a file whose (uri, size, modified) is unchanged keeps its row; only new or changed files are
read, hashed and decoded (fanned out on the task runner). Bad files are quarantined with their reason.
"""

import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets_defs.common import chunked, now_iso, progress, record_quarantine
from assets_defs.partitions import library_partitions
from ml.inspect import inspect_media
from resources.libraries import LibraryStore
from resources.media_store import MediaStore
from resources.ray_runner import TaskRunner
from resources.warehouse import Warehouse

MEDIA_SCHEMA = {
    "media_id": pl.String,
    "uri": pl.String,
    "kind": pl.String,
    "width": pl.Int64,
    "height": pl.Int64,
    "duration_s": pl.Float64,
    "bytes": pl.Int64,
    "status": pl.String,
    "error": pl.String,
    "size": pl.Int64,
    "modified": pl.String,
    "first_seen": pl.String,
}
CHUNK = 128


@asset(partitions_def=library_partitions, group_name="media", kinds={"parquet"})
def media(
    context: AssetExecutionContext,
    libraries: LibraryStore,
    media_store: MediaStore,
    runner: TaskRunner,
    warehouse: Warehouse,
) -> MaterializeResult:
    """Media files of the library: media_id (sha256), kind, size, status; bad files go to quarantine."""
    library = context.partition_key
    config = libraries.config(library)
    objects = media_store.list_media(config.media)
    previous = warehouse.read(library, "media")
    known = {}
    if previous is not None:
        known = {(r["uri"], r["size"], r["modified"]): r for r in previous.iter_rows(named=True)}
    fresh = [o for o in objects if (o.uri, o.size, o.modified) not in known]
    context.log.info(f"{library}: {len(objects)} files, {len(fresh)} new or changed")

    rows = [known[(o.uri, o.size, o.modified)] for o in objects if (o.uri, o.size, o.modified) in known]
    calls = [([o.uri for o in chunk], media_store.s3_endpoint_url()) for chunk in chunked(fresh, CHUNK)]
    by_uri = {o.uri: o for o in fresh}
    stamp = now_iso()
    for result in runner.map(inspect_media, calls, on_result=progress(context, "inspect media")):
        for row in result:
            obj = by_uri[row["uri"]]
            rows.append({**row, "size": obj.size, "modified": obj.modified, "first_seen": stamp})
    table = pl.DataFrame(rows, schema=MEDIA_SCHEMA).sort("uri")
    warehouse.write(library, "media", table)
    bad = table.filter(pl.col("status") == "quarantined")
    record_quarantine(
        warehouse,
        library,
        "media",
        [{"uri": r["uri"], "media_id": r["media_id"], "reason": r["error"]} for r in bad.iter_rows(named=True)],
    )
    for r in bad.iter_rows(named=True):
        context.log.warning(f"quarantined {r['uri']}: {r['error']}")
    counts = dict(table.group_by("status").len().iter_rows())
    return MaterializeResult(
        metadata={
            "files": len(objects),
            "new_or_changed": len(fresh),
            "ok": counts.get("ok", 0),
            "quarantined": counts.get("quarantined", 0),
            "skipped": counts.get("skipped", 0),
            "path": MetadataValue.path(str(warehouse.table_path(library, "media"))),
        }
    )
