"""What a run costs when little or nothing changed: a library fully tagged, then 1 % new photos, then nothing new.

A generated demo library (`--uploads` photos, no videos, fine-tuning off so the first run is no longer than it
must be: that makes the ratio harder, not easier) is run through `tagsmith run`'s own path
(tagsmith.service.run_library: the Dagster job `tag_library` on a Dagster home of its own, local Ray unless
`--runner inprocess`). Then 1 % more photos are dropped into the media folder and the library runs again, then
once more with nothing new. Printed: each run's wall time, the ratio of the second to the first (goal <= 0.03),
the third run's seconds beyond Dagster's own start-up (the job's definitions loaded and an empty run: what any
run pays), and each run's slowest steps from Dagster's step stats. Written to benchmarks/out/incremental.json.

    python -m benchmarks.incremental                      # 1,000 photos: ~16 min on 2 cores (OCR is most of it)
    python -m benchmarks.incremental --uploads 200        # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out" / "incremental.json"


def step_times(name: str) -> tuple[str, list[tuple[str, float]]]:
    """The latest run of library `name`: its id and (step, seconds) slowest first, from Dagster's step stats."""
    from dagster import DagsterInstance, RunsFilter

    with DagsterInstance.get() as instance:
        run = instance.get_runs(RunsFilter(tags={"dagster/partition": name}), limit=1)[0]
        stats = instance.get_run_step_stats(run.run_id)
    steps = [(s.step_key, (s.end_time or 0) - (s.start_time or 0)) for s in stats]
    return run.run_id, sorted(steps, key=lambda s: -s[1])


def timed_run(name: str) -> dict:
    from tagsmith import service

    started = time.perf_counter()
    outcome = service.run_library(name)
    wall = time.perf_counter() - started
    if not outcome.success:
        raise SystemExit(f"run failed: {outcome.failures + outcome.checks}")
    run_id, steps = step_times(name)
    return {"wall_s": round(wall, 2), "run_id": run_id, "steps_s": {k: round(v, 2) for k, v in steps}}


def startup_s() -> float:
    """Dagster's own start-up for a run: the definitions built and an empty job executed in process."""
    from dagster import DagsterInstance, job, op

    from pipelines.definitions import build_definitions

    @op
    def nothing() -> None:
        return None

    @job
    def empty():
        nothing()

    started = time.perf_counter()
    build_definitions()
    with DagsterInstance.get() as instance:
        empty.execute_in_process(instance=instance)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uploads", type=int, default=1000, help="photos in the library before the new ones")
    parser.add_argument("--new-percent", type=float, default=1.0)
    parser.add_argument("--runner", default="", help="inprocess: no Ray (default: local Ray, as `tagsmith run`)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="tagsmith-incremental-"))
    os.environ["TAGSMITH_HOME"] = str(base / "home")
    os.environ["DAGSTER_HOME"] = str(base / "home" / "dagster_home")
    os.environ["TAGSMITH_PROGRESS"] = "0"
    if args.runner:
        os.environ["TAGSMITH_RUNNER"] = args.runner
    from resources.libraries import LibraryConfig
    from tagsmith import service
    from tagsmith.demo import generate_demo_library
    from tagsmith.demo_products import PRODUCTS

    per_product = max(1, round(args.uploads * (1 + args.new_percent / 100) / len(PRODUCTS)))
    started = time.perf_counter()
    demo = generate_demo_library(base / "demo", seed=args.seed, examples_per_product=6, uploads_per_product=per_product,
                                 image_size=256, corrupt=False, videos=0)  # fmt: skip
    photos = sorted(demo.uploads_dir.glob("*.jpg"))
    n_new = max(1, round(len(photos) * args.new_percent / (100 + args.new_percent)))
    media, held = base / "media", base / "held"
    media.mkdir()
    held.mkdir()
    for i, path in enumerate(photos):  # every k-th photo waits for the second run: the new ones are like the rest
        target = held if i % max(1, len(photos) // n_new) == 0 and len(list(held.iterdir())) < n_new else media
        shutil.copy(path, target / path.name)
    generated = time.perf_counter() - started

    res = service.resources()
    libraries = res["libraries"]
    libraries.create(LibraryConfig(name="bench", media=str(media), min_holdout_accuracy=0.2,
                                   finetune={"budget_min": 0}))  # fmt: skip
    libraries.set_catalog("bench", demo.catalog_path)
    libraries.add_examples("bench", demo.examples_manifest)
    first_n = len(list(media.iterdir()))
    first = timed_run("bench")
    for path in held.iterdir():
        shutil.move(str(path), media / path.name)
    second = timed_run("bench")
    third = timed_run("bench")
    start = startup_s()
    figures = {
        "photos_first_run": first_n,
        "new_photos": n_new,
        "runner": args.runner or "ray (local)",
        "generate_s": round(generated, 1),
        "first_s": first["wall_s"],
        "second_s": second["wall_s"],
        "nothing_new_s": third["wall_s"],
        "ratio_second_to_first": round(second["wall_s"] / first["wall_s"], 4),
        "dagster_startup_s": round(start, 2),
        "nothing_new_beyond_startup_s": round(third["wall_s"] - start, 2),
        "slowest_steps": {
            run: dict(list(r["steps_s"].items())[:6]) for run, r in (("first", first), ("second", second),
                                                                     ("nothing_new", third))
        },  # fmt: skip
        "cores": os.cpu_count(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    print(json.dumps(figures, indent=2))
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
