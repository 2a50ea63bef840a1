"""How long "tag this photo now" takes (issue 16): `PhotoTagger.tag` warm, against the backbone's raw forward pass.

A generated demo library (tagsmith/demo.py: no videos, fine-tuning off so the run is short; OCR, keypoints and
views at the library defaults, so combined heads are what the holdout picks) is run once through `tagsmith run`'s
own path (tagsmith.service.run_library, the in-process runner unless `--runner ray`). Then, in this process:
`measure_inprocess` tags `--photos` of its uploads one at a time with a warm `PhotoTagger` (after `warmup` calls
that are not counted), and times the raw forward pass of the same backbones on the same photos (already decoded
and preprocessed, batch of one: what one photo costs the model alone). Printed and written to
benchmarks/out/tag_latency.json: p50 / p95 ms of both and their ratio, and what the heads in use read.

    python -m benchmarks.tag_latency                  # ~50 photos: ~6 min on 2 cores (the run is most of it)
    python -m benchmarks.tag_latency --home DIR       # a home this benchmark prepared before: no new run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out" / "tag_latency.json"
LIBRARY = "latency"


def _percentiles(seconds: Sequence[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1000.0
    return round(float(np.percentile(ms, 50)), 2), round(float(np.percentile(ms, 95)), 2)


def measure_inprocess(tagger, paths: Sequence[str | Path], warmup: int = 3) -> dict:
    """Warm latency of `tagger.tag` over `paths` (one call per photo, in order, after `warmup` uncounted calls),
    and of the raw forward pass of the tagger's backbones on the same photos (decoded and preprocessed outside the
    clock, batch of one, every backbone its heads read): p50 / p95 in ms and the ratio of the p50s."""
    from ml.embedding import model_input

    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no photos to measure")
    for path in paths[:warmup]:
        tagger.tag(path)
    tag_s, rows = [], 0
    for path in paths:
        started = time.perf_counter()
        rows += len(tagger.tag(path))
        tag_s.append(time.perf_counter() - started)
    loaded = tagger.current()
    inputs = {m: [model_input(b, p.read_bytes())[None] for p in paths] for m, b in loaded.backbones.items()}
    for model_id, backbone in loaded.backbones.items():
        backbone.forward(inputs[model_id][0])  # warm, like the tagger
    forward_s = []
    for i in range(len(paths)):
        started = time.perf_counter()
        for model_id, backbone in loaded.backbones.items():
            backbone.forward(inputs[model_id][i])
        forward_s.append(time.perf_counter() - started)
    tag_p50, tag_p95 = _percentiles(tag_s)
    forward_p50, forward_p95 = _percentiles(forward_s)
    return {
        "photos": len(paths),
        "rows_per_photo": round(rows / len(paths), 2),
        "tag_ms_p50": tag_p50,
        "tag_ms_p95": tag_p95,
        "forward_ms_p50": forward_p50,
        "forward_ms_p95": forward_p95,
        "ratio_p50": round(tag_p50 / forward_p50, 2),
        "backbones": sorted(loaded.backbones),
        "heads": {f: getattr(h, "strategy", "?") for f, (_, h) in sorted(loaded.heads.items())},
        "reads_text": loaded.ocr is not None,
        "matches_keypoints": loaded.keypoints is not None,
    }


def prepare(home: Path, uploads_per_product: int, seed: int) -> Path:
    """The demo library generated and run once under `home`; returns its uploads folder."""
    from resources.libraries import LibraryConfig
    from tagsmith import service
    from tagsmith.demo import generate_demo_library

    demo = generate_demo_library(home.parent / "demo", seed=seed, uploads_per_product=uploads_per_product,
                                 corrupt=False, videos=0)  # fmt: skip
    libraries = service.resources()["libraries"]
    libraries.create(LibraryConfig(name=LIBRARY, media=str(demo.uploads_dir), min_holdout_accuracy=0.2,
                                   finetune={"budget_min": 0}))  # fmt: skip
    libraries.set_catalog(LIBRARY, demo.catalog_path)
    libraries.add_examples(LIBRARY, demo.examples_manifest)
    started = time.perf_counter()
    outcome = service.run_library(LIBRARY)
    if not outcome.success:
        raise SystemExit(f"run failed: {outcome.failures + outcome.checks}")
    print(f"library run in {time.perf_counter() - started:.0f} s")
    return demo.uploads_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=50)
    parser.add_argument("--uploads-per-product", type=int, default=2, help="the demo's uploads (26 products)")
    parser.add_argument("--home", type=Path, help="reuse a home this benchmark prepared (kept after the run)")
    parser.add_argument("--runner", default="inprocess", help="the library run's task runner (ray: local Ray)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    keep = args.home is not None
    home = (args.home or Path(tempfile.mkdtemp(prefix="tagsmith-latency-")) / "home").resolve()
    os.environ["TAGSMITH_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster_home")
    os.environ["TAGSMITH_PROGRESS"] = "0"
    os.environ["TAGSMITH_RUNNER"] = args.runner
    from tagsmith import service
    from tagsmith.tag_now import PhotoTagger

    uploads = home.parent / "demo" / "uploads"
    libraries = service.resources()["libraries"]
    if LIBRARY not in libraries.names() or not service.has_run(LIBRARY, "tags"):
        uploads = prepare(home, args.uploads_per_product, args.seed)
    photos = sorted(uploads.glob("*.jpg"))[: args.photos]
    started = time.perf_counter()
    tagger = PhotoTagger(LIBRARY, service.resources())
    load_s = time.perf_counter() - started
    figures = {"load_s": round(load_s, 2), **measure_inprocess(tagger, photos), "cores": os.cpu_count()}
    finish(OUT, figures, None if keep else home.parent)


def finish(out: Path, figures: dict, scratch: Path | None) -> None:
    """Write and print the figures; remove the benchmark's scratch folder (None: a home the user keeps)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    print(json.dumps(figures, indent=2))
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
