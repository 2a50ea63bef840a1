"""Embedding throughput: the raw backbone forward pass against the pipeline's real embedding path.

Why: the pipeline's cost is dominated by embedding, and the question that matters is how much of the
machine's model throughput survives reading, decoding, preprocessing, task fan-out and writing. Both are
measured in one run on the same machine: (a) `backbone.forward` alone on preprocessed batches already in
memory (batch 32, after a warm-up, all cores) and (b) `ml.embedding.embed_chunk` over JPEG files on disk,
cut into chunks of `--chunk` items exactly as `assets_defs/embeddings/assets.py` does, through local Ray
(`RayRunner`) and in-process (`InProcessRunner`), under several thread/concurrency configurations.
The ratio pipeline/raw is the figure of merit (goal >= 0.90).

Each configuration runs twice: *cold* (first pass, includes worker start and model build, as a fresh
materialisation pays) and *warm* (steady state). Raw is measured before and after the sweep; a drift between
the two means something else was using the CPUs and the ratios are only indicative.

    python -m benchmarks.throughput                      # both runners, default sweep (~3 min on 2 cores)
    python -m benchmarks.throughput --runner ray --n 1024 --size 1280x960
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

import ml.embedding
from ml.backbones import DEFAULT_BACKBONE, Backbone, BackboneSpec, register_backbone
from ml.embedding import ChunkResult, EmbedItem, embed_chunk
from ml.media import LocalFiles, decode_image
from resources.ray_runner import InProcessRunner, RayRunner, TaskRunner

log = logging.getLogger("benchmarks.throughput")

OUT_DIR = Path(__file__).resolve().parent / "out"
PIPELINE_CHUNK = 256  # assets_defs/embeddings/assets.py CHUNK
RAW_BATCH = 32
PIPELINE_DRAFT = 224  # ml.embedding._load decodes JPEGs at the backbone's input size


@dataclass(frozen=True)
class Config:
    """One way to run the pipeline: runner, runtime threads per task, CPUs reserved per Ray task, decode
    threads inside a task, items per task."""

    name: str
    runner: str  # "ray" | "inprocess"
    threads: int = 0  # BackboneSpec.threads (0 = all cores)
    cpus_per_task: float = 1.0  # RayRunner.cpus_per_task
    decode_threads: int = 2  # embed_chunk(decode_threads=)
    chunk: int = PIPELINE_CHUNK
    spin: bool = True  # onnxruntime's intra-op threads busy-wait between ops (its default)
    draft: int | None = None  # JPEG draft size forced on decode_image; None = the pipeline's (2 x 224)


def default_configs(chunk: int, sweep: bool = False) -> list[Config]:
    """The pipeline as shipped first (what the embeddings asset does), then, with `sweep`, the alternatives
    that were measured to choose it (the old defaults among them: draft 448, threads=0, fixed 256 chunks)."""
    cores = os.cpu_count() or 1
    shipped = [
        Config("shipped: ray, 1 thread + 1 decoder per task, balanced, draft 224", "ray", threads=1,
               decode_threads=1, chunk=-1, draft=224),
        Config("shipped: inprocess, all threads, 2 decoders, draft 224", "inprocess", chunk=chunk, draft=224),
    ]
    if not sweep:
        return shipped
    return shipped + [
        Config("old inprocess default (draft 448)", "inprocess", chunk=chunk, draft=448),
        Config("inprocess, no spinning (draft 448)", "inprocess", chunk=chunk, spin=False, draft=448),
        Config("old ray default (1 cpu/task, threads=0, draft 448)", "ray", chunk=chunk, draft=448),
        Config("ray threads=1 decode=1 (draft 448)", "ray", threads=1, decode_threads=1, chunk=chunk, draft=448),
        Config("ray threads=1 decode=1 balanced (draft 448)", "ray", threads=1, decode_threads=1, chunk=-1,
               draft=448),
        Config("ray all cpus/task threads=0", "ray", cpus_per_task=cores, chunk=chunk),
        Config("ray all cpus/task threads=0, no spinning", "ray", cpus_per_task=cores, chunk=chunk, spin=False),
    ]


def balanced_chunk(n_items: int, slots: int, max_chunk: int = PIPELINE_CHUNK) -> int:
    """Largest chunk <= max_chunk that cuts n_items into a multiple of `slots` tasks of equal size.

    With a fixed 256, 768 items make 3 tasks on 2 slots: the third runs alone and half the machine idles
    for a third of the run.
    """
    rounds = max(1, -(-n_items // (slots * max_chunk)))
    return max(1, -(-n_items // (rounds * slots)))


# ------------------------------------------------------------------------------- no-spin backbone
# Benchmark-only backbone family: the default EfficientNet-Lite0 ONNX session with onnxruntime's
# busy-waiting turned off, to measure whether spinning threads steal the decode threads' cores.
NO_SPIN = "bench-efficientnet-lite0-nospin"


def _build_no_spin(spec: BackboneSpec, arg: str) -> Backbone:
    from ml.backbones.efficientnet import EfficientNetLite0Onnx, cpu_session

    backbone = EfficientNetLite0Onnx(Path(spec.cache_dir), spec.threads)
    backbone.session = cpu_session(backbone.onnx_path, spec.threads, spinning=False)
    return backbone


def bench_embed_chunk(draft: int | None, *args) -> ChunkResult:
    """`embed_chunk` after registering the benchmark-only family (Ray workers import this module fresh).

    `draft` set: a what-if - `ml.embedding`'s decoder is wrapped to use that JPEG draft size for this call,
    to measure a change the pipeline could make; restored afterwards, since Ray reuses worker processes.
    """
    register_backbone(NO_SPIN, _build_no_spin)
    if draft is None:
        return embed_chunk(*args)
    original = ml.embedding.decode_image
    ml.embedding.decode_image = lambda data, draft_size=None: original(data, draft_size=draft)
    try:
        return embed_chunk(*args)
    finally:
        ml.embedding.decode_image = original


# ------------------------------------------------------------------------------------------- photos
def make_photo(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A photo-like image: gradient background, random shapes, blur and sensor noise (JPEG-realistic size)."""
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0.0, 1.0, height)[:, None, None]
    canvas = (top * (1 - ramp) + bottom * ramp) * np.ones((1, width, 1))
    image = Image.fromarray(canvas.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(4, 12))):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        x1, y1 = x0 + rng.integers(20, width // 2), y0 + rng.integers(20, height // 2)
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = rng.integers(0, 3)
        if shape == 0:
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        elif shape == 1:
            draw.rectangle((x0, y0, x1, y1), fill=fill)
        else:
            draw.polygon([(int(x), int(y)) for x, y in rng.integers(0, (width, height), (5, 2))], fill=fill)
    image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 2.0))))
    noisy = np.asarray(image, dtype=np.int16) + rng.normal(0, 8, (height, width, 3)).astype(np.int16)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def write_photos(folder: Path, n: int, width: int, height: int, seed: int = 0) -> list[EmbedItem]:
    """n JPEG photos (quality 90) in folder, one RNG stream per photo; returned as pipeline items."""
    items = []
    for i in range(n):
        path = folder / f"photo_{i:05d}.jpg"
        make_photo(np.random.default_rng([seed, i]), width, height).save(path, "JPEG", quality=90)
        items.append(EmbedItem(media_id=f"m{i:05d}", uri=str(path)))
    return items


# --------------------------------------------------------------------------------------------- raw
def raw_forward_rate(backbone: Backbone, batch: np.ndarray, seconds: float, warmup: int = 3) -> float:
    """Images/s of `backbone.forward` alone on an in-memory preprocessed batch, after `warmup` batches."""
    for _ in range(warmup):
        backbone.forward(batch)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        backbone.forward(batch)
        done += len(batch)
    return done / (time.perf_counter() - start)


def decode_cost_ms(backbone: Backbone, items: list[EmbedItem], draft: int, sample: int = 64) -> float:
    """Milliseconds of one core per photo to read, decode (JPEG draft `draft`) and preprocess it."""
    sample_items = items[:sample]
    start = time.perf_counter()
    for item in sample_items:
        backbone.preprocess([decode_image(Path(item.uri).read_bytes(), draft_size=draft)])
    return 1000 * (time.perf_counter() - start) / len(sample_items)


def ceiling_rate(raw_rate: float, decode_ms: float, cores: int) -> float:
    """Best pipeline rate when decoding shares the model's cores: cores / (core-time forward + decode).

    On a machine with few cores the decode threads do not run "beside" the model, they take its cores, so
    pipeline/raw cannot exceed forward / (forward + decode) however the work is scheduled.
    """
    return cores / (cores / raw_rate + decode_ms / 1000)


# ------------------------------------------------------------------------------------------ pipeline
@dataclass
class PassResult:
    config: str
    runner: str
    pass_name: str  # cold | warm
    images: int
    wall_seconds: float
    images_per_second: float
    ratio_to_raw: float
    ratio_to_ceiling: float
    tasks: int
    task_seconds: dict[str, float]  # summed over tasks: read_decode (wait), infer, write, wall


def _runner_for(config: Config) -> TaskRunner:
    if config.runner == "ray":
        return RayRunner(cpus_per_task=config.cpus_per_task)
    return InProcessRunner()


def run_pipeline_pass(config: Config, items: list[EmbedItem], out_dir: Path, pass_name: str, cache_dir: str
                      ) -> PassResult:
    """One `runner.map(embed_chunk, calls)` over all items, chunked as the embeddings asset does."""
    cores = os.cpu_count() or 1
    slots = max(1, int(cores // config.cpus_per_task)) if config.runner == "ray" else 1
    chunk = config.chunk if config.chunk > 0 else balanced_chunk(len(items), slots)
    name = DEFAULT_BACKBONE if config.spin else NO_SPIN
    spec = BackboneSpec(name=name, cache_dir=cache_dir, device="cpu", threads=config.threads)
    calls = [
        (config.draft, spec, items[i : i + chunk], str(out_dir / f"{pass_name}-part-{i:06d}.parquet"), LocalFiles(),
         config.decode_threads)
        for i in range(0, len(items), chunk)
    ]
    runner = _runner_for(config)
    started = time.perf_counter()
    results: list[ChunkResult] = runner.map(bench_embed_chunk, calls)
    wall = time.perf_counter() - started
    embedded = sum(r.n_embedded for r in results)
    failures = [f for r in results for f in r.failures]
    if failures:
        raise RuntimeError(f"{len(failures)} benchmark photos failed to embed, e.g. {failures[0]}")
    seconds = {k: round(sum(r.seconds[k] for r in results), 2) for k in ("read_decode", "infer", "write")}
    seconds["wall"] = round(sum(r.wall_seconds for r in results), 2)
    rate = embedded / wall
    return PassResult(config.name, config.runner, pass_name, embedded, round(wall, 2), round(rate, 1),
                      0.0, 0.0, len(calls), seconds)


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=768, help="photos to embed per pass")
    parser.add_argument("--size", default="640x480", help="photo size WIDTHxHEIGHT")
    parser.add_argument("--runner", choices=("ray", "inprocess", "both"), default="both")
    parser.add_argument("--chunk", type=int, default=PIPELINE_CHUNK, help="items per task (pipeline: 256)")
    parser.add_argument("--sweep", action="store_true", help="also the alternative configurations (~3.5 min)")
    parser.add_argument("--raw-seconds", type=float, default=8.0, help="duration of each raw measurement")
    parser.add_argument("--out", type=Path, default=OUT_DIR / "throughput.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("ml").setLevel(logging.WARNING)  # one line per chunk would drown the figures

    width, height = parse_size(args.size)
    configs = [c for c in default_configs(args.chunk, args.sweep) if args.runner in ("both", c.runner)]
    cache_dir = BackboneSpec().cache_dir
    with tempfile.TemporaryDirectory(prefix="tagsmith-throughput-") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "photos").mkdir()
        started = time.perf_counter()
        items = write_photos(tmp_path / "photos", args.n, width, height)
        log.info("wrote %d photos of %dx%d in %.1fs", args.n, width, height, time.perf_counter() - started)

        # Raw: forward only, all cores, on preprocessed batches of real photos already in memory.
        backbone = BackboneSpec(cache_dir=cache_dir, device="cpu", threads=0).build()
        batch = backbone.preprocess([Image.open(i.uri) for i in items[:RAW_BATCH]])
        one_thread = BackboneSpec(cache_dir=cache_dir, device="cpu", threads=1).build()
        raw_before = raw_forward_rate(backbone, batch, args.raw_seconds)
        raw_one_thread = raw_forward_rate(one_thread, batch, args.raw_seconds)
        log.info("raw forward: %.1f img/s all cores, %.1f img/s one thread", raw_before, raw_one_thread)
        drafts = sorted({c.draft or PIPELINE_DRAFT for c in configs})
        decode_ms = {d: decode_cost_ms(backbone, items, d) for d in drafts}
        log.info("read+decode+preprocess, one core: %s ms/photo", {d: round(v, 2) for d, v in decode_ms.items()})

        passes: list[PassResult] = []
        if any(c.runner == "ray" for c in configs):
            RayRunner().connect()  # Ray's own start-up is not part of any pass
        for config in configs:
            out_dir = tmp_path / "parts" / config.name.replace(" ", "_").replace("/", "_")
            for pass_name in ("cold", "warm"):
                result = run_pipeline_pass(config, items, out_dir, pass_name, cache_dir)
                passes.append(result)
                log.info("%-45s %s %6.1f img/s", config.name, pass_name, result.images_per_second)
        raw_after = raw_forward_rate(backbone, batch, args.raw_seconds)
    raw = (raw_before + raw_after) / 2
    cores = os.cpu_count() or 1
    ceilings = {d: ceiling_rate(raw, ms, cores) for d, ms in decode_ms.items()}
    draft_of = {c.name: c.draft or PIPELINE_DRAFT for c in configs}
    for result in passes:  # ratios against the mean of the two raw measurements
        result.ratio_to_raw = round(result.images_per_second / raw, 3)
        result.ratio_to_ceiling = round(result.images_per_second / ceilings[draft_of[result.config]], 3)

    report = {
        "machine": {"cpus": os.cpu_count(), "loadavg_end": os.getloadavg()},
        "photos": {"n": args.n, "size": f"{width}x{height}", "chunk": args.chunk},
        "raw": {"batch": RAW_BATCH, "all_cores_before": round(raw_before, 1), "all_cores_after": round(raw_after, 1),
                "all_cores_mean": round(raw, 1), "one_thread": round(raw_one_thread, 1)},
        "decode_ms_per_photo": {str(d): round(v, 2) for d, v in decode_ms.items()},
        "ceiling_img_per_s": {str(d): round(v, 1) for d, v in ceilings.items()},
        "configs": [asdict(c) for c in configs],
        "passes": [asdict(p) for p in passes],
    }
    print_report(report, passes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwritten {args.out}")


def print_report(report: dict, passes: list[PassResult]) -> None:
    raw = report["raw"]
    print(f"\nraw forward (batch {raw['batch']}, all cores): {raw['all_cores_before']} img/s before, "
          f"{raw['all_cores_after']} after, mean {raw['all_cores_mean']}; one thread {raw['one_thread']} img/s")
    drift = abs(raw["all_cores_before"] - raw["all_cores_after"]) / raw["all_cores_mean"]
    if drift > 0.10:
        print(f"WARNING: raw drifted {drift:.0%} during the run - another process used the CPUs; ratios are rough")
    print(f"read+decode+preprocess per photo, one core (by JPEG draft size): {report['decode_ms_per_photo']} ms; "
          f"ceiling when decode shares the cores: {report['ceiling_img_per_s']} img/s")
    print(f"photos: {report['photos']}, load average at end {report['machine']['loadavg_end']}\n")
    header = f"{'configuration':52s} {'pass':5s} {'img/s':>7s} {'/raw':>5s} {'/ceil':>5s} {'tasks':>5s} " \
             f"{'decode-wait':>11s} {'infer':>7s} {'write':>6s} {'task-wall':>9s}"
    print(header)
    print("-" * len(header))
    for p in passes:
        s = p.task_seconds
        print(f"{p.config:52s} {p.pass_name:5s} {p.images_per_second:7.1f} {p.ratio_to_raw:5.2f} "
              f"{p.ratio_to_ceiling:5.2f} {p.tasks:5d} "
              f"{s['read_decode']:11.2f} {s['infer']:7.2f} {s['write']:6.2f} {s['wall']:9.2f}")
    warm = [p for p in passes if p.pass_name == "warm"]
    if warm:
        best = max(warm, key=lambda p: p.images_per_second)
        print(f"\nbest warm configuration: {best.config} - {best.images_per_second} img/s, ratio {best.ratio_to_raw}")


if __name__ == "__main__":
    main()
