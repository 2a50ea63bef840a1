"""Peak memory against video length: a 1-hour and a 4-hour video must cost the same RSS.

Writes synthetic low-resolution H.264 videos (320x180, 5 fps, a new scene every 30 s, a keyframe every 10 s;
libx264 ultrafast), then, in a fresh process per (length, backend), runs everything the pipeline does to one
video, in the order the assets do it, all in that one process (the worst case: one worker doing every range):

1. `inspect_media`: the streamed sha256 and the probe (asset `media`);
2. `embed_video_range` over every 10-minute range, 1 fps plus scene changes (asset `video_frames`);
3. scoring every range file with a 24-tag head and building segments (asset `video_segments`).

Prints peak RSS (VmHWM) per stage and the 4 h / 1 h ratio (goal: ~1.0, memory flat with duration).
Figures, not a test: `python -m benchmarks.video_memory [--hours 1 4] [--backends decord pyav]`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.video import write_clip

OUT = Path(__file__).parent / "out" / "video-memory.json"
FPS = 5


def write_long_video(path: Path, hours: float) -> None:
    write_clip(path, hours * 3600, fps=FPS, size=(320, 180), scene_s=30.0, gop=10 * FPS, block=10, box=60, step=3)


def _rss_mb(field: str) -> float:
    """VmHWM (peak) or VmRSS (now) of this process, MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def child(video: str, backend: str, work: str) -> dict:
    """Everything the pipeline does to one video, in this process; peak RSS after each stage."""
    from ml.backbones import BackboneSpec, cached_backbone
    from ml.inspect import inspect_media
    from ml.segments import build_segments
    from ml.video_embedding import embed_video_range, time_ranges
    from resources.warehouse import Warehouse

    report: dict = {"backend": backend, "rss_mb": {"start": _rss_mb("VmHWM")}}
    spec = BackboneSpec()
    cached_backbone(spec)
    report["rss_mb"]["model_loaded"] = _rss_mb("VmHWM")

    t = time.perf_counter()
    (row,) = inspect_media([video])
    report["inspect_seconds"] = round(time.perf_counter() - t, 1)
    report["rss_mb"]["after_inspect"] = _rss_mb("VmHWM")
    duration = row["duration_s"]

    warehouse = Warehouse(root=work, duckdb_path=str(Path(work) / "w.duckdb"))
    t, frames, current = time.perf_counter(), 0, []
    for start, end in time_ranges(duration, 600.0):
        out = warehouse.video_range_path("bench", "m", row["media_id"], start)
        result = embed_video_range(spec, row["media_id"], video, start, end, str(out), prefer=backend)
        if result.error:
            raise RuntimeError(result.error)
        frames += len(result.frames)
        current.append(_rss_mb("VmRSS"))
    report["embed_seconds"] = round(time.perf_counter() - t, 1)
    report["frames"] = frames
    report["rss_mb"]["after_embedding"] = _rss_mb("VmHWM")
    report["rss_now_mb_per_range"] = {"first": current[0], "last": current[-1], "max": max(current)}

    rng = np.random.default_rng(0)
    weights = rng.normal(size=(1280, 24)).astype(np.float32)
    stamps, scores = [], []
    for ts, X in warehouse.iter_frame_embeddings("bench", "m", row["media_id"]):
        logits = X @ weights * 5
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        stamps.extend(ts)
        scores.append((p / p.sum(axis=1, keepdims=True)).astype(np.float32))
    segments = build_segments(stamps, np.concatenate(scores), [f"t{i}" for i in range(24)], {})
    report["segments"] = len(segments)
    report["rss_mb"]["after_segments"] = _rss_mb("VmHWM")
    report["peak_rss_mb"] = _rss_mb("VmHWM")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, nargs="+", default=[1.0, 4.0])
    parser.add_argument("--backends", nargs="+", default=["decord", "pyav"])
    parser.add_argument("--child", nargs=3, metavar=("VIDEO", "BACKEND", "WORKDIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    report: dict = {"runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for hours in args.hours:
            video = Path(tmp) / f"long-{hours:g}h.mp4"
            t = time.perf_counter()
            write_long_video(video, hours)
            size_mb = video.stat().st_size / 1e6
            print(f"wrote {video.name}: {size_mb:.0f} MB in {time.perf_counter() - t:.0f} s", flush=True)
            for backend in args.backends:
                work = Path(tmp) / f"work-{hours:g}-{backend}"
                work.mkdir()
                t = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, "-m", "benchmarks.video_memory", "--child", str(video), backend, str(work)],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if done.returncode != 0:
                    raise SystemExit(f"{hours} h / {backend} failed:\n{done.stderr[-3000:]}")
                run = {"hours": hours, "file_mb": round(size_mb, 1), **json.loads(done.stdout.splitlines()[-1])}
                run["wall_seconds"] = round(time.perf_counter() - t, 1)
                run["realtime_x"] = round(hours * 3600 / run["wall_seconds"], 1)
                report["runs"].append(run)
                print(
                    f"{hours:g} h {backend:6s}: peak RSS {run['peak_rss_mb']:7.1f} MB  {run['frames']} frames  "
                    f"{run['wall_seconds']} s ({run['realtime_x']}x real time)  stages {run['rss_mb']}",
                    flush=True,
                )
    for backend in args.backends:
        peaks = {r["hours"]: r["peak_rss_mb"] for r in report["runs"] if r["backend"] == backend}
        if len(peaks) >= 2:
            short, long = min(peaks), max(peaks)
            report[f"ratio_{backend}"] = round(peaks[long] / peaks[short], 3)
            print(f"{backend}: peak RSS {long:g} h / {short:g} h = {report[f'ratio_{backend}']}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
