"""What a `library_sensor` tick costs on a media folder of 100,000 files, with nothing new and with 10 new files,
against the full listing the sensor used to do every tick (`list_media` of every file, hashed: the old
fingerprint).

Two shapes of the same 100,000 files: 100 folders of 1,000 (dated upload folders) and one flat folder. The
files are empty and named `.jpg`: the listing goes by file name (`ml.media.media_kind`), and neither the old
fingerprint nor the incremental listing reads a byte. Timings are with the folders in the page cache (a sensor
ticking each minute keeps them there). Each figure is the median of `--repeat` ticks; before a timed tick the
benchmark waits out the listing's margin (2 s), as a sensor ticking each minute does.

    .venv/bin/python -m benchmarks.sensor_tick                 # ~2 min, 200,000 empty files under /tmp
    .venv/bin/python -m benchmarks.sensor_tick --files 20000 --repeat 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from dagster import DagsterInstance, build_sensor_context

from assets_defs.partitions import library_partitions
from pipelines.sensors import library_sensor
from resources.libraries import LibraryConfig, LibraryStore
from resources.media_changes import MARGIN_NS, local_changes
from resources.media_store import LocalMediaStore

OUT = Path(__file__).resolve().parent / "out"


def make_files(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        os.close(os.open(folder / name, os.O_CREAT | os.O_WRONLY, 0o644))


def build(root: Path, files: int, folders: int) -> Path:
    per = files // folders
    for k in range(folders):
        folder = root if folders == 1 else root / f"2026-{k // 28 + 1:02d}-{k % 28 + 1:02d}"
        make_files(folder, [f"IMG_{k:03d}_{i:05d}.jpg" for i in range(per)])
    return root


def old_fingerprint(store: LocalMediaStore, location: str) -> tuple[str, int]:
    """What library_sensor did per library each tick before: every media file listed, stat'ed and hashed."""
    digest = hashlib.sha256()
    objects = store.list_media(location)
    for obj in objects:
        digest.update(f"{obj.uri}|{obj.size}|{obj.modified};".encode())
    return digest.hexdigest(), len(objects)


def settle() -> None:
    time.sleep(MARGIN_NS / 1e9 + 0.1)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def measure(media: Path, repeat: int, newest: Path) -> dict:
    """Full listing, baseline, quiet ticks and ticks with 10 new files (in `newest`, the latest upload folder)."""
    store = LocalMediaStore()
    full = [timed(lambda: old_fingerprint(store, str(media))) for _ in range(repeat)]
    baseline_s, baseline = timed(lambda: local_changes(media, None))
    settle()
    cursor = baseline.cursor
    quiet = []
    for _ in range(repeat):
        seconds, changes = timed(lambda c=cursor: local_changes(media, c))
        quiet.append((seconds, changes))
        cursor = changes.cursor
    new = []
    for r in range(repeat):
        make_files(newest, [f"NEW_{r}_{i}.jpg" for i in range(10)])
        settle()
        seconds, changes = timed(lambda c=cursor: local_changes(media, c))
        assert len(changes.changed) == 10, changes.describe()  # the benchmark's own sanity, not a test
        new.append((seconds, changes))
        cursor = changes.cursor

    def row(runs):
        last = runs[-1][1]
        return {
            "s_per_tick": statistics.median(s for s, _ in runs),
            "folders_scanned": last.folders_scanned,
            "entries_scanned": last.entries_scanned,
            "stats": last.stats,
        }

    return {
        "full_listing": {"s_per_tick": statistics.median(s for s, _ in full), "files_listed": full[-1][1][1]},
        "baseline": {"s": baseline_s, "entries_scanned": baseline.entries_scanned, "stats": baseline.stats},
        "nothing_new": row(quiet),
        "10_new": row(new),
        "cursor_bytes": len(json.dumps(cursor)),
    }


def sensor_ticks(media: Path, home: Path, repeat: int, newest: Path) -> dict:
    """The whole `library_sensor` tick (Dagster's evaluation, the library's input files, the listing)."""
    libraries = LibraryStore(root=str(home / "libs"))
    libraries.create(LibraryConfig(name="bench", media=str(media)))
    resources = {"libraries": libraries, "media_store": LocalMediaStore()}
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(library_partitions.name, ["bench"])

        def tick(cursor):
            return library_sensor(build_sensor_context(instance=instance, resources=resources, cursor=cursor))

        cursor = tick(None).cursor
        settle()
        quiet, new = [], []
        for _ in range(repeat):
            seconds, result = timed(lambda c=cursor: tick(c))
            quiet.append(seconds)
            cursor = result.cursor
        for r in range(repeat):
            make_files(newest, [f"SENSOR_{r}_{i}.jpg" for i in range(10)])
            settle()
            seconds, result = timed(lambda c=cursor: tick(c))
            new.append(seconds)
            cursor = result.cursor
        return {"nothing_new_s": statistics.median(quiet), "10_new_s": statistics.median(new)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--folders", type=int, default=100, help="folders of the nested shape (the flat one: 1)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="sensor-tick-") as tmp:
        for shape, folders in (("nested", args.folders), ("flat", 1)):
            media = build(Path(tmp) / shape / "media", args.files, folders)
            newest = max(p for p in media.iterdir() if p.is_dir()) if folders > 1 else media
            settle()  # the files just written are older than the margin, as a library's are
            results[shape] = measure(media, args.repeat, newest)
            results[shape]["sensor"] = sensor_ticks(media, Path(tmp) / shape, args.repeat, newest)
    print(f"sensor tick on {args.files:,} files (median of {args.repeat}; page cache warm)")
    print(f"{'shape':<8} {'what':<24} {'ms/tick':>10} {'folders':>8} {'entries':>9} {'stats':>8}")
    for shape, r in results.items():
        print(
            f"{shape:<8} {'full listing (old)':<24} {r['full_listing']['s_per_tick'] * 1e3:>10.3f} {'':>8} "
            f"{r['full_listing']['files_listed']:>9,} {r['full_listing']['files_listed']:>8,}"
        )
        print(
            f"{'':<8} {'baseline (first tick)':<24} {r['baseline']['s'] * 1e3:>10.3f} {'':>8} "
            f"{r['baseline']['entries_scanned']:>9,} {r['baseline']['stats']:>8,}"
        )
        for what in ("nothing_new", "10_new"):
            x = r[what]
            print(
                f"{'':<8} {what.replace('_', ' '):<24} {x['s_per_tick'] * 1e3:>10.3f} {x['folders_scanned']:>8,} "
                f"{x['entries_scanned']:>9,} {x['stats']:>8,}"
            )
        s = r["sensor"]
        print(f"{'':<8} {'library_sensor: quiet':<24} {s['nothing_new_s'] * 1e3:>10.3f}")
        print(f"{'':<8} {'library_sensor: 10 new':<24} {s['10_new_s'] * 1e3:>10.3f}")
        print(f"{'':<8} cursor: {r['cursor_bytes']:,} bytes")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "sensor_tick.json").write_text(json.dumps({"files": args.files, **results}, indent=2))


if __name__ == "__main__":
    main()
