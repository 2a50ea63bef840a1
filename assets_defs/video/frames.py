"""Videos: sampled frames embedded over time ranges on Ray (`video_frames`: the `frames`, `video_ranges` and
`frame_text` tables, the frame embeddings and keypoints).

A long video is cut into time ranges (10 minutes by default), each a Ray task that streams its frames; a
(video, range, backbone) already done is never recomputed.
"""

import polars as pl
from dagster import AssetExecutionContext, MaterializeResult

from assets_defs.common import progress, record_quarantine, stage_quarantine, table_results, usable, writes_tables
from assets_defs.keypoints.assets import keypoint_spec
from assets_defs.ocr.assets import ocr_spec
from ml.backbones import BackboneSpec
from ml.video import DEFAULT_BACKEND
from ml.video_embedding import embed_video_range, time_ranges
from resources.backbone_plan import BackbonePlan
from resources.libraries import LibraryStore
from resources.media_store import MediaStore
from resources.model_store import ModelStore
from resources.ray_runner import TaskRunner
from resources.tables import frame, table_of
from resources.warehouse import Warehouse

RANGE_S = 600.0
EVERY_S = 1.0


@writes_tables(
    "video_frames", deps=["media", "catalog", "backbone_choice"], group_name="video", kinds={"parquet", "ray"}
)
def video_frames(
    context: AssetExecutionContext,
    libraries: LibraryStore,
    media_store: MediaStore,
    model_store: ModelStore,
    runner: TaskRunner,
    warehouse: Warehouse,
):
    """Frames sampled from every usable video (interval + scene changes), embedded; the `frames` table."""
    library = context.partition_key
    config = libraries.config(library)
    # every backbone a facet's head reads embeds the frames (decoded once); nothing else reads frame vectors
    plan = BackbonePlan(config, model_store, warehouse, library)
    in_use = plan.in_use(with_base=False)
    wanted = {model: name for name, model in in_use.values()}
    videos = usable(warehouse.read(library, "media"), "video")
    videos = videos.unique("media_id", keep="first", maintain_order=True)
    ocr = ocr_spec(config, warehouse.read(library, "catalog"), runner)
    ocr_model = ocr.model_id if ocr else ""
    kp = keypoint_spec(config)
    kp_model = kp.model_id if kp else ""
    done = warehouse.read(library, "video_ranges")
    for column in ("ocr", "keypoints"):  # ranges recorded before frames were read for text / keypoints
        if column not in done.columns:
            done = done.with_columns(pl.lit("", pl.String).alias(column))
    # per range: the backbones that embedded it, and the OCR / keypoint settings its frames were read with
    state: dict[tuple[str, float], dict] = {}
    for m, s, model, o, k in done.select("media_id", "start_s", "model", "ocr", "keypoints").iter_rows():
        state.setdefault((m, s), {"models": set(), "ocr": o, "keypoints": k})["models"].add(model)

    def spec_of(model: str) -> BackboneSpec:
        return plan.spec(name=wanted[model], threads=runner.threads_per_task())

    calls, tasks = [], []
    for media_id, uri, duration in videos.select("media_id", "uri", "duration_s").iter_rows():
        for start, end in time_ranges(duration or 0.0, RANGE_S):
            had = state.get((media_id, start))
            # new OCR or keypoint settings: the whole range again; else only the backbones it lacks
            redo = had is None or had["ocr"] != ocr_model or had["keypoints"] != kp_model
            missing = list(wanted) if redo else [m for m in wanted if m not in had["models"]]
            if not missing:
                continue
            first, *others = missing
            calls.append(
                (
                    spec_of(first),
                    media_id,
                    uri,
                    start,
                    end,
                    str(warehouse.video_range_path(library, first, media_id, start)),
                    EVERY_S,
                    media_store.reader(),
                    DEFAULT_BACKEND,
                    ocr if redo else None,
                    kp if redo else None,
                    str(warehouse.frame_keypoints_path(library, kp_model, media_id, start)) if kp and redo else None,
                    [(spec_of(m), str(warehouse.video_range_path(library, m, media_id, start))) for m in others],
                )
            )
            tasks.append((redo, missing, had))
    context.log.info(f"{library}: {videos.height} videos, {len(calls)} time ranges to embed ({len(wanted)} backbones)")
    results = runner.map(embed_video_range, calls, on_result=progress(context, "video ranges"))
    new_ranges = pl.DataFrame(
        [
            {
                "media_id": r.media_id,
                "start_s": r.start_s,
                "end_s": r.end_s,
                "model": model,
                "frames": len(r.frames),
                "error": r.error,
                "ocr": ocr_model if redo else had["ocr"],
                "keypoints": kp_model if redo else had["keypoints"],
            }
            for r, (redo, missing, had) in zip(results, tasks, strict=True)
            for model in missing
        ],
        schema=table_of("video_ranges").columns,
    )
    redone = pl.DataFrame(
        [(r.media_id, r.start_s) for r, (redo, _, _) in zip(results, tasks, strict=True) if redo],
        schema={"media_id": pl.String, "start_s": pl.Float64},
        orient="row",
    )
    if ocr is not None and redone.height:  # the frames' printed text, next to the photos' (the ocr_text view)
        old_text = warehouse.read(library, "frame_text")
        old_text = (  # without what a range read before it was redone (ranges tile: ts gives its range)
            old_text.with_columns(range_start=(pl.col("ts") // RANGE_S) * RANGE_S)
            .join(redone.rename({"start_s": "range_start"}), on=["media_id", "range_start"], how="anti")
            .drop("range_start")
        )
        new_text = frame("frame_text", [{**t, "model": ocr_model} for r in results for t in r.text])
        warehouse.write(library, "frame_text", pl.concat([old_text, new_text]))
    frames_old = warehouse.read(library, "frames")
    frames_new = frame("frames", [f for r in results for f in r.frames])
    frames = pl.concat([frames_old, frames_new])
    warehouse.write(library, "frames", frames.unique(["media_id", "ts"], keep="first").sort("media_id", "ts"))
    # a redone range's old rows all go (other settings); otherwise only the rows of the backbones redone
    kept = done.join(redone, on=["media_id", "start_s"], how="anti").join(
        new_ranges.select("media_id", "start_s", "model"), on=["media_id", "start_s", "model"], how="anti"
    )
    warehouse.write(library, "video_ranges", pl.concat([kept, new_ranges]))
    failed = [r for r in results if r.error]
    if failed:
        uri_of = dict(videos.select("media_id", "uri").iter_rows())
        prior = stage_quarantine(warehouse, library, "video")
        rows = [
            {
                "uri": uri_of[r.media_id],
                "media_id": r.media_id,
                "reason": f"{r.error} (range {r.start_s:.0f}-{r.end_s:.0f} s)",
            }
            for r in failed
        ]
        record_quarantine(warehouse, library, "video", prior + rows)
    yield MaterializeResult(
        asset_key="video_frames",
        metadata={
            "videos": videos.height,
            "ranges_embedded": len(calls),
            "frames_new": frames_new.height,
            "frames_total": frames.height,
            "ranges_failed": len(failed),
        },
    )
    yield from table_results(warehouse, library, "video_frames")
