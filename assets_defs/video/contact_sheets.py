"""Videos: one HTML contact sheet per video (`contact_sheets`), redrawn only when its video's frames, tags or
segments changed.
"""

import hashlib
import json
import re
from pathlib import PurePath

import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets_defs.common import usable
from assets_defs.partitions import library_partitions
from ml.contact_sheet import pick_thumbnail_times, render_contact_sheet, render_index, thumbnail_jpeg
from ml.media import MediaProblem
from ml.video import open_video
from resources.media_store import MediaStore
from resources.warehouse import Warehouse


@asset(
    partitions_def=library_partitions,
    group_name="video",
    deps=["video_segments", "frames", "frame_tags", "catalog", "media"],
    kinds={"html"},
)
def contact_sheets(
    context: AssetExecutionContext,
    media_store: MediaStore,
    warehouse: Warehouse,
) -> MaterializeResult:
    """One HTML contact sheet per video (sampled frames with their top tags, segments on a timeline) and an
    index page. A sheet is redrawn only when its video's frames or segments changed."""
    library = context.partition_key
    videos = usable(warehouse.read(library, "media"), "video").unique("media_id", keep="first", maintain_order=True)
    out_dir = warehouse.reports_dir(library) / "videos"
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    frames = warehouse.read(library, "frames")
    frame_tags = warehouse.read(library, "frame_tags")
    segments = warehouse.read(library, "video_segments")
    names = dict(warehouse.read(library, "catalog").select("tag_id", "name").iter_rows())
    index_rows, drawn, failed = [], 0, 0
    for media_id, uri, duration in progress_rows(context, videos.select("media_id", "uri", "duration_s")):
        mine = frames.filter(pl.col("media_id") == media_id).sort("ts")
        seg = segments.filter(pl.col("media_id") == media_id).sort("facet", "start_s")
        tags = frame_tags.filter(pl.col("media_id") == media_id).sort("ts", "facet")
        key = hashlib.sha256(
            b"".join(df.write_csv().encode() for df in (mine, seg, tags)) + names_key(names)
        ).hexdigest()
        file_name = f"{re.sub(r'[^A-Za-z0-9._-]+', '_', PurePath(uri).stem)[:60]}-{media_id[:8]}.html"
        index_rows.append(
            {
                "name": PurePath(uri).name,
                "href": file_name,
                "duration_s": duration or 0.0,
                "frames": mine.height,
                "applied": seg.filter(pl.col("status") == "applied").height,
                "review": seg.filter(pl.col("status") == "review").height,
            }
        )
        if manifest.get(media_id) == key and (out_dir / file_name).exists():
            continue
        by_ts: dict[float, list] = {}
        for ts, facet, tag_id, score in tags.select("ts", "facet", "tag_id", "score").iter_rows():
            by_ts.setdefault(round(ts, 4), []).append((facet, tag_id, score))
        frame_rows = [
            {"ts": t, "reason": r, "tags": by_ts.get(round(t, 4), [])}
            for t, r in mine.select("ts", "reason").iter_rows()
        ]
        wanted = pick_thumbnail_times(list(mine.select("ts", "reason").iter_rows()), seg["start_s"].to_list())
        thumbs: dict[float, bytes] = {}
        try:
            reader = open_video(uri, media=media_store.reader())
            try:
                for frame in reader.frames_at(wanted):
                    nearest = min(wanted, key=lambda t, ts=frame.ts: abs(t - ts))
                    thumbs[nearest] = thumbnail_jpeg(frame.image)
            finally:
                reader.close()
        except MediaProblem as exc:  # the sheet still shows the timeline; the reason goes to the log
            failed += 1
            context.log.warning(f"{uri}: contact sheet without pictures: {exc.reason}")
        page = render_contact_sheet(
            PurePath(uri).name, duration or 0.0, frame_rows, seg.to_dicts(), thumbs, tag_names=names
        )
        (out_dir / file_name).write_text(page, encoding="utf-8")
        manifest[media_id] = key
        drawn += 1
    (out_dir / "index.html").write_text(render_index(f"{library}: videos", index_rows), encoding="utf-8")
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return MaterializeResult(
        metadata={
            "index": MetadataValue.path(str(out_dir / "index.html")),
            "videos": len(index_rows),
            "sheets_drawn": drawn,
            "sheets_without_pictures": failed,
        }
    )


def names_key(names: dict[str, str]) -> bytes:
    return json.dumps(names, sort_keys=True).encode()


def progress_rows(context: AssetExecutionContext, table: pl.DataFrame):
    """Rows of `table`, logging progress every tenth of the way (sheets decode a few frames each)."""
    step = max(1, table.height // 10)
    for i, row in enumerate(table.iter_rows(), start=1):
        yield row
        if i % step == 0 or i == table.height:
            context.log.info(f"contact sheets: {i}/{table.height}")
