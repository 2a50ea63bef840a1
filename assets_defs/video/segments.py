"""Videos: `video_segments`, stretches of video per tag, and `frame_tags`, the top tag per facet on every
sampled frame.

The asset reads the frames, their text and keypoints and the promoted heads; `ml/frame_scores.py` scores the
frames one time range at a time, and `ml/segments.py` smooths and merges the scores over time, with the heads'
calibrated thresholds.
"""

import numpy as np
import polars as pl
from dagster import AssetExecutionContext, AssetIn, MaterializeResult

from assets_defs.common import table_results, usable, writes_tables
from assets_defs.keypoints.assets import keypoint_spec
from assets_defs.video.frames import EVERY_S, RANGE_S
from ml.frame_scores import score_video_frames, stamp_key, top_tags
from ml.ocr import OcrSpec
from ml.region_head import region_floor
from ml.segments import SegmentParams, build_segments
from ml.verdicts import apply_segment_labels, person_labels
from resources.backbone_plan import BackbonePlan
from resources.libraries import LibraryStore
from resources.model_store import ModelStore
from resources.tables import frame, table_of
from resources.verdicts import read_verdicts
from resources.warehouse import Warehouse

READS = [
    "promoted_heads",
    "media",
    "video_frames",
    "frames",
    "frame_text",
    "frame_keypoints",
    "embeddings",
    "detections",
]


# the heads' top tag per facet on every sampled frame (raw score, before smoothing): what the model saw;
# tag_id and score are NULL where the frame is unlike every example of the facet (nothing recognised)
@writes_tables("video_segments", deps=READS, group_name="video", ins={"promoted_heads": AssetIn()})
def video_segments(
    context: AssetExecutionContext,
    promoted_heads: dict[str, str],
    libraries: LibraryStore,
    model_store: ModelStore,
    warehouse: Warehouse,
):
    """Stretches of video per tag, with start/end seconds, peak score and applied/review status; and
    `frame_tags`, the top tag per facet on every sampled frame. Frames are scored one time range at a time, so
    memory holds scores (not embeddings) for a whole video."""
    library = context.partition_key
    config = libraries.config(library)
    model_id = BackbonePlan(config, model_store, warehouse, library).library_model_id()
    videos = usable(warehouse.read(library, "media"), "video")
    loaded = {
        facet: (version, model_store.load_head(library, facet, version))
        for facet, version in sorted(promoted_heads.items())
    }
    # multi facets' tags on frames come from the regions found there (`detections`), each tag on its own
    multi = {f: vh for f, vh in loaded.items() if getattr(vh[1], "multi", False)}
    heads = {f: vh for f, vh in loaded.items() if f not in multi}
    params = SegmentParams(frame_s=EVERY_S)
    frames = warehouse.read(library, "frames")
    cuts_of = {
        m: g["ts"].to_list() for (m,), g in frames.filter(pl.col("reason") == "scene-change").group_by("media_id")
    }
    kp = keypoint_spec(config)
    kp_model = kp.model_id if kp else ""
    frame_text = warehouse.read(library, "frame_text")
    boxes_of: dict[str, dict[float, list[tuple[str, float]]]] = {}  # per video, per frame: the text read
    if any(head.reads_text for _, head in heads.values()):
        current = frame_text.filter(pl.col("model") == OcrSpec().model_id)  # the current OCR settings' reading
        for media_id, ts, text, confidence in current.select("media_id", "ts", "text", "confidence").iter_rows():
            boxes_of.setdefault(media_id, {}).setdefault(stamp_key(ts), []).append((text, confidence))
    rows, frame_rows = [], []
    # from cache: a video's frames and their vectors never change under its media_id, so a (video, facet) whose
    # every sampled frame the facet's head in use has scored keeps last run's segments and frame tags; the rest
    # (new videos, new heads, a video whose frames were not all embedded last time) is scored
    previous_frames = warehouse.read(library, "frame_tags")
    previous_segments = warehouse.read(library, "video_segments").filter(pl.col("origin") == "model")
    n_frames = dict(frames.group_by("media_id").len().iter_rows())
    scored_before = {
        (m, f, v)
        for m, f, v, n in previous_frames.group_by("media_id", "facet", "head_version").len().iter_rows()
        if n == n_frames.get(m)
    }
    reused = 0
    for media_id in videos["media_id"].unique(maintain_order=True).to_list():
        cuts = cuts_of.get(media_id, [])
        kept = [f for f, (version, _) in heads.items() if (media_id, f, version) in scored_before]
        for facet in kept:
            mine = (pl.col("media_id") == media_id) & (pl.col("facet") == facet)
            mine = mine & (pl.col("head_version") == heads[facet][0])
            rows += previous_segments.filter(mine).drop("origin").to_dicts()
            frame_rows.append(previous_frames.filter(mine))
        reused += len(kept)
        to_score = {facet: head for facet, (_, head) in heads.items() if facet not in kept}
        if not to_score:
            continue

        def keypoints_of(ts: list[float], media_id: str = media_id) -> dict:
            """The range's ORB features, taken by the range task (a range starts at a multiple of RANGE_S)."""
            start = RANGE_S * np.floor(ts[0] / RANGE_S)
            return warehouse.read_frame_keypoints(library, kp_model, media_id, start)

        scored = score_video_frames(
            to_score,
            lambda model, media_id=media_id: warehouse.iter_frame_embeddings(library, model, media_id),
            model_id,
            cuts=cuts,
            boxes=boxes_of.get(media_id, {}),
            keypoints_of=keypoints_of,
        )
        if not scored:
            continue
        for facet in (f for f in to_score if f not in scored):
            context.log.warning(
                f"{media_id[:12]}: no frames embedded by {heads[facet][1].model_id} (the {facet} head's backbone) "
                f"yet: materialize video_frames; no {facet} segments for this video until then"
            )
        for facet, frame_scores in scored.items():
            version, head = heads[facet]
            stamps, matrix = frame_scores.stamps, frame_scores.scores
            for seg in build_segments(stamps, matrix, head.classes, head.thresholds, params, scene_starts=cuts):
                rows.append({"media_id": media_id, "facet": facet, "head_version": version, **seg})
            tag_ids, scores = top_tags(matrix, head.classes)  # NULL: nothing recognised (unlike every example)
            frame_rows.append(
                pl.DataFrame(
                    {
                        "media_id": [media_id] * len(stamps),
                        "ts": stamps,
                        "facet": [facet] * len(stamps),
                        "tag_id": tag_ids,
                        "score": scores,
                        "head_version": [version] * len(stamps),
                    },
                    schema=table_of("frame_tags").columns,
                )
            )
    context.log.info(f"{library}: {reused} (video, facet) pairs kept from the last run (same head versions)")
    detected = warehouse.read(library, "detections")
    for facet, (version, head) in multi.items():
        rows += region_segments(detected, facet, version, head, cuts_of)
    # people win on video too: a stretch someone judged keeps their verdict (ml/verdicts.py)
    labels = person_labels(read_verdicts(libraries.dir(library)), list(multi))
    table = frame("video_segments", apply_segment_labels(frame("video_segments", rows), labels))
    warehouse.write(library, "video_segments", table)
    frame_tags = pl.concat(frame_rows) if frame_rows else frame("frame_tags")
    warehouse.write(library, "frame_tags", frame_tags.sort("media_id", "ts", "facet"))
    counts = dict(table.group_by("status").len().iter_rows()) if table.height else {}
    yield MaterializeResult(
        asset_key="video_segments",
        metadata={
            "videos": videos.height,
            "segments": table.height,
            "applied": counts.get("applied", 0),
            "review": counts.get("review", 0),
            "kept_from_last_run": reused,
        },
    )
    yield from table_results(warehouse, library, "video_segments")


def region_segments(detected: pl.DataFrame, facet: str, version: str, head, cuts_of: dict) -> list[dict]:
    """Segments of a multi facet's tags from the regions found on sampled frames: per video and tag, the
    tag's best score on each frame (0 where not found), unsmoothed (a region score is already one frame's
    evidence), merged over gaps of up to 1.5 s; applied where the peak clears the tag's threshold and the
    stretch lasts a second."""
    mine = detected.filter((pl.col("head_version") == version) & pl.col("ts").is_not_null())
    params = SegmentParams(window=1, frame_s=EVERY_S, floor=region_floor(head.spec))
    rows = []
    for (media_id,), video in mine.group_by("media_id", maintain_order=True):
        stamps = video["ts"].unique().sort().to_list()
        at = {t: i for i, t in enumerate(stamps)}
        found = video.filter(pl.col("tag_id").is_not_null())
        for (tag,), hits in found.group_by("tag_id", maintain_order=True):
            scores = np.zeros((len(stamps), 1), np.float32)
            for ts, score in hits.select("ts", "score").iter_rows():
                scores[at[ts], 0] = max(scores[at[ts], 0], score)
            segments = build_segments(stamps, scores, [tag], head.thresholds, params, cuts_of.get(media_id, []))
            rows += [{"media_id": media_id, "facet": facet, "head_version": version, **seg} for seg in segments]
    return rows
