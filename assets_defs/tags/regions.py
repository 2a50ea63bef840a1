"""`detections`: where a multi facet's tags are on every photo and sampled video frame (ml/region_head.py).

A multi facet's promoted head that reads regions runs its logo index over the library's photos and the sampled
frames of its videos, on the runner's workers; each detection above the head's floor is a row, and a photo or
frame where it found nothing is a row with a null tag_id, so a rerun looks only at media the current head
versions have not seen. `tags` and `video_segments` turn the rows into tags with boxes and into segments, with
the head's calibrated thresholds.
"""

import polars as pl
from dagster import AssetExecutionContext, AssetIn, MaterializeResult

from assets_defs.common import chunked, progress, usable, writes_tables
from assets_defs.heads.multi import ocr_rows
from ml.photo_tags import joined, pixel_tasks, reads_regions
from ml.region_head import detect_video_task, region_floor
from ml.regions import Detection
from ml.word_marks import word_mark_detections
from resources.libraries import LibraryStore
from resources.media_store import MediaStore
from resources.model_store import ModelStore
from resources.ray_runner import TaskRunner
from resources.tables import frame
from resources.warehouse import Warehouse

PHOTOS_PER_TASK = 16
FRAMES_PER_TASK = 60  # ~25 s of region search per task on one core


def region_heads(promoted_heads: dict[str, str], model_store: ModelStore, library: str) -> dict:
    """{facet: (version, head)} of the promoted heads that read regions or windows."""
    out = {}
    for facet, version in sorted(promoted_heads.items()):
        head = model_store.load_head(library, facet, version)
        if reads_regions(head):
            out[facet] = (version, head)
    return out


@writes_tables(
    "detections",
    deps=["media", "frames", "ocr_text", "frame_text", "promoted_heads"],
    group_name="tags",
    ins={"promoted_heads": AssetIn()},
)
def detections(
    context: AssetExecutionContext,
    promoted_heads: dict[str, str],
    libraries: LibraryStore,
    media_store: MediaStore,
    model_store: ModelStore,
    runner: TaskRunner,
    warehouse: Warehouse,
):
    """Regions of the multi facets' tags on photos and video frames; only media the heads in use have not seen."""
    library = context.partition_key
    heads = region_heads(promoted_heads, model_store, library)
    media = warehouse.read(library, "media")
    photos = usable(media, "image").unique("media_id", keep="first", maintain_order=True)
    videos = usable(media, "video").unique("media_id", keep="first", maintain_order=True)
    frames = warehouse.read(library, "frames")
    old = warehouse.read(library, "detections")
    versions = [v for v, _ in heads.values()]
    kept = old.filter(pl.col("head_version").is_in(versions))  # rows of heads no longer in use are dropped
    reader = media_store.reader()
    reads_text = any(head.uses_text for _, head in heads.values())  # the OCR tables are read only then
    text_of = ocr_rows(warehouse.read(library, "ocr_text")) if reads_text else {}
    frame_text_of = ocr_rows(warehouse.read(library, "frame_text"), ts=True) if reads_text else {}
    stamps = {m: g["ts"].sort().to_list() for (m,), g in frames.group_by("media_id")}  # each video's frames

    rows, unread = [], []
    for facet, (version, head) in heads.items():
        seen = kept.filter(pl.col("head_version") == version)
        seen_photos = set(seen.filter(pl.col("ts").is_null())["media_id"].to_list())
        todo = [(m, u) for m, u in photos.select("media_id", "uri").iter_rows() if m not in seen_photos]
        found, problems = photo_channels(context, runner, reader, head, todo, text_of)
        unread += problems
        rows += [r for media_id, dets in found for r in detection_rows(media_id, None, facet, version, dets)]
        if not head.uses_regions:  # video frames: regions only (windows on every frame would cost a photo each)
            continue
        seen_videos = set(seen.filter(pl.col("ts").is_not_null())["media_id"].to_list())
        todo_videos = [(m, u) for m, u in videos.select("media_id", "uri").iter_rows() if m not in seen_videos]
        # a video's frames in runs of FRAMES_PER_TASK: an hour of video spreads over every worker
        parts = [(m, u, ts) for m, u in todo_videos for ts in chunked(stamps.get(m, []), FRAMES_PER_TASK)]
        calls = [(head.index, u, ts, reader, region_floor(head.spec)) for _, u, ts in parts]
        results = runner.map(detect_video_task, calls, on_result=progress(context, f"{facet} regions on frames"))
        failed = {m for (m, _, _), result in zip(parts, results, strict=True) if isinstance(result, str)}
        for (media_id, uri, _), result in zip(parts, results, strict=True):
            if isinstance(result, str):
                unread.append(f"{uri}: {result}")
            elif media_id not in failed:  # a video is searched whole or looked at again next run
                for ts, dets in result:
                    marks = word_mark_detections(frame_text_of.get((media_id, ts), []), head.identifiers or {})
                    rows += detection_rows(media_id, ts, facet, version, [*dets, *marks])
    for line in unread[:20]:
        context.log.warning(f"not searched for regions (retried next run): {line}")
    table = pl.concat([kept, frame("detections", rows)]).sort("facet", "media_id", "ts", nulls_last=False)
    warehouse.write(library, "detections", table)
    found = table.filter(pl.col("tag_id").is_not_null())
    yield MaterializeResult(
        asset_key="detections",
        metadata={
            "facets": ", ".join(heads) or "none read regions",
            "searched_now": len({(r["media_id"], r["ts"]) for r in rows}),
            "regions": found.height,
            "unread": len(unread),
            **{f"regions/{f}": found.filter(pl.col("facet") == f).height for f in heads},
        },
    )


def photo_channels(context, runner, reader, head, todo: list[tuple[str, str]], text_of: dict):
    """[(media_id, detections of every channel the head reads)] of the photos `todo`, and the photos that could
    not be read (a line each). The channels and how they join are ml/photo_tags.py's, as for one photo now."""
    chunks = chunked(todo, PHOTOS_PER_TASK)
    tasks = [pixel_tasks(head, [u for _, u in chunk], reader) for chunk in chunks]
    channels = []  # per channel, per chunk, per photo: its detections (or why it could not be read)
    for k, (label, task, _) in enumerate(tasks[0] if tasks else []):
        calls = [chunk_tasks[k][2] for chunk_tasks in tasks]
        channels.append(runner.map(task, calls, on_result=progress(context, f"{head.facet} {label} on photos")))
    if head.uses_text:  # word marks from the OCR rows already read (no task: a lookup)
        channels.append([[word_mark_detections(text_of.get(m, []), head.identifiers) for m, _ in c] for c in chunks])
    found, unread = [], []
    for n, chunk in enumerate(chunks):
        for i, (media_id, uri) in enumerate(chunk):
            result = joined([channel[n][i] for channel in channels])
            if isinstance(result, str):
                unread.append(f"{uri}: {result}")
            else:
                found.append((media_id, result))
    return found, unread


def detection_rows(media_id: str, ts: float | None, facet: str, version: str, found) -> list[dict]:
    base = {"media_id": media_id, "ts": ts, "facet": facet, "head_version": version}
    if not found:
        return [{**base, "tag_id": None, "score": None, "box": None}]
    return [{**base, "tag_id": d.tag_id, "score": d.score, "box": list(d.box)} for d in found]


def found_on_photos(table: pl.DataFrame, version: str) -> dict[str, list[Detection]]:
    """{media_id: detections} of one head version on photos (not frames), from the `detections` table."""
    mine = table.filter((pl.col("head_version") == version) & pl.col("ts").is_null() & pl.col("tag_id").is_not_null())
    out: dict[str, list[Detection]] = {}
    for media_id, tag_id, score, box in mine.select("media_id", "tag_id", "score", "box").iter_rows():
        out.setdefault(media_id, []).append(Detection(tag_id, score, tuple(box), 0))
    return out
