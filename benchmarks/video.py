"""Video throughput: seconds of video processed per second of wall time at 1 fps sampling.

Writes a synthetic 720p H.264 clip (moving shapes, a hard cut every 20 s; libx264 ultrafast, default GOP),
then measures on this machine: decode-only sampling with each backend (PyAV, decord), and sampling + embedding
(`embed_video_range`, the Ray task's body, one range in-process) with each backend, the default first.
Prints real-time factors (goal >= 30x on 2 cores), frames/s as a share of the raw model forward pass, and
peak RSS (which includes encoding the clip; benchmarks/video_memory.py measures memory against length).
Figures, not a test: `python -m benchmarks.video [--minutes 10]`.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.throughput import raw_forward_rate
from ml.backbones import BackboneSpec, cached_backbone
from ml.video import BACKENDS, DEFAULT_BACKEND, open_video, sample_frames, write_h264
from ml.video_embedding import embed_video_range

OUT = Path(__file__).parent / "out" / "video.json"


def write_clip(
    path: Path,
    seconds: float,
    fps: int = 30,
    size: tuple[int, int] = (1280, 720),
    scene_s: float = 20.0,
    gop: int | None = None,
    block: int = 8,
    box: int = 200,
    step: int = 7,
) -> None:
    """A synthetic H.264 clip: a new random scene of `block`-pixel cells every `scene_s` seconds and a `box`
    moving `step` pixels a frame; libx264 ultrafast. Also written by benchmarks/video_memory.py (long,
    low-resolution)."""
    rng = np.random.default_rng(0)
    w, h = size

    def frames():
        background = None
        for i in range(int(seconds * fps)):
            if i % int(scene_s * fps) == 0:
                cells = rng.integers(0, 255, (h // block, w // block, 3), dtype=np.uint8)
                background = cells.repeat(block, 0).repeat(block, 1)
            frame = background.copy()
            x = (i * step) % (w - box)
            frame[box : 2 * box, x : x + box] = (255, 200, 0)  # something moving
            yield frame

    write_h264(str(path), frames(), fps, gop=gop, options={"preset": "ultrafast"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--backbone", default="efficientnet-lite0",
                        help="e.g. efficientnet-lite0-views:224/avg/center+zoom+zoom60, the views candidate")
    args = parser.parse_args()
    report: dict = {"minutes": args.minutes, "backbone": args.backbone}
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        t = time.perf_counter()
        write_clip(clip, args.minutes * 60)
        report["encode_seconds"] = round(time.perf_counter() - t, 1)
        duration = args.minutes * 60
        for backend in ("pyav", "decord"):
            reader = open_video(str(clip), prefer=backend)
            t = time.perf_counter()
            n = sum(1 for _ in sample_frames(reader, every_s=1.0))
            wall = time.perf_counter() - t
            reader.close()
            report[f"decode_only_{backend}"] = {
                "frames": n,
                "seconds": round(wall, 1),
                "realtime_x": round(duration / wall, 1),
            }
        spec = BackboneSpec(name=args.backbone)
        spec.build()
        # the raw model forward pass on the same machine, for the ratio the other benchmarks report
        backbone = cached_backbone(spec)
        batch = backbone.preprocess([Image.new("RGB", (1280, 720), (90, 120, 150))] * backbone.batch_size)
        report["raw_forward_img_per_s"] = round(raw_forward_rate(backbone, batch, seconds=5.0), 1)
        for backend in (DEFAULT_BACKEND, *(b for b in BACKENDS if b != DEFAULT_BACKEND)):
            t = time.perf_counter()
            out = str(Path(tmp) / f"e-{backend}.parquet")
            result = embed_video_range(spec, "bench", str(clip), 0.0, duration, out, prefer=backend)
            wall = time.perf_counter() - t
            report[f"decode_and_embed_{backend}"] = {
                "frames": len(result.frames),
                "seconds": round(wall, 1),
                "realtime_x": round(duration / wall, 1),
                "frames_per_s": round(len(result.frames) / wall, 1),
                "of_raw_forward": round(len(result.frames) / wall / report["raw_forward_img_per_s"], 3),
                "stage_seconds": {k: round(v, 1) for k, v in result.seconds.items()},
                "default": backend == DEFAULT_BACKEND,
            }
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
