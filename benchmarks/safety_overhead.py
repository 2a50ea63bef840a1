"""What the safety measures cost on a clean run of a 1,000-photo library (goal: at most 5 % of the run).

The measures of "nothing lost, nothing crashes": the up-front checks (`check_library`: library.yaml, catalog,
media folder), the run lock (looking for dead runs, taking and dropping the library's lock), the keyed appends
(`Warehouse.upsert` instead of a plain write), the per-file checks of inspection (the real kind sniffed from
the leading bytes, a regular file checked; the pixel limit is read from the header Pillow opens anyway) and
the shared DuckDB file rebuilt aside. Each is timed where it runs, inside one real run
(`tagsmith.service.run_library` with the in-process runner, so every call is in this process and its timer
sees it), and the sum is given as a share of the run's wall time. A timer measures the whole function, so a
share is an upper bound: the plain write an upsert replaces would cost part of it anyway.

    .venv/bin/python -m benchmarks.safety_overhead            # ~5 min on 2 cores
    .venv/bin/python -m benchmarks.safety_overhead --uploads-per-product 10   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def _timed(owner, name: str, label: str, totals: dict, counts: dict) -> None:
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[label] += time.perf_counter() - start
            counts[label] += 1

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads-per-product", type=int, default=42, help="42 x 24 products = 1,008 photos")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tagsmith-safety-"))
    os.environ.update(TAGSMITH_HOME=str(work / "home"), DAGSTER_HOME=str(work / "home" / "dagster_home"),
                      TAGSMITH_RUNNER="inprocess")
    import ml.inspect
    from resources.libraries import FinetuneSettings, LibraryConfig
    from resources.run_lock import RunLock
    from resources.warehouse import Warehouse
    from tagsmith import service
    from tagsmith.demo import generate_demo_library

    demo = generate_demo_library(work / "demo", seed=0, examples_per_product=4,
                                 uploads_per_product=args.uploads_per_product, image_size=224, videos=0)
    res = service.resources()
    config = LibraryConfig(name="bench", media=str(demo.uploads_dir), finetune=FinetuneSettings(budget_min=0))
    res["libraries"].create(config)
    res["libraries"].set_catalog("bench", demo.catalog_path)
    res["libraries"].add_examples("bench", demo.examples_manifest)

    totals: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    _timed(service, "check_library", "up-front checks", totals, counts)
    _timed(service, "fail_dead_runs", "run lock: dead runs", totals, counts)
    for name in ("acquire", "release", "is_held"):
        _timed(RunLock, name, "run lock: take, drop, ask", totals, counts)
    _timed(Warehouse, "upsert", "keyed appends (whole upsert)", totals, counts)
    _timed(Warehouse, "register_views", "shared DuckDB file rebuilt aside", totals, counts)
    _timed(ml.inspect, "sniff", "inspection: real kind sniffed", totals, counts)  # imported there by name
    _timed(ml.inspect, "_check_regular", "inspection: regular file checked", totals, counts)

    start = time.perf_counter()
    outcome = service.run_library("bench")
    wall = time.perf_counter() - start
    photos = len(list(demo.uploads_dir.glob("*.jpg")))
    safety = sum(totals.values())
    print(f"\nclean run of {photos} photos (+ {demo.n_examples} examples): {wall:.1f} s, ok={outcome.ok}")
    print(f"{'measure':<42} {'calls':>6} {'seconds':>9} {'share':>7}")
    for label in sorted(totals, key=totals.get, reverse=True):
        print(f"{label:<42} {counts[label]:>6} {totals[label]:>9.3f} {totals[label] / wall:>7.2%}")
    print(f"{'all safety measures':<42} {'':>6} {safety:>9.3f} {safety / wall:>7.2%}   (goal <= 5 %)")
    OUT.mkdir(exist_ok=True)
    (OUT / "safety_overhead.json").write_text(json.dumps(
        {"photos": photos, "wall_s": wall, "safety_s": safety, "share": safety / wall,
         "measures": {k: {"calls": counts[k], "seconds": totals[k]} for k in totals}}, indent=1))


if __name__ == "__main__":
    main()
