"""An event's media and its sponsor report's inputs and tables, from the library's tables (polars in, polars out).

An event (library.yaml `events:`, `EventSpec`) is a sub-folder of the library's media, or the media with an
applied tag of facet `event`. Its sponsor report counts only applied sponsor tags (status `applied`, or
`manual`: a person's verdict) on its own media: a prediction waiting for review, a tag of another facet and a
photo outside the event never reach a sponsor's figures. The figures themselves are `sponsor_figures`'
(ml/sponsor_figures.py); this module only chooses the rows and lays the figures out as the registry's tables.

No Dagster here: the asset (assets_defs/events) and the sensor (pipelines/sensors.py) call these.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import polars as pl

from ml.media import decode_image
from ml.sponsor_figures import thumbnail_with_box
from resources.libraries import EventSpec, LibraryConfig, LibraryError
from resources.tables import frame

APPLIED = ("applied", "manual")  # statuses a sponsor is told about (review and rejected are not)
EVENT_FACET = "event"  # the facet of the tags that name a tag event's media
THUMB_WIDTH = 240  # the report's thumbnails (pixels wide)


def event_location(config: LibraryConfig, event: str) -> str | None:
    """The folder (or s3:// prefix) of a folder event, under the library's media; None for a tag event."""
    spec = config.event(event)
    if spec.folder is None:
        return None
    return f"{config.media.rstrip('/')}/{spec.folder}"


def _applied(table: pl.DataFrame, facet: str) -> pl.DataFrame:
    return table.filter((pl.col("facet") == facet) & pl.col("status").is_in(APPLIED))


def event_media(
    media: pl.DataFrame,
    spec: EventSpec,
    location_uri: str | None = None,
    tags: pl.DataFrame | None = None,
    segments: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The event's usable media rows (status ok), one per media_id: for a folder event the files whose uri lies
    under `location_uri` (`MediaStore.location_uri` of `event_location`); for a tag event the photos (`tags`)
    and videos (`segments`) with an applied `spec.tag` tag of facet `event`."""
    usable = media.filter(pl.col("status") == "ok")
    if spec.folder is not None:
        if location_uri is None:
            raise ValueError("a folder event's media are chosen by its location_uri")
        prefix = location_uri.rstrip("/") + "/"
        chosen = usable.filter(pl.col("uri").str.starts_with(prefix))
    else:
        ids: set[str] = set()
        for table in (t for t in (tags, segments) if t is not None):
            ids |= set(_applied(table, EVENT_FACET).filter(pl.col("tag_id") == spec.tag)["media_id"].to_list())
        chosen = usable.filter(pl.col("media_id").is_in(sorted(ids)))
    return chosen.unique("media_id", keep="first", maintain_order=True)


def check_event_tag(spec: EventSpec, catalog: pl.DataFrame) -> None:
    """A tag event's tag must be a catalog tag of facet `event`: LibraryError (one line) otherwise."""
    if spec.tag is None:
        return
    found = catalog.filter((pl.col("facet") == EVENT_FACET) & (pl.col("tag_id") == spec.tag)).height
    if not found:
        raise LibraryError(
            f"event tag {spec.tag!r} is not a catalog tag of facet {EVENT_FACET!r} (library.yaml events:, tag)"
        )


@dataclass
class ReportInputs:
    """What `sponsor_figures` takes, chosen from the tables (see its docstring for each row's keys)."""

    photo_hits: list[dict]
    segments: list[dict]
    videos: list[dict]
    sponsors: dict[str, str]  # tag_id -> display name, in catalog order


def report_inputs(
    chosen: pl.DataFrame,
    catalog: pl.DataFrame,
    tags: pl.DataFrame,
    segments: pl.DataFrame,
    sponsor_facet: str,
) -> ReportInputs:
    """The event's applied sponsor boxes on its photos and applied sponsor segments on its videos (`chosen`:
    `event_media`), with the catalog's tags of `sponsor_facet` as the sponsors."""
    sponsor_rows = catalog.filter(pl.col("facet") == sponsor_facet)
    sponsors = dict(sponsor_rows.select("tag_id", "name").iter_rows())
    photos = chosen.filter(pl.col("kind") == "image").select("media_id", "uri")
    videos = chosen.filter(pl.col("kind") == "video").select("media_id", "uri", "duration_s")
    names = pl.Series(list(sponsors), dtype=pl.String)
    hits = (
        _applied(tags, sponsor_facet)
        .filter(pl.col("tag_id").is_in(names))
        .join(photos, on="media_id", how="inner")
        .select("media_id", "uri", "tag_id", "score", "box")
    )
    segs = (
        _applied(segments, sponsor_facet)
        .filter(pl.col("tag_id").is_in(names))
        .join(videos.select("media_id", "uri"), on="media_id", how="inner")
        .select("media_id", "uri", "tag_id", "start_s", "end_s", "peak_score")
    )
    return ReportInputs(
        photo_hits=hits.to_dicts(),
        segments=segs.to_dicts(),
        # a video whose length is unknown still counts its segments (they are then not clipped)
        videos=videos.filter(pl.col("duration_s").is_not_null()).to_dicts(),
        sponsors=sponsors,
    )


def report_tables(event: str, figures: Mapping) -> dict[str, pl.DataFrame]:
    """`sponsor_figures`' result as the event's rows of sponsor_photos, sponsor_segments and sponsor_summary."""
    photos, stretches, summary = [], [], []
    for row in figures["sponsors"]:
        tag = row["tag_id"]
        photos += [
            {
                "event": event,
                "tag_id": tag,
                "media_id": p["media_id"],
                "uri": p["uri"],
                "score": p["score"],
                "box": list(p["box"]) if p["box"] is not None else None,
                "boxes": len(p["boxes"]),
            }
            for p in row["photo_set"]
        ]
        summary.append({"event": event, **{k: v for k, v in row.items() if k != "photo_set"}})
    for video in figures["videos"]:
        for tag, runs in video["stretches"].items():
            stretches += [
                {
                    "event": event,
                    "tag_id": tag,
                    "media_id": video["media_id"],
                    "uri": video["uri"],
                    "start_s": s,
                    "end_s": e,
                    "peak_score": p,
                }
                for s, e, p in runs
            ]
    return {
        "sponsor_photos": frame("sponsor_photos", photos),
        "sponsor_segments": frame("sponsor_segments", stretches),
        "sponsor_summary": frame("sponsor_summary", summary),
    }


def thumbnailer(read_bytes: Callable[[str], bytes], max_pixels: int) -> Callable[[str, object], bytes]:
    """`render_event_report`'s thumbnail(uri, box): the photo read through `read_bytes` (the MediaStore's
    reader: local or S3), decoded with DCT scaling to no less than the thumbnail's width (a 24 MP JPEG decodes at
    1/8), the box drawn. A photo that cannot be read or decoded fails the report, naming it."""

    def thumbnail(uri: str, box) -> bytes:
        image = decode_image(read_bytes(uri), draft_size=THUMB_WIDTH, max_pixels=max_pixels)
        return thumbnail_with_box(image, box, width=THUMB_WIDTH)

    return thumbnail
