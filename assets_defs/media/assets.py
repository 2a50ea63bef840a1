"""The `media` asset: every file in the library's media folder/bucket, identified and checked.

Incremental: a file whose (uri, size, modified) is unchanged keeps its row; only new or changed files are
read, hashed and decoded (fanned out on the task runner). Bad files are quarantined with their reason, one
file at a time (ml/inspect.py), and keep their row: a quarantined file is not read again until its bytes
(size or time) change. What the listing could not read (symlink loops, broken links, FIFOs) is quarantined
too. The materialisation's metadata counts the reasons and names the first files of each.
"""

import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from assets_defs.common import chunked, now_iso, progress, record_quarantine, table_results, writes_tables
from ml.inspect import inspect_media
from ml.media import count_reasons, media_kind
from resources.libraries import LibraryStore
from resources.media_store import MediaStore
from resources.ray_runner import TaskRunner
from resources.tables import frame
from resources.warehouse import Warehouse

CHUNK = 128
FIRST_NAMES = 5  # file names shown per quarantine reason


@writes_tables("media", group_name="media")
def media(
    context: AssetExecutionContext,
    libraries: LibraryStore,
    media_store: MediaStore,
    runner: TaskRunner,
    warehouse: Warehouse,
):
    """Media files of the library: media_id (sha256), kind, size, status; bad files go to quarantine."""
    library = context.partition_key
    config = libraries.config(library)
    objects = media_store.list_media(config.media)
    previous = warehouse.read(library, "media")
    known = {(r["uri"], r["size"], r["modified"]): r for r in previous.iter_rows(named=True)}
    fresh = [o for o in objects if (o.uri, o.size, o.modified) not in known]
    context.log.info(f"{library}: {len(objects)} files, {len(fresh)} new or changed")

    rows = [known[(o.uri, o.size, o.modified)] for o in objects if (o.uri, o.size, o.modified) in known]
    stamp = now_iso()
    # listed but unreadable as media: quarantined from the listing's reason, nothing to read
    for o in fresh:
        if o.problem is not None:
            rows.append(
                {
                    "uri": o.uri,
                    "kind": media_kind(o.uri),
                    "status": "quarantined",
                    "error": o.problem,
                    "size": o.size,
                    "modified": o.modified,
                    "first_seen": stamp,
                }
            )
    readable = [o for o in fresh if o.problem is None]
    reader = media_store.reader()
    calls = [([o.uri for o in chunk], reader, config.max_pixels) for chunk in chunked(readable, CHUNK)]
    by_uri = {o.uri: o for o in readable}
    notes = []
    for result in runner.map(inspect_media, calls, on_result=progress(context, "inspect media")):
        for row in result:
            obj = by_uri[row["uri"]]
            if row.get("note"):
                notes.append(f"{row['uri']}: {row['note']}")
            rows.append({**row, "size": obj.size, "modified": obj.modified, "first_seen": stamp})
    for note in notes:
        context.log.info(note)
    table = frame("media", rows).sort("uri")
    warehouse.write(library, "media", table)
    bad = [
        {"uri": r["uri"], "media_id": r["media_id"], "reason": r["error"]}
        for r in table.filter(pl.col("status") == "quarantined").iter_rows(named=True)
    ]
    record_quarantine(warehouse, library, "media", bad)
    for r in bad:
        context.log.warning(f"quarantined {r['uri']!r}: {r['reason']}")
    by_reason = count_reasons(bad, FIRST_NAMES)
    counts = dict(table.group_by("status").len().iter_rows())
    yield MaterializeResult(
        asset_key="media",
        metadata={
            "files": len(objects),
            "new_or_changed": len(fresh),
            "ok": counts.get("ok", 0),
            "quarantined": counts.get("quarantined", 0),
            "quarantined_by_reason": MetadataValue.json(by_reason),
            "kind_from_bytes": len(notes),  # named like one kind, handled as the other (ml/sniff.py)
            "path": MetadataValue.path(str(warehouse.table_path(library, "media"))),
        },
    )
    yield from table_results(warehouse, library, "media")
