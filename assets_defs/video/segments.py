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
from ml.segments import SegmentParams, build_segments
from resources.backbone_plan import BackbonePlan
from resources.libraries import LibraryStore
from resources.model_store import ModelStore
from resources.tables import frame, table_of
from resources.warehouse import Warehouse

READS = ["promoted_heads", "media", "video_frames", "frames", "frame_text", "frame_keypoints", "embeddings"]


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
    heads = {
        facet: (version, model_store.load_head(library, facet, version))
        for facet, version in sorted(promoted_heads.items())
    }
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
    for media_id in videos["media_id"].unique(maintain_order=True).to_list():
        cuts = cuts_of.get(media_id, [])

        def keypoints_of(ts: list[float], media_id: str = media_id) -> dict:
            """The range's ORB features, taken by the range task (a range starts at a multiple of RANGE_S)."""
            start = RANGE_S * np.floor(ts[0] / RANGE_S)
            return warehouse.read_frame_keypoints(library, kp_model, media_id, start)

        scored = score_video_frames(
            {facet: head for facet, (_, head) in heads.items()},
            lambda model, media_id=media_id: warehouse.iter_frame_embeddings(library, model, media_id),
            model_id,
            cuts=cuts,
            boxes=boxes_of.get(media_id, {}),
            keypoints_of=keypoints_of,
        )
        if not scored:
            continue
        for facet in (f for f in heads if f not in scored):
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
                    },
                    schema=table_of("frame_tags").columns,
                )
            )
    table = frame("video_segments", rows)
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
        }
    )
    yield from table_results(warehouse, library, "video_segments")
