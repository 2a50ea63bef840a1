"""Reader -> mapper -> writer for one chunk of media: the unit of work a Ray task runs.

Builders cross process boundaries, built models do not: a worker receives a `BackboneSpec` and builds the
model once per process (`cached_backbone`). Decoding of the next batch overlaps the model's forward pass of
the current one (PIL and onnxruntime both release the GIL), which is what keeps the pipeline's throughput
close to the raw forward pass. Vectors are normalised and cast here and written with their ids in one
Parquet row each. Per-batch timings come back with the result: they are the benchmark's raw material.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ml.backbones import Backbone, BackboneSpec, cached_backbone, l2_normalise
from ml.media import LocalFiles, MediaProblem, MediaReader, decode_image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbedItem:
    media_id: str
    uri: str


@dataclass
class ChunkResult:
    out_path: str | None
    n_embedded: int = 0
    failures: list[dict] = field(default_factory=list)  # {media_id, uri, reason}
    seconds: dict[str, float] = field(default_factory=lambda: {"read_decode": 0.0, "infer": 0.0, "write": 0.0})
    wall_seconds: float = 0.0


def embeddings_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            ("media_id", pa.string()),
            ("ts", pa.float64()),
            ("model", pa.string()),
            ("vector", pa.list_(pa.float32(), dim)),
        ]
    )


def write_embeddings(path: str, media_ids: Sequence[str], model: str, vectors: np.ndarray) -> None:
    """One row per item: ids, model and the vector together; written to a temp name then renamed."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1]
    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    table = pa.table(
        {
            "media_id": pa.array(list(media_ids), pa.string()),
            "ts": pa.nulls(len(media_ids), pa.float64()),
            "model": pa.array([model] * len(media_ids), pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(flat, dim),
        },
        schema=embeddings_schema(dim),
    )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def model_input(backbone: Backbone, data: bytes) -> np.ndarray:
    """The backbone's input array of one photo's bytes, decoded as every stored vector was: `embed_chunk` and the
    one-photo tagger (tagsmith/tag_now.py) both come here, so a photo tagged now scores as it would in a run."""
    # JPEG DCT scaling straight to the model's input size: measured 2.2 vs 3.4 ms per 640x480 photo
    # (draft 448), which on 2 cores is the difference between 0.73 and 0.82 of the raw forward rate.
    image = decode_image(data, draft_size=backbone.input_size)
    return backbone.preprocess([image])[0]


def embed_inputs(backbone: Backbone, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """L2-normalised float32 vectors of stacked `model_input` arrays: what the embeddings table stores."""
    return np.asarray(l2_normalise(backbone.forward(np.stack(inputs))), dtype=np.float32)


def _load(item: EmbedItem, backbone: Backbone, reader: MediaReader):
    try:
        return item, model_input(backbone, reader.read(item.uri)), None
    except MediaProblem as exc:
        return item, None, exc.reason
    except OSError as exc:
        return item, None, f"cannot read: {exc}"


def embed_chunk(
    spec: BackboneSpec,
    items: Sequence[EmbedItem],
    out_path: str,
    reader: MediaReader = LocalFiles(),
    decode_threads: int = 2,
) -> ChunkResult:
    """Embed `items` and write them to `out_path` (Parquet). Undecodable items come back as failures."""
    start = time.perf_counter()
    backbone = cached_backbone(spec)
    result = ChunkResult(out_path=None)
    ids: list[str] = []
    vectors: list[np.ndarray] = []
    batches = [items[i : i + backbone.batch_size] for i in range(0, len(items), backbone.batch_size)]
    with ThreadPoolExecutor(max_workers=max(1, decode_threads)) as pool:

        def submit(batch):
            return [pool.submit(_load, item, backbone, reader) for item in batch]

        pending = submit(batches[0]) if batches else []
        for index in range(len(batches)):
            t0 = time.perf_counter()
            loaded = [f.result() for f in pending]
            pending = submit(batches[index + 1]) if index + 1 < len(batches) else []
            t1 = time.perf_counter()
            good = [(item, arr) for item, arr, reason in loaded if reason is None]
            for item, _, reason in loaded:
                if reason is not None:
                    result.failures.append({"media_id": item.media_id, "uri": item.uri, "reason": reason})
            if good:
                vectors.append(embed_inputs(backbone, [arr for _, arr in good]))
                ids.extend(item.media_id for item, _ in good)
            t2 = time.perf_counter()
            result.seconds["read_decode"] += t1 - t0
            result.seconds["infer"] += t2 - t1
    if ids:
        t3 = time.perf_counter()
        write_embeddings(out_path, ids, backbone.model_id, np.concatenate(vectors))
        result.seconds["write"] += time.perf_counter() - t3
        result.out_path = out_path
    result.n_embedded = len(ids)
    result.wall_seconds = time.perf_counter() - start
    log.info("embedded %d items (%d failed) in %.2fs", len(ids), len(result.failures), result.wall_seconds)
    return result
