"""The demo event (tagsmith/demo_event.py) through region recognition (ml/regions.py): the issue's figures so far.

The sponsors' example photos (12 each, the logo at 10-40 % of the frame) build the logo index; the 60 event
photos (another shoot: logos at 1-5 % of the frame, rotated, warped, partly hidden, on clutter; 30 % without a
logo) are the new photos. A detection is right when its sponsor is a logo's and its box has IoU >= 0.5 with that
logo's truth box (each logo counted once). Printed: per sponsor the precision and recall of its photo set (a
photo is in a sponsor's set when a detection of that sponsor is kept), pooled precision and recall of the
detections, mean box IoU of the right ones, the share of no-logo photos given a sponsor, and seconds per photo.
Goal of the issue: precision >= 0.95 at recall >= 0.90; no-logo false positives <= 5 %.

    python -m benchmarks.event            # ~1 min on 2 cores
    python -m benchmarks.event --report   # also the sponsor report of the event's photos, with a screenshot

The report (`--report`) is `ml/sponsor_report.py` on the photos' detections, written to
benchmarks/out/event_report/ (index.html, a page per sponsor, index.png from headless Chromium).
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

from PIL import Image

from ml.catalog import NONE_TAG
from ml.regions import LogoIndex, RegionSpec, box_iou, detect
from ml.sponsor_figures import sponsor_figures, thumbnail_with_box
from ml.sponsor_report import render_event_report
from tagsmith.browser import screenshot
from tagsmith.demo_event import write_demo_event

OUT_DIR = Path(__file__).resolve().parent / "out"


def write_report(truth, examples: dict, photos: list[str], found: dict) -> None:
    folder = truth.root / "event" / "photos"
    hits = [
        {"media_id": f, "uri": str(folder / f), "tag_id": d.tag_id, "score": d.score, "box": d.box}
        for f in photos
        for d in found[f]
    ]
    names = {t: t.title() for t in examples}
    figures = sponsor_figures(hits, [], [], names)

    def thumbnail(uri: str, box) -> bytes:
        return thumbnail_with_box(Image.open(uri).convert("RGB"), box)

    out = OUT_DIR / "event_report"
    out.mkdir(parents=True, exist_ok=True)
    for name, html in render_event_report("Demo event", figures, thumbnail).items():
        (out / name).write_text(html, encoding="utf-8")
    print(f"report: {out / 'index.html'}; screenshot: {screenshot(out / 'index.html', out / 'index.png')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=float, default=None, help="detection threshold (default: RegionSpec's)")
    parser.add_argument("--report", action="store_true", help="write the sponsor report of the photos")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        truth = write_demo_event(Path(tmp), seed=args.seed)
        rows = list(csv.DictReader(truth.examples_manifest.open(encoding="utf-8")))
        examples: dict[str, list[Image.Image]] = {}
        for row in rows:
            if row["tag_id"] != NONE_TAG:
                image = Image.open(truth.examples_manifest.parent / row["path"]).convert("RGB")
                examples.setdefault(row["tag_id"], []).append(image)
        start = time.perf_counter()
        index = LogoIndex.build(examples, RegionSpec())
        build_s = time.perf_counter() - start
        photos = sorted(truth.photos)
        start = time.perf_counter()
        found = {f: detect(index, Image.open(truth.root / "event" / "photos" / f).convert("RGB"), args.threshold)
                 for f in photos}
        per_photo_s = (time.perf_counter() - start) / len(photos)
        if args.report:
            write_report(truth, examples, photos, found)

    right = made = 0
    ious: list[float] = []
    sets: dict[str, dict[str, int]] = {t: {"tp": 0, "fp": 0, "fn": 0} for t in examples}
    empty_hit = 0
    for f in photos:
        logos = [(b.tag_id, (b.x, b.y, b.w, b.h)) for b in truth.photos[f]]
        detections = found[f]
        made += len(detections)
        empty_hit += bool(detections) and not logos
        open_logos = list(logos)
        for d in detections:
            best = max(open_logos, key=lambda t: box_iou(d.box, t[1]) if t[0] == d.tag_id else -1.0, default=None)
            if best is not None and best[0] == d.tag_id and box_iou(d.box, best[1]) >= 0.5:
                right += 1
                ious.append(box_iou(d.box, best[1]))
                open_logos.remove(best)
        shown, said = {t for t, _ in logos}, {d.tag_id for d in detections}
        for tag in sets:
            sets[tag]["tp"] += tag in shown and tag in said
            sets[tag]["fp"] += tag in said and tag not in shown
            sets[tag]["fn"] += tag in shown and tag not in said
    n_logos = sum(len(v) for v in truth.photos.values())
    n_empty = sum(not v for v in truth.photos.values())
    per_sponsor = {
        t: {
            "precision": round(c["tp"] / (c["tp"] + c["fp"]), 3) if c["tp"] + c["fp"] else None,
            "recall": round(c["tp"] / (c["tp"] + c["fn"]), 3) if c["tp"] + c["fn"] else None,
            "photos": c["tp"] + c["fn"],
        }
        for t, c in sorted(sets.items())
    }
    report = {
        "photos": len(photos),
        "logos": n_logos,
        "no_logo_photos": n_empty,
        "detection_precision": round(right / made, 3) if made else None,
        "detection_recall": round(right / n_logos, 3),
        "mean_box_iou": round(sum(ious) / len(ious), 3) if ious else None,
        "no_logo_photos_given_a_sponsor": round(empty_hit / n_empty, 3) if n_empty else None,
        "seconds_per_photo": round(per_photo_s, 3),
        "index_build_s": round(build_s, 1),
        "per_sponsor_photo_sets": per_sponsor,
    }
    print(json.dumps(report, indent=2))
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / "event.json").write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
