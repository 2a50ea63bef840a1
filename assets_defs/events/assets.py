"""An event's sponsor report: per (library, event) partition, HTML pages, a photo-set zip per sponsor and the
sponsor tables analysts query.

The event's media (library.yaml `events:`, resources/events.py) -> its applied sponsor boxes and segments ->
`sponsor_figures` -> `render_event_report`, written to `reports/events/<event>/` beside the library's other
reports: index.html, sponsor-<tag_id>.html and sponsor-<tag_id>.zip (the photo set's original files, read
through the MediaStore so S3 libraries work). The figures also go to sponsor_photos, sponsor_segments and
sponsor_summary, one file each per event (`events/<event>/<table>.parquet`: one writer per file), whose views
read every event's files; sql/sponsor_report.sql is the query analysts rerun.
"""

import warnings

from dagster import (
    AssetDep,
    AssetExecutionContext,
    BetaWarning,
    MaterializeResult,
    MetadataValue,
    MultiToSingleDimensionPartitionMapping,
)

from assets_defs.common import now_iso, writes_tables
from assets_defs.partitions import event_report_partitions
from ml.sponsor_report import (
    export_photo_set,
    page_names,
    render_event_report,
    sponsor_figures,
    zip_name_of,
)
from resources.events import (
    check_event_tag,
    event_location,
    event_media,
    report_inputs,
    report_tables,
    thumbnailer,
)
from resources.libraries import LibraryStore
from resources.media_store import MediaStore
from resources.tables import event_file
from resources.warehouse import Warehouse

READS = ("media", "catalog", "tags", "video_segments")
with warnings.catch_warnings():  # beta in Dagster 1.13, and the documented way to map one dimension
    warnings.simplefilter("ignore", BetaWarning)
    BY_LIBRARY = MultiToSingleDimensionPartitionMapping(partition_dimension_name="library")


def _markdown_table(rows: list[dict]) -> str:
    lines = ["| sponsor | photos | mean score | screen time (s) | photo share | screen share |", "|---|" * 6]
    pct = lambda v: "–" if v is None else f"{v:.1%}"  # noqa: E731
    for r in rows:
        score = "–" if r["mean_score"] is None else f"{r['mean_score']:.2f}"
        name = str(r["name"]).replace("|", "\\|")
        lines.append(
            f"| {name} | {r['photos']} | {score} | {r['screen_time_s']:.1f} | {pct(r['photo_share'])} | "
            f"{pct(r['screen_share'])} |"
        )
    return "\n".join(lines)


@writes_tables(
    "sponsor_report",
    deps=[AssetDep(key, partition_mapping=BY_LIBRARY) for key in READS],
    group_name="events",
    kinds={"html", "parquet"},
    partitions_def=event_report_partitions,
)
def sponsor_report(
    context: AssetExecutionContext, libraries: LibraryStore, media_store: MediaStore, warehouse: Warehouse
):
    """The event's sponsor report (pages, zips, tables). An event the library's library.yaml does not name, or a
    tag event whose tag is not a catalog tag of facet `event`, fails with one line."""
    keys = context.partition_key.keys_by_dimension
    library, event = keys["library"], keys["event"]
    config = libraries.config(library)
    spec = config.event(event)
    catalog = warehouse.read(library, "catalog")
    check_event_tag(spec, catalog)
    tags, segments = warehouse.read(library, "tags"), warehouse.read(library, "video_segments")
    location = event_location(config, event)
    chosen = event_media(
        warehouse.read(library, "media"), spec, media_store.location_uri(location) if location else None, tags, segments
    )
    inputs = report_inputs(chosen, catalog, tags, segments, spec.sponsor_facet)
    if not inputs.sponsors:
        context.log.warning(f"the catalog has no tags of facet {spec.sponsor_facet!r}: the report names no sponsor")
    figures = sponsor_figures(inputs.photo_hits, inputs.segments, inputs.videos, inputs.sponsors)

    reader = media_store.reader()
    thumbnail = thumbnailer(reader.read, config.max_pixels)
    out_dir = warehouse.reports_dir(library) / "events" / event
    out_dir.mkdir(parents=True, exist_ok=True)
    pages = render_event_report(event, figures, thumbnail, generated_at=now_iso())
    page_of = page_names(figures["sponsors"])
    zips: dict[str, str] = {}  # tag_id -> the zip its page links to (ml/sponsor_report.py names both)
    for row in figures["sponsors"]:
        if row["photo_set"]:
            zips[row["tag_id"]] = zip_name_of(page_of[row["tag_id"]])
            export_photo_set(row["photo_set"], out_dir / zips[row["tag_id"]], reader.read)
    for name, text in pages.items():
        (out_dir / name).write_text(text, "utf-8")
    keep = set(pages) | set(zips.values())
    for stale in [*out_dir.glob("sponsor-*.html"), *out_dir.glob("sponsor-*.zip")]:  # sponsors no longer named
        if stale.name not in keep:
            stale.unlink()

    written = {}
    for table, df in report_tables(event, figures).items():
        written[table] = (warehouse.write(library, table, df, file=event_file(table, event)), df.height)
    warehouse.register_views(library)  # the shared DuckDB file's views then read this event's files too

    rows = figures["sponsors"]
    metadata = {
        "report": MetadataValue.path(str(out_dir / "index.html")),
        "event_media": chosen.height,
        "sponsor_photo_appearances": figures["photo_total"],
        "sponsor_screen_time_s": round(figures["screen_total_s"], 3),
        "sponsors": MetadataValue.md(_markdown_table(rows)),
        "zips": MetadataValue.json(zips),
    }
    for row in rows:
        metadata[f"photos/{row['tag_id']}"] = row["photos"]
        metadata[f"screen_time_s/{row['tag_id']}"] = round(row["screen_time_s"], 3)
    yield MaterializeResult(asset_key="sponsor_report", metadata=metadata)
    for table, (path, n) in written.items():
        yield MaterializeResult(asset_key=table, metadata={"rows": n, "path": MetadataValue.path(str(path))})
