"""EfficientNet-Lite0 vs Lite1 vs Lite2 on grocery-produce, each through the pipeline's own embedding path.

Per backbone (`--backbones`, default the three Lite names): every photo of the data set is embedded by
`ml.embedding.embed_chunk` - the function a pipeline run calls per chunk (`cached_backbone`, JPEGs decoded by
`ml.media.decode_image` at the model's input size, decode overlapped with the forward pass, vectors written to
Parquet) - in the pipeline's chunks of 256, in process, with `--threads` runtime threads. The vectors are read
back from the Parquet files and cached as .npz under benchmarks/out/, keyed by the manifest and the model id,
so a rerun only fits heads (`--reembed` embeds again).

Figures per backbone:
- test top-1 / balanced accuracy of `LogisticRegression(class_weight="balanced", max_iter=2000)` on
  L2-normalised vectors: C chosen from C_GRID by val top-1 after fitting on train (ties: the smaller C),
  then refitted on train+val;
- the "new-session" estimate, on train+val only: each tag's vectors are split by k-means into 6 clusters, one
  cluster per tag is held out (drawn per seed), the same logreg (the C chosen above) is fitted on the rest and
  scored on the held-out clusters; 3 seeds, mean +- sd. A held-out cluster stands for a "look" of the product
  that training never saw, as a new photo session would be; set it beside the test figure, which comes from
  the data set's own split;
- img/s of the raw forward pass (`backbone.forward` on preprocessed batches of 32, measured before and after
  the embedding run; a > 10 % difference means the shared CPU was busy) and of the whole embed path.

    python -m benchmarks.backbones             # ~3.5 min cold on 2 cores (lite2 embeds for ~1), ~1 min warm
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from benchmarks.grocery import OUT_DIR, Dataset, load_dataset
from benchmarks.probes import balanced, top1
from ml.backbones import Backbone, BackboneSpec, cached_backbone, l2_normalise
from ml.embedding import EmbedItem, embed_chunk
from ml.media import LocalFiles, decode_image

log = logging.getLogger(__name__)

BACKBONES = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")
C_GRID: tuple[float, ...] = (0.5, 2.0, 10.0, 30.0, 100.0)
CHUNK = 256  # the pipeline's chunk (assets_defs/embeddings/assets.py CHUNK)
RAW_BATCH = 32
OUT_JSON = OUT_DIR / "backbones.json"


# ------------------------------------------------------------------------------------------ embedding
def cache_path(data: Dataset, model_id: str) -> Path:
    return OUT_DIR / f"backbones-{data.key}-{model_id.replace('@', '-')}.npz"


def raw_forward_rate(backbone: Backbone, data: Dataset, n_batches: int) -> float:
    """Images/s of `backbone.forward` alone on `n_batches` preprocessed batches of real photos (one warm-up)."""
    n = RAW_BATCH * n_batches
    images = [decode_image((data.root / p).read_bytes(), draft_size=backbone.input_size) for p in data.paths[:n]]
    batches = [backbone.preprocess(images[i : i + RAW_BATCH]) for i in range(0, n, RAW_BATCH)]
    backbone.forward(batches[0])
    started = time.perf_counter()
    for batch in batches:
        backbone.forward(batch)
    return n / (time.perf_counter() - started)


def embed_dataset(spec: BackboneSpec, data: Dataset, decode_threads: int) -> dict:
    """Every photo through `embed_chunk` in chunks of CHUNK; vectors back in manifest order, with timings."""
    scratch = OUT_DIR / f"backbones-tmp-{spec.name}"
    shutil.rmtree(scratch, ignore_errors=True)
    items = [EmbedItem(media_id=str(i), uri=str(data.root / p)) for i, p in enumerate(data.paths)]
    n = len(items)
    vectors: np.ndarray | None = None
    seconds = {"read_decode": 0.0, "infer": 0.0, "write": 0.0}
    wall = 0.0
    failures: list[dict] = []
    try:
        for index, start in enumerate(range(0, n, CHUNK)):
            out = scratch / f"chunk-{index:03d}.parquet"
            result = embed_chunk(spec, items[start : start + CHUNK], str(out), LocalFiles(), decode_threads)
            wall += result.wall_seconds
            failures += result.failures
            for key, value in result.seconds.items():
                seconds[key] += value
            if result.out_path:
                table = pq.read_table(result.out_path, columns=["media_id", "vector"])
                rows = np.array([int(m) for m in table.column("media_id").to_pylist()])
                vec = np.asarray(table.column("vector").combine_chunks().values, dtype=np.float32)
                vec = vec.reshape(len(rows), -1)
                if vectors is None:
                    vectors = np.full((n, vec.shape[1]), np.nan, dtype=np.float32)
                vectors[rows] = vec
            done = min(n, start + CHUNK)
            log.info("%s: %d/%d photos embedded, %.1f img/s so far", spec.name, done, n, done / wall)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if failures or vectors is None or np.isnan(vectors).any():
        raise RuntimeError(f"{spec.name}: {len(failures)} photos failed to embed, e.g. {failures[:3]}")
    return {"vectors": vectors, "wall_seconds": wall, "seconds": seconds}


def get_embeddings(name: str, data: Dataset, args: argparse.Namespace) -> dict:
    """Build the backbone as the pipeline does, then load the cache or embed with raw img/s measured before and
    after. Timings are kept with the vectors: a cached run reports those of the run that embedded, so the raw and
    pipeline rates always come from the same minutes of a shared CPU."""
    spec = BackboneSpec(name=name, device="cpu", threads=args.threads)
    backbone = cached_backbone(spec)  # what embed_chunk will reuse: its build is not timed
    info = {"name": name, "model_id": backbone.model_id, "dim": backbone.dim, "input_size": backbone.input_size}
    path = cache_path(data, backbone.model_id)
    if path.exists() and not args.reembed:
        with np.load(path) as npz:
            vectors, wall, raw = npz["vectors"], float(npz["wall_seconds"]), [float(r) for r in npz["raw_img_s"]]
            seconds = json.loads(str(npz["seconds"]))
        log.info("%s: embeddings and timings from %s (--reembed to measure again)", name, path)
        cached = True
    else:
        raw = [raw_forward_rate(backbone, data, args.raw_batches)]
        log.info("%s: embedding %d photos through embed_chunk (%d threads)", name, len(data.paths), args.threads)
        got = embed_dataset(spec, data, args.decode_threads)
        vectors, wall, seconds = got["vectors"], got["wall_seconds"], got["seconds"]
        raw.append(raw_forward_rate(backbone, data, args.raw_batches))
        if abs(raw[1] - raw[0]) > 0.1 * max(raw):
            log.warning("%s: raw forward rate moved %.1f -> %.1f img/s during the run: the CPU was shared",
                        name, raw[0], raw[1])
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, vectors=vectors, wall_seconds=wall, seconds=json.dumps(seconds), raw_img_s=np.array(raw),
                 model_id=backbone.model_id)
        cached = False
    info |= {
        "raw_img_s": float(np.mean(raw)),
        "raw_img_s_runs": [round(r, 2) for r in raw],
        "pipeline_img_s": len(data.paths) / wall,
        "pipeline_seconds": {k: round(v, 1) for k, v in seconds.items()} | {"wall": round(wall, 1)},
        "embeddings_cached": cached,
    }
    return info | {"vectors": vectors}


# ------------------------------------------------------------------------------------------ heads
def logreg(C: float) -> LogisticRegression:
    return LogisticRegression(C=C, class_weight="balanced", max_iter=2000)


def probe_accuracy(X: np.ndarray, data: Dataset) -> dict:
    """C chosen on val (fit on train), refit on train+val, scored on test."""
    tr, va, te = data.mask("train"), data.mask("val"), data.mask("test")
    y = data.labels
    val = {}
    for C in C_GRID:
        val[C] = top1(y[va], logreg(C).fit(X[tr], y[tr]).predict(X[va]))
    best_c = min(C_GRID, key=lambda c: (-val[c], c))
    trva = tr | va
    pred = logreg(best_c).fit(X[trva], y[trva]).predict(X[te])
    return {"C": best_c, "val_top1_by_C": {str(c): round(a, 4) for c, a in val.items()},
            "test_top1": top1(y[te], pred), "test_balanced": balanced(y[te], pred)}


def cluster_holdout(X: np.ndarray, y: np.ndarray, C: float, seed: int, k: int) -> dict:
    """Per tag: k-means into `k` clusters, one drawn cluster held out; train on the rest, score the held out."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(y), dtype=bool)
    for tag in np.unique(y):
        idx = np.flatnonzero(y == tag)
        clusters = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(X[idx])
        held[idx[clusters == rng.integers(k)]] = True
    pred = logreg(C).fit(X[~held], y[~held]).predict(X[held])
    return {"seed": seed, "n_held": int(held.sum()), "top1": top1(y[held], pred), "balanced": balanced(y[held], pred)}


def new_session_estimate(X: np.ndarray, data: Dataset, C: float, seeds: int, k: int) -> dict:
    trva = data.mask("train", "val")
    runs = [cluster_holdout(X[trva], data.labels[trva], C, seed, k) for seed in range(seeds)]
    out = {"clusters_per_tag": k, "C": C, "runs": runs}
    for metric in ("top1", "balanced"):
        values = np.array([r[metric] for r in runs])
        out[metric] = {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
    return out


# ------------------------------------------------------------------------------------------ report
def table(rows: list[dict]) -> str:
    head = (f"{'backbone':<20} {'model id':<28} {'px':>4} {'dim':>5} {'test top-1':>10} {'test bal':>9} "
            f"{'k-means holdout top-1':>22} {'raw img/s':>10} {'pipe img/s':>10} {'pipe/raw':>8}")
    lines = [head, "-" * len(head)]
    for r in rows:
        ns = r["new_session"]["top1"]
        lines.append(
            f"{r['name']:<20} {r['model_id']:<28} {r['input_size']:>4} {r['dim']:>5} {r['test_top1']:>10.3f} "
            f"{r['test_balanced']:>9.3f} {ns['mean']:>14.3f} +- {ns['sd']:.3f} {r['raw_img_s']:>10.1f} "
            f"{r['pipeline_img_s']:>10.1f} {r['pipeline_img_s'] / r['raw_img_s']:>8.2f}"
        )
    return "\n".join(lines)


def embedding_arguments(parser: argparse.ArgumentParser, raw_batches: int = 4) -> None:
    """The options `get_embeddings` reads, for every benchmark that embeds grocery-produce through it."""
    parser.add_argument("--threads", type=int, default=2, help="runtime threads (onnxruntime, BLAS)")
    parser.add_argument("--decode-threads", type=int, default=2, help="embed_chunk's decode threads")
    parser.add_argument("--raw-batches", type=int, default=raw_batches, help="batches of 32 timed for the raw rate")
    parser.add_argument("--reembed", action="store_true", help="embed again even if the cache exists")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", default=",".join(BACKBONES), help="comma-separated backbone names")
    embedding_arguments(parser, raw_batches=6)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--clusters", type=int, default=6)
    parser.add_argument("--out", type=Path, default=OUT_JSON)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data = load_dataset()
    rows = []
    with threadpool_limits(args.threads):
        for name in args.backbones.split(","):
            info = get_embeddings(name, data, args)
            X = l2_normalise(info.pop("vectors"))
            started = time.perf_counter()
            info |= probe_accuracy(X, data)
            info["new_session"] = new_session_estimate(X, data, info["C"], args.seeds, args.clusters)
            info["head_seconds"] = round(time.perf_counter() - started, 1)
            ns = info["new_session"]["top1"]
            log.info("%s: test top-1 %.3f balanced %.3f (C=%s); k-means holdout %.3f +- %.3f (%.0fs of heads)",
                     name, info["test_top1"], info["test_balanced"], info["C"], ns["mean"], ns["sd"],
                     info["head_seconds"])
            rows.append(info)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"dataset": str(data.root), "manifest_key": data.key, "threads": args.threads,
                                    "decode_threads": args.decode_threads, "chunk": CHUNK, "c_grid": C_GRID,
                                    "backbones": rows}, indent=2))
    log.info("wrote %s", args.out)
    print(table(rows))


if __name__ == "__main__":
    main()
