"""Videos: sampled frames embedded over time ranges on Ray (`video_frames`), then `video_segments`.

A long video is cut into time ranges (10 minutes by default), each a Ray task that streams its frames; a
(video, range, backbone) already done is never recomputed. Segments come from the promoted heads' scores on
the frames, smoothed and merged over time (ml/segments.py), with the heads' calibrated thresholds.
"""

import numpy as np
import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, asset

from assets_defs.common import progress, record_quarantine, usable
from assets_defs.embeddings.assets import backbone_spec, library_model_id
from assets_defs.media.assets import media
from assets_defs.partitions import library_partitions
from ml.segments import SegmentParams, build_segments
from ml.video_embedding import embed_video_range, time_ranges
from resources.libraries import LibraryStore
from resources.media_store import MediaStore
from resources.model_store import ModelStore
from resources.ray_runner import TaskRunner
from resources.warehouse import Warehouse

RANGE_S = 600.0
EVERY_S = 1.0
RANGES_SCHEMA = {
    "media_id": pl.String,
    "start_s": pl.Float64,
    "end_s": pl.Float64,
    "model": pl.String,
    "frames": pl.Int64,
    "error": pl.String,
}
FRAMES_SCHEMA = {"media_id": pl.String, "ts": pl.Float64, "reason": pl.String}
# the heads' top tag per facet on every sampled frame (raw score, before smoothing): what the model saw
FRAME_TAGS_SCHEMA = {
    "media_id": pl.String,
    "ts": pl.Float64,
    "facet": pl.String,
    "tag_id": pl.String,
    "score": pl.Float64,
}
SEGMENTS_SCHEMA = {
    "media_id": pl.String,
    "facet": pl.String,
    "tag_id": pl.String,
    "start_s": pl.Float64,
    "end_s": pl.Float64,
    "peak_score": pl.Float64,
    "status": pl.String,
    "head_version": pl.String,
}


@asset(partitions_def=library_partitions, group_name="video", deps=[media], kinds={"parquet", "ray"})
def video_frames(
    context: AssetExecutionContext,
    libraries: LibraryStore,
    media_store: MediaStore,
    model_store: ModelStore,
    runner: TaskRunner,
    warehouse: Warehouse,
) -> MaterializeResult:
    """Frames sampled from every usable video (interval + scene changes), embedded; the `frames` table."""
    library = context.partition_key
    config = libraries.config(library)
    model_id = library_model_id(config, model_store)
    videos = usable(warehouse.read(library, "media"), "video")
    videos = videos.unique("media_id", keep="first", maintain_order=True)
    done = warehouse.read(library, "video_ranges")
    done = pl.DataFrame(schema=RANGES_SCHEMA) if done is None else done
    done_keys = {(m, s) for m, s, mod in done.select("media_id", "start_s", "model").iter_rows() if mod == model_id}
    task_spec = backbone_spec(config, model_store, threads=runner.threads_per_task())
    calls = []
    for media_id, uri, duration in videos.select("media_id", "uri", "duration_s").iter_rows():
        for start, end in time_ranges(duration or 0.0, RANGE_S):
            if (media_id, start) not in done_keys:
                out = str(warehouse.video_range_path(library, model_id, media_id, start))
                calls.append((task_spec, media_id, uri, start, end, out, EVERY_S, media_store.s3_endpoint_url()))
    context.log.info(f"{library}: {videos.height} videos, {len(calls)} time ranges to embed")
    results = runner.map(embed_video_range, calls, on_result=progress(context, "video ranges"))
    new_ranges = pl.DataFrame(
        [
            {
                "media_id": r.media_id,
                "start_s": r.start_s,
                "end_s": r.end_s,
                "model": model_id,
                "frames": len(r.frames),
                "error": r.error,
            }
            for r in results
        ],
        schema=RANGES_SCHEMA,
    )
    frames_old = warehouse.read(library, "frames")
    frames_new = pl.DataFrame([f for r in results for f in r.frames], schema=FRAMES_SCHEMA)
    frames = frames_new if frames_old is None else pl.concat([frames_old, frames_new])
    warehouse.write(library, "frames", frames.unique(["media_id", "ts"], keep="first").sort("media_id", "ts"))
    warehouse.write(library, "video_ranges", pl.concat([done, new_ranges]))
    failed = [r for r in results if r.error]
    if failed:
        uri_of = dict(videos.select("media_id", "uri").iter_rows())
        old = warehouse.read(library, "quarantine")
        prior = [] if old is None else old.filter(pl.col("stage") == "video").to_dicts()
        rows = [
            {
                "uri": uri_of[r.media_id],
                "media_id": r.media_id,
                "reason": f"{r.error} (range {r.start_s:.0f}-{r.end_s:.0f} s)",
            }
            for r in failed
        ]
        record_quarantine(warehouse, library, "video", prior + rows)
    return MaterializeResult(
        metadata={
            "videos": videos.height,
            "ranges_embedded": len(calls),
            "frames_new": frames_new.height,
            "frames_total": frames.height,
            "ranges_failed": len(failed),
        }
    )


@asset(partitions_def=library_partitions, group_name="video", deps=[video_frames], kinds={"parquet"})
def video_segments(
    context: AssetExecutionContext,
    promoted_heads: dict[str, str],
    libraries: LibraryStore,
    model_store: ModelStore,
    warehouse: Warehouse,
) -> MaterializeResult:
    """Stretches of video per tag, with start/end seconds, peak score and applied/review status; and
    `frame_tags`, the top tag per facet on every sampled frame. Frames are scored one time range at a time, so
    memory holds scores (not embeddings) for a whole video."""
    library = context.partition_key
    config = libraries.config(library)
    model_id = library_model_id(config, model_store)
    videos = usable(warehouse.read(library, "media"), "video")
    heads = {
        facet: (version, model_store.load_head(library, facet, version))
        for facet, version in sorted(promoted_heads.items())
    }
    params = SegmentParams(frame_s=EVERY_S)
    frames = warehouse.read(library, "frames")
    frames = pl.DataFrame(schema=FRAMES_SCHEMA) if frames is None else frames
    cuts_of = {
        m: g["ts"].to_list() for (m,), g in frames.filter(pl.col("reason") == "scene-change").group_by("media_id")
    }
    rows, frame_rows = [], []
    for media_id in videos["media_id"].unique(maintain_order=True).to_list():
        stamps: list[float] = []
        scores: dict[str, list[np.ndarray]] = {facet: [] for facet in heads}
        for ts, X in warehouse.iter_frame_embeddings(library, model_id, media_id):  # one range at a time
            stamps.extend(ts)
            for facet, (_, head) in heads.items():
                scores[facet].append(head.predict_scores(X).astype(np.float32))
        if not stamps:
            continue
        for facet, (version, head) in heads.items():
            matrix = np.concatenate(scores[facet])
            cuts = cuts_of.get(media_id, [])
            for seg in build_segments(stamps, matrix, head.classes, head.thresholds, params, scene_starts=cuts):
                rows.append({"media_id": media_id, "facet": facet, "head_version": version, **seg})
            top = matrix.argmax(axis=1)
            frame_rows.append(
                pl.DataFrame(
                    {
                        "media_id": [media_id] * len(stamps),
                        "ts": stamps,
                        "facet": [facet] * len(stamps),
                        "tag_id": [head.classes[i] for i in top],
                        "score": matrix[np.arange(len(top)), top].astype(np.float64),
                    },
                    schema=FRAME_TAGS_SCHEMA,
                )
            )
    table = pl.DataFrame(rows, schema=SEGMENTS_SCHEMA)
    warehouse.write(library, "video_segments", table)
    frame_tags = pl.concat(frame_rows) if frame_rows else pl.DataFrame(schema=FRAME_TAGS_SCHEMA)
    warehouse.write(library, "frame_tags", frame_tags.sort("media_id", "ts", "facet"))
    counts = dict(table.group_by("status").len().iter_rows()) if table.height else {}
    return MaterializeResult(
        metadata={
            "videos": videos.height,
            "segments": table.height,
            "applied": counts.get("applied", 0),
            "review": counts.get("review", 0),
        }
    )
