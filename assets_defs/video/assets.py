"""Videos: sampled frames embedded over time ranges on Ray (`video_frames`), then `video_segments`.

A long video is cut into time ranges (10 minutes by default), each a Ray task that streams its frames; a
(video, range, backbone) already done is never recomputed. Segments come from the promoted heads' scores on
the frames, smoothed and merged over time (ml/segments.py), with the heads' calibrated thresholds.
"""

import hashlib
import json
import re
from pathlib import PurePath

import numpy as np
import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets_defs.backbones.assets import backbone_choice, models_in_use
from assets_defs.common import progress, record_quarantine, usable
from assets_defs.embedding_runs import backbone_spec, library_model_id
from assets_defs.keypoints.assets import keypoint_spec
from assets_defs.media.assets import media
from assets_defs.ocr.assets import OCR_SCHEMA, ocr_spec
from assets_defs.partitions import library_partitions
from ml.backbones import BackboneSpec
from ml.contact_sheet import pick_thumbnail_times, render_contact_sheet, render_index, thumbnail_jpeg
from ml.keypoints import Features
from ml.media import MediaProblem
from ml.ocr import OcrSpec
from ml.segments import SegmentParams, build_segments
from ml.video import DEFAULT_BACKEND, open_video
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
    "ocr": pl.String,  # the OCR model that read the range's frames, "" when none did
    "keypoints": pl.String,  # the keypoint settings of the range's frame features, "" when none were taken
}
FRAMES_SCHEMA = {"media_id": pl.String, "ts": pl.Float64, "reason": pl.String}
# the heads' top tag per facet on every sampled frame (raw score, before smoothing): what the model saw;
# tag_id and score are NULL where the frame is unlike every example of the facet (nothing recognised)
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


@asset(
    partitions_def=library_partitions, group_name="video", deps=[media, backbone_choice], kinds={"parquet", "ray"}
)
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
    # every backbone a facet's head reads embeds the frames (decoded once); nothing else reads frame vectors
    in_use = models_in_use(config, model_store, warehouse, library, with_base=False)
    wanted = {model: name for name, model in in_use.values()}
    videos = usable(warehouse.read(library, "media"), "video")
    videos = videos.unique("media_id", keep="first", maintain_order=True)
    ocr = ocr_spec(config, warehouse.read(library, "catalog"), runner)
    ocr_model = ocr.model_id if ocr else ""
    kp = keypoint_spec(config)
    kp_model = kp.model_id if kp else ""
    done = warehouse.read(library, "video_ranges")
    done = pl.DataFrame(schema=RANGES_SCHEMA) if done is None else done
    for column in ("ocr", "keypoints"):  # ranges recorded before frames were read for text / keypoints
        if column not in done.columns:
            done = done.with_columns(pl.lit("", pl.String).alias(column))
    # per range: the backbones that embedded it, and the OCR / keypoint settings its frames were read with
    state: dict[tuple[str, float], dict] = {}
    for m, s, model, o, k in done.select("media_id", "start_s", "model", "ocr", "keypoints").iter_rows():
        state.setdefault((m, s), {"models": set(), "ocr": o, "keypoints": k})["models"].add(model)

    def spec_of(model: str) -> BackboneSpec:
        return backbone_spec(config, model_store, threads=runner.threads_per_task(), name=wanted[model])

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
                    media_store.s3_endpoint_url(),
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
        schema=RANGES_SCHEMA,
    )
    redone = pl.DataFrame(
        [(r.media_id, r.start_s) for r, (redo, _, _) in zip(results, tasks, strict=True) if redo],
        schema={"media_id": pl.String, "start_s": pl.Float64},
        orient="row",
    )
    if ocr is not None and redone.height:  # the frames' printed text, next to the photos' (the ocr_text view)
        old_text = warehouse.read(library, "frame_text")
        if old_text is not None:  # drop what a range read before it was redone (ranges tile: ts gives its range)
            old_text = (
                old_text.with_columns(range_start=(pl.col("ts") // RANGE_S) * RANGE_S)
                .join(redone.rename({"start_s": "range_start"}), on=["media_id", "range_start"], how="anti")
                .drop("range_start")
            )
        new_text = pl.DataFrame([{**t, "model": ocr_model} for r in results for t in r.text], schema=OCR_SCHEMA)
        warehouse.write(library, "frame_text", new_text if old_text is None else pl.concat([old_text, new_text]))
    frames_old = warehouse.read(library, "frames")
    frames_new = pl.DataFrame([f for r in results for f in r.frames], schema=FRAMES_SCHEMA)
    frames = frames_new if frames_old is None else pl.concat([frames_old, frames_new])
    warehouse.write(library, "frames", frames.unique(["media_id", "ts"], keep="first").sort("media_id", "ts"))
    # a redone range's old rows all go (other settings); otherwise only the rows of the backbones redone
    kept = done.join(redone, on=["media_id", "start_s"], how="anti").join(
        new_ranges.select("media_id", "start_s", "model"), on=["media_id", "start_s", "model"], how="anti"
    )
    warehouse.write(library, "video_ranges", pl.concat([kept, new_ranges]))
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
    kp = keypoint_spec(config)
    kp_model = kp.model_id if kp else ""
    frame_text = warehouse.read(library, "frame_text")
    frame_boxes: dict[tuple[str, float], list[tuple[str, float]]] = {}
    if frame_text is not None and any(head.reads_text for _, head in heads.values()):
        current = frame_text.filter(pl.col("model") == OcrSpec().model_id)  # the current OCR settings' reading
        for media_id, ts, text, confidence in current.select("media_id", "ts", "text", "confidence").iter_rows():
            frame_boxes.setdefault((media_id, round(ts, 4)), []).append((text, confidence))
    rows, frame_rows = [], []
    by_model: dict[str, list[str]] = {}  # the facets whose heads read each backbone's frame embeddings
    for facet, (_, head) in heads.items():
        by_model.setdefault(head.model_id or model_id, []).append(facet)
    for media_id in videos["media_id"].unique(maintain_order=True).to_list():
        stamps_of: dict[str, list[float]] = {facet: [] for facet in heads}
        visual: dict[str, list[np.ndarray]] = {facet: [] for facet in heads}
        # per facet reading text, per channel ("ocr": identifiers, "text": learnt from the examples' print)
        text: dict[str, dict[str, list[np.ndarray]]] = {facet: {} for facet in heads if heads[facet][1].reads_text}
        matched: dict[str, list[np.ndarray]] = {facet: [] for facet in heads if heads[facet][1].matches_keypoints}
        familiar: dict[str, list[np.ndarray]] = {facet: [] for facet in heads}
        for model, facets in by_model.items():
            for ts, X in warehouse.iter_frame_embeddings(library, model, media_id):  # one range at a time
                features = None
                if any(f in matched for f in facets):  # the range's ORB features, taken by the range task
                    start = RANGE_S * np.floor(ts[0] / RANGE_S)
                    stored = warehouse.read_frame_keypoints(library, kp_model, media_id, start)
                    keys = [round(t, 4) for t in ts]
                    features = [Features.from_bytes(*stored[k]) if k in stored else None for k in keys]
                for facet in facets:
                    head = heads[facet][1]
                    stamps_of[facet].extend(ts)
                    scored = head.visual_scores(X)
                    visual[facet].append(scored.astype(np.float32))
                    familiar[facet].append(head.familiar(X))
                    if facet in text:
                        boxes = [frame_boxes.get((media_id, round(t, 4)), []) for t in ts]
                        for channel, found in head.evidence(scored, boxes=boxes).items():
                            text[facet].setdefault(channel, []).append(found.astype(np.float32))
                    if facet in matched:
                        found = head.evidence(scored, features=features).get("keypoints", np.zeros_like(scored))
                        matched[facet].append(found.astype(np.float32))
        if not any(stamps_of.values()):
            continue
        for facet in (f for f, stamps in stamps_of.items() if not stamps):
            context.log.warning(
                f"{media_id[:12]}: no frames embedded by {heads[facet][1].model_id} (the {facet} head's backbone) "
                f"yet: materialize video_frames; no {facet} segments for this video until then"
            )
        cuts = cuts_of.get(media_id, [])
        scores: dict[str, np.ndarray] = {}
        for facet, (_, head) in heads.items():
            if not stamps_of[facet]:
                continue
            stamps = stamps_of[facet]
            # printed text read on any frame of a scene counts for the scene's nearby frames (a label is
            # legible on some frames only), then the head combines it with the picture
            evidence = {
                channel: spread_within_scenes(stamps, np.concatenate(parts), cuts)
                for channel, parts in text.get(facet, {}).items()
            }
            if facet in matched:
                evidence["keypoints"] = np.concatenate(matched[facet])
            combined = head.combine(np.concatenate(visual[facet]), evidence)
            # a frame unlike every example (nothing on screen) recognises nothing: its scores are zeroed
            scores[facet] = np.where(np.concatenate(familiar[facet])[:, None], combined, 0.0).astype(np.float32)
        for facet, matrix in scores.items():
            version, head = heads[facet]
            stamps = stamps_of[facet]
            for seg in build_segments(stamps, matrix, head.classes, head.thresholds, params, scene_starts=cuts):
                rows.append({"media_id": media_id, "facet": facet, "head_version": version, **seg})
            top = matrix.argmax(axis=1)
            best = matrix[np.arange(len(top)), top].astype(np.float64)
            frame_rows.append(
                pl.DataFrame(
                    {
                        "media_id": [media_id] * len(stamps),
                        "ts": stamps,
                        "facet": [facet] * len(stamps),
                        # NULL: nothing recognised (the frame is unlike every example)
                        "tag_id": [head.classes[i] if v > 0 else None for i, v in zip(top, best, strict=True)],
                        "score": [v if v > 0 else None for v in best],
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


@asset(partitions_def=library_partitions, group_name="video", deps=[video_segments], kinds={"html"})
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
    frames = _table_or_empty(warehouse, library, "frames", FRAMES_SCHEMA)
    frame_tags = _table_or_empty(warehouse, library, "frame_tags", FRAME_TAGS_SCHEMA)
    segments = _table_or_empty(warehouse, library, "video_segments", SEGMENTS_SCHEMA)
    catalog_table = warehouse.read(library, "catalog")
    names = {} if catalog_table is None else dict(catalog_table.select("tag_id", "name").iter_rows())
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
            reader = open_video(uri, s3_endpoint_url=media_store.s3_endpoint_url())
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


def spread_within_scenes(
    stamps: list[float], evidence: np.ndarray, cuts: list[float], window_s: float = 5.0
) -> np.ndarray:
    """Each frame's text evidence becomes the largest of the frames of its scene within `window_s`."""
    order = np.argsort(np.asarray(stamps, dtype=np.float64), kind="stable")
    times = np.asarray(stamps, dtype=np.float64)[order]
    scene = np.searchsorted(np.sort(np.asarray(cuts, dtype=np.float64)), times + 1e-6)
    ordered = evidence[order]
    out = np.empty_like(evidence)
    lo = np.searchsorted(times, times - window_s, side="left")
    hi = np.searchsorted(times, times + window_s, side="right")
    for i in range(len(times)):
        window = slice(lo[i], hi[i])
        out[order[i]] = ordered[window][scene[window] == scene[i]].max(axis=0)
    return out


def _table_or_empty(warehouse: Warehouse, library: str, table: str, schema: dict) -> pl.DataFrame:
    df = warehouse.read(library, table)
    return pl.DataFrame(schema=schema) if df is None else df


def names_key(names: dict[str, str]) -> bytes:
    return json.dumps(names, sort_keys=True).encode()


def progress_rows(context: AssetExecutionContext, table: pl.DataFrame):
    """Rows of `table`, logging progress every tenth of the way (sheets decode a few frames each)."""
    step = max(1, table.height // 10)
    for i, row in enumerate(table.iter_rows(), start=1):
        yield row
        if i % step == 0 or i == table.height:
            context.log.info(f"contact sheets: {i}/{table.height}")
