"""The time to produce an event's sponsor report (the `sponsor_report` asset) from tables already written.

A synthetic event: `--photos` small JPEGs (640x480, ~13 KB) each with three sponsors' boxes (of five sponsors,
one photo in ten with a second box of one of them), one review-status box per photo that must not count, and
`--video-hours` of video as 15-minute videos whose segments (5-20 s every ~25 s per sponsor) are already in
`video_segments`. Timed: the whole materialisation through Dagster (`materialize` of `sponsor_report` for the
(library, event) partition: read tables, figures, every page with its thumbnails, a zip per sponsor, the three
tables, the DuckDB views), then the same stages one by one outside Dagster to show where the time goes. Prints
the figures as JSON and writes them to benchmarks/out/sponsor_report.json.

    python -m benchmarks.sponsor_report                    # 2,000 photos, 1 h of video: ~1.5 min on 2 cores
    python -m benchmarks.sponsor_report --photos 200       # a quick look
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from dagster import DagsterInstance, MultiPartitionKey, materialize
from PIL import Image, ImageDraw

from assets_defs.events.assets import sponsor_report
from ml.sponsor_report import export_photo_set, render_event_report, sponsor_figures
from resources.events import event_media, report_inputs, thumbnailer
from resources.libraries import LibraryConfig, LibraryStore
from resources.media_store import LocalMediaStore
from resources.tables import frame
from resources.warehouse import Warehouse

OUT = Path(__file__).resolve().parent / "out" / "sponsor_report.json"
SPONSORS = {f"brand-{i}": f"Brand {i}" for i in range(5)}
VIDEO_S = 900.0


def _photo(rng, boxes, size=(640, 480)) -> Image.Image:
    w, h = size
    image = Image.new("RGB", size, tuple(int(v) for v in rng.integers(40, 200, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(8):
        x, y = int(rng.integers(0, w - 60)), int(rng.integers(0, h - 60))
        draw.ellipse((x, y, x + 60, y + 60), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    for bx, by, bw, bh in boxes:
        draw.rectangle((bx * w, by * h, (bx + bw) * w, (by + bh) * h), fill=(200, 30, 40))
        draw.text((bx * w + 3, by * h + 3), "LOGO", fill=(255, 255, 255))
    return image


def build_event(root: Path, n_photos: int, video_hours: float, seed: int = 0) -> dict:
    """The library `bench` with event `final` (its media under media/final), its four tables written."""
    rng = np.random.default_rng(seed)
    media_dir = root / "media" / "final"
    media_dir.mkdir(parents=True)
    libraries = LibraryStore(root=str(root / "libraries"))
    warehouse = Warehouse(root=str(root / "warehouse"), duckdb_path=str(root / "t.duckdb"))
    libraries.create(LibraryConfig(name="bench", media=str(root / "media"), events={"final": {"folder": "final"}}))
    media, tags, segments = [], [], []
    started = time.perf_counter()
    tags_of = list(SPONSORS)
    for i in range(n_photos):
        chosen = rng.choice(len(tags_of), 3, replace=False)
        boxes = [tuple(float(v) for v in (*rng.uniform(0, 0.7, 2), *rng.uniform(0.05, 0.3, 2))) for _ in range(4)]
        path = media_dir / f"IMG_{i:05d}.jpg"
        _photo(rng, boxes).save(path, "JPEG", quality=85)
        mid = f"p{i:05d}"
        media.append({"media_id": mid, "uri": str(path.resolve()), "kind": "image", "status": "ok"})
        for k, t in enumerate(chosen):
            tags.append((mid, tags_of[t], float(rng.uniform(0.6, 0.99)), "applied", list(boxes[k])))
        if i % 10 == 0:
            tags.append((mid, tags_of[chosen[0]], 0.55, "applied", list(boxes[3])))  # a second box, same sponsor
        else:
            tags.append((mid, tags_of[chosen[0]], 0.3, "review", list(boxes[3])))
    photos_s = time.perf_counter() - started
    n_videos = max(1, round(video_hours * 3600 / VIDEO_S))
    for v in range(n_videos):
        vid = f"v{v:03d}"
        uri = str((media_dir / f"match-{v}.mp4").resolve())  # no bytes needed: the report reads only tables
        media.append({"media_id": vid, "uri": uri, "kind": "video", "status": "ok", "duration_s": VIDEO_S})
        for tag in SPONSORS:
            t = float(rng.uniform(0, 25))
            while t < VIDEO_S:
                length = float(rng.uniform(5, 20))
                segments.append((vid, tag, t, min(t + length, VIDEO_S + 5), float(rng.uniform(0.5, 0.99))))
                t += length + float(rng.uniform(5, 30))
    warehouse.write("bench", "media", frame("media", media))
    catalog = [{"tag_id": t, "facet": "sponsor", "name": n} for t, n in SPONSORS.items()]
    warehouse.write("bench", "catalog", frame("catalog", catalog))
    keys = ("media_id", "tag_id", "score", "status", "box")
    rows = [{**dict(zip(keys, t, strict=True)), "facet": "sponsor"} for t in tags]
    warehouse.write("bench", "tags", frame("tags", rows))
    keys = ("media_id", "tag_id", "start_s", "end_s", "peak_score")
    rows = [{**dict(zip(keys, s, strict=True)), "facet": "sponsor", "status": "applied"} for s in segments]
    warehouse.write("bench", "video_segments", frame("video_segments", rows))
    return {
        "resources": {"libraries": libraries, "media_store": LocalMediaStore(), "warehouse": warehouse},
        "tag_rows": len(tags),
        "segments": len(segments),
        "videos": n_videos,
        "photo_bytes_mb": round(sum(p.stat().st_size for p in media_dir.glob("*.jpg")) / 2**20, 1),
        "generate_photos_s": round(photos_s, 1),
    }


def stages(res: dict) -> dict:
    """The asset's stages one by one, outside Dagster (seconds each)."""
    warehouse, libraries, store = res["warehouse"], res["libraries"], res["media_store"]
    timings = {}
    t = time.perf_counter()
    config = libraries.config("bench")
    media, tags = warehouse.read("bench", "media"), warehouse.read("bench", "tags")
    segments, catalog = warehouse.read("bench", "video_segments"), warehouse.read("bench", "catalog")
    chosen = event_media(media, config.events["final"], store.location_uri(f"{config.media}/final"), tags)
    inputs = report_inputs(chosen, catalog, tags, segments, "sponsor")
    timings["read_and_choose_s"] = time.perf_counter() - t
    t = time.perf_counter()
    figures = sponsor_figures(inputs.photo_hits, inputs.segments, inputs.videos, inputs.sponsors)
    timings["figures_s"] = time.perf_counter() - t
    reader = store.reader()
    thumbnail = thumbnailer(reader.read, config.max_pixels)
    t = time.perf_counter()
    pages = render_event_report("final", figures, thumbnail)
    timings["render_pages_s"] = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        for row in figures["sponsors"]:
            export_photo_set(row["photo_set"], Path(out) / f"{row['tag_id']}.zip", reader.read)
        timings["zips_s"] = time.perf_counter() - t
    timings = {k: round(v, 2) for k, v in timings.items()}
    timings["thumbnails"] = sum(len(r["photo_set"]) for r in figures["sponsors"])
    timings["pages_mb"] = round(sum(len(h.encode()) for h in pages.values()) / 2**20, 1)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=2000)
    parser.add_argument("--video-hours", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        event = build_event(Path(tmp), args.photos, args.video_hours)
        res = event.pop("resources")
        with DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions("library", ["bench"])
            instance.add_dynamic_partitions("event", ["final"])
            key = MultiPartitionKey({"library": "bench", "event": "final"})
            started = time.perf_counter()
            result = materialize([sponsor_report], partition_key=key, resources=res, instance=instance)
            total = time.perf_counter() - started
        meta = {k: v.value for k, v in result.asset_materializations_for_node("sponsor_report")[0].metadata.items()}
        out_dir = res["warehouse"].reports_dir("bench") / "events" / "final"
        figures = {
            "photos": args.photos,
            "video_hours": args.video_hours,
            **event,
            "report_s": round(total, 2),
            "photos_per_s": round(args.photos / total, 1),
            "sponsor_photo_appearances": meta["sponsor_photo_appearances"],
            "sponsor_screen_time_s": meta["sponsor_screen_time_s"],
            "report_files_mb": round(sum(p.stat().st_size for p in out_dir.iterdir()) / 2**20, 1),
            "stages": stages(res),
        }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=2), "utf-8")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
