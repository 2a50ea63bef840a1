"""Embedding one time range of one video: the Ray unit of work for video (a 4-hour file spreads over tasks).

Frames are sampled (interval + scene changes), embedded in batches as they are decoded and written with their
timestamps: memory holds one batch of frames, whatever the video's length. Rows are keyed by
(media_id, ts, model) like photos, so a range already embedded is never recomputed.

Pure ML code: no Dagster, no Ray.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ml.backbones import Backbone, BackboneSpec, cached_backbone, l2_normalise
from ml.backbones.concat import Concat, join
from ml.embedding import embeddings_schema
from ml.keypoints import KeypointSpec, extract
from ml.media import LocalFiles, MediaProblem, MediaReader
from ml.ocr import OcrSpec, cached_engine
from ml.video import DEFAULT_BACKEND, open_video, sample_frames

log = logging.getLogger(__name__)


@dataclass
class VideoRangeResult:
    media_id: str
    start_s: float
    end_s: float
    out_path: str | None = None
    more_paths: list[str] = field(default_factory=list)  # the outputs of `more` backbones that were written
    frames: list[dict] = field(default_factory=list)  # {media_id, ts, reason}
    text: list[dict] = field(default_factory=list)  # OCR boxes {media_id, ts, text, confidence, box}
    error: str | None = None
    seconds: dict[str, float] = field(default_factory=lambda: {"decode": 0.0, "infer": 0.0, "ocr": 0.0, "write": 0.0})


def embed_video_range(
    spec: BackboneSpec,
    media_id: str,
    uri: str,
    start_s: float,
    end_s: float,
    out_path: str,
    every_s: float = 1.0,
    media: MediaReader = LocalFiles(),
    prefer: str = DEFAULT_BACKEND,
    ocr: OcrSpec | None = None,
    keypoints: KeypointSpec | None = None,
    keypoints_out: str | None = None,
    more: Sequence[tuple[BackboneSpec, str]] = (),
) -> VideoRangeResult:
    """Sample [start_s, end_s) of the video at `uri` (local path or s3://), embed the frames, write them to
    `out_path`. Only that range is decoded (`media` reads an S3 object by byte ranges). With `ocr`, every sampled
    frame is also read for printed text (`result.text`), from the same decoded picture; with `keypoints`, its
    ORB features go to `keypoints_out` (one file per range, like the embeddings). `more`: other backbones
    (a fine-tuned one) that embed the same decoded frames, each written to its own path."""
    result = VideoRangeResult(media_id, start_s, end_s)
    backbones = [(cached_backbone(spec), out_path)] + [(cached_backbone(s), path) for s, path in more]
    # what runs on the frames: each backbone once, an ensemble (ml/backbones/concat.py) as its parts, so a part
    # that a facet also reads alone is computed once and the ensemble's vectors are the parts' joined
    leaves, uses = _leaves([b for b, _ in backbones])
    reader_of_text = cached_engine(ocr) if ocr is not None else None
    try:
        reader = open_video(uri, prefer=prefer, media=media)
    except MediaProblem as exc:
        result.error = exc.reason
        return result
    stamps: list[float] = []
    kp_rows: list[dict] = []
    vectors: list[list[np.ndarray]] = [[] for _ in backbones]
    batch_ts: list[float] = []
    batch: list[list[np.ndarray]] = [[] for _ in leaves]  # preprocessed: a batch of small arrays, not frames
    batch_size = min(b.batch_size for b in leaves)

    def flush() -> None:
        t0 = time.perf_counter()
        out = [np.asarray(leaf.forward(np.stack(batch[j])), dtype=np.float32) for j, leaf in enumerate(leaves)]
        for k, parts in enumerate(uses):
            vectors[k].append(l2_normalise(out[parts[0]]) if len(parts) == 1 else join([out[j] for j in parts]))
        for pending in batch:
            pending.clear()
        stamps.extend(batch_ts)
        result.seconds["infer"] += time.perf_counter() - t0
        batch_ts.clear()

    try:
        t = time.perf_counter()
        for frame in sample_frames(reader, every_s=every_s, start_s=start_s, end_s=end_s):
            result.frames.append({"media_id": media_id, "ts": frame.ts, "reason": frame.reason})
            if reader_of_text is not None:
                t_ocr = time.perf_counter()
                for box in reader_of_text.read(frame.image):
                    result.text.append(
                        {
                            "media_id": media_id,
                            "ts": frame.ts,
                            "text": box.text,
                            "confidence": box.confidence,
                            "box": list(box.box),
                            "image_w": frame.image.width,
                            "image_h": frame.image.height,
                        }
                    )
                result.seconds["ocr"] += time.perf_counter() - t_ocr
                t += time.perf_counter() - t_ocr  # decode time excludes OCR
            if keypoints is not None:
                t_kp = time.perf_counter()
                xy, desc = extract(frame.image, keypoints).to_bytes()
                kp_rows.append({"media_id": media_id, "ts": frame.ts, "xy": xy, "desc": desc})
                t += time.perf_counter() - t_kp  # decode time excludes keypoints
            for j, leaf in enumerate(leaves):
                batch[j].append(leaf.preprocess([frame.image])[0])
            batch_ts.append(frame.ts)
            result.seconds["decode"] += time.perf_counter() - t
            if len(batch_ts) >= batch_size:
                flush()
            t = time.perf_counter()
        if batch_ts:
            flush()
    except MediaProblem as exc:  # a damaged stream part-way: keep what was decoded, say why it stopped
        result.error = exc.reason
        if batch_ts:
            flush()
    finally:
        reader.close()
    if kp_rows and keypoints_out:
        _write_atomically(pa.Table.from_pylist(kp_rows, schema=FRAME_KEYPOINTS_SCHEMA), keypoints_out)
    if stamps:
        t0 = time.perf_counter()
        for k, (backbone, path) in enumerate(backbones):
            matrix = np.concatenate(vectors[k])
            dim = matrix.shape[1]
            table = pa.table(
                {
                    "media_id": pa.array([media_id] * len(stamps), pa.string()),
                    "ts": pa.array(stamps, pa.float64()),
                    "model": pa.array([backbone.model_id] * len(stamps), pa.string()),
                    "vector": pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1), pa.float32()), dim),
                },
                schema=embeddings_schema(dim),
            )
            _write_atomically(table, path)
            if k == 0:
                result.out_path = path
            else:
                result.more_paths.append(path)
        result.seconds["write"] += time.perf_counter() - t0
    log.info("video %s [%.0f, %.0f) s: %d frames", media_id[:12], start_s, end_s, len(stamps))
    return result


FRAME_KEYPOINTS_SCHEMA = pa.schema(
    [("media_id", pa.string()), ("ts", pa.float64()), ("xy", pa.binary()), ("desc", pa.binary())]
)


def _write_atomically(table: pa.Table, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def time_ranges(duration_s: float, range_s: float = 600.0) -> list[tuple[float, float]]:
    """[0, range_s), [range_s, 2*range_s) ... covering the video: the Ray partitions of one video."""
    if range_s <= 0:
        raise ValueError("range length must be positive")
    out, start = [], 0.0
    while start < duration_s:
        out.append((start, min(start + range_s, duration_s)))
        start += range_s
    return out


def _leaves(backbones: Sequence[Backbone]) -> tuple[list[Backbone], list[list[int]]]:
    """(the distinct backbones to run, by model id; per backbone given, the indexes of the ones it reads): an
    ensemble (`Concat`) reads its parts, any other backbone itself."""
    leaves: list[Backbone] = []
    index: dict[str, int] = {}  # model id -> its place in leaves
    uses: list[list[int]] = []
    for backbone in backbones:
        parts = backbone.parts if isinstance(backbone, Concat) else [backbone]
        for leaf in parts:
            if leaf.model_id not in index:
                index[leaf.model_id] = len(leaves)
                leaves.append(leaf)
        uses.append([index[leaf.model_id] for leaf in parts])
    return leaves, uses
