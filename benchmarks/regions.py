"""Small logos in busy photos (ml/regions.py): seconds per photo for `detect`, ORB vs RootSIFT, and how well.

A generated set (tagsmith/logo_scenes.py, seed 0): 6 tags x 12 examples (the logo at 10-40 % of a 480x360
frame on clutter), and 40 photos of 640x480, 25 % without a logo, the others with 1-3 logos at 1.5-4 % of the
frame, turned up to 30 degrees, tilted up to 30 %, a quarter of them a third hidden; one photo in five also shows
the look-alike (ACME's shape and colours, another word), which no tag owns. A detection is right when its tag is
a logo's and its box overlaps that logo's box with IoU >= 0.5 (each logo counted once); precision, recall and
mean IoU of the right ones (recall also apart for hidden and clear logos), at the default threshold and beside it.

    python -m benchmarks.regions            # ~3 min on 2 shared cores
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from ml.regions import Detection, LogoIndex, RegionSpec, box_iou, detect
from tagsmith.logo_scenes import LOGOS, LOOKALIKE, Placement, clutter, example_photo, scene

OUT_DIR = Path(__file__).resolve().parent / "out"
THRESHOLDS = (0.3, 0.4, 0.5, 0.6)


def dataset(n_photos: int, per_tag: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    examples = {logo.tag_id: [example_photo(logo, rng) for _ in range(per_tag)] for logo in LOGOS}
    photos = []
    for i in range(n_photos):
        if i < n_photos // 4:
            photos.append((clutter((640, 480), rng), []))
            continue
        logos = [LOGOS[k] for k in rng.choice(len(LOGOS), int(rng.integers(1, 4)), replace=False)]
        placements = [
            Placement(
                logo,
                float(rng.uniform(0.015, 0.04)),
                float(rng.uniform(-30, 30)),
                float(rng.uniform(0, 0.3)),
                0.33 if rng.random() < 0.25 else 0.0,
            )
            for logo in logos
        ]
        if rng.random() < 0.2 and LOGOS[0] not in logos:
            placements.append(Placement(LOOKALIKE, float(rng.uniform(0.015, 0.04)), float(rng.uniform(-30, 30)), 0.1))
        image, truths = scene(placements, rng)
        hidden = [p.occluded > 0 for p in placements]  # (tag_id, box, hidden) per logo a tag owns
        photos.append((image, [(*t, h) for t, h in zip(truths, hidden, strict=True) if t[0] != LOOKALIKE.tag_id]))
    return examples, photos


def evaluate(found: list[list[Detection]], truths: list[list[tuple]], threshold: float) -> dict:
    right, made, ious, empty_hits, hidden_found = 0, 0, [], 0, 0
    for detections, truth in zip(found, truths, strict=True):
        kept = [d for d in detections if d.score >= threshold]
        made += len(kept)
        empty_hits += len(kept) if not truth else 0
        open_truths = list(truth)
        for d in kept:  # strongest first
            best = max(open_truths, key=lambda t: box_iou(d.box, t[1]) if t[0] == d.tag_id else -1, default=None)
            if best is not None and best[0] == d.tag_id and box_iou(d.box, best[1]) >= 0.5:
                right += 1
                ious.append(box_iou(d.box, best[1]))
                hidden_found += best[2]
                open_truths.remove(best)
    n_truth = sum(len(t) for t in truths)
    n_hidden = sum(t[2] for truth in truths for t in truth)
    return {
        "threshold": threshold,
        "precision": round(right / made, 3) if made else 1.0,
        "recall": round(right / n_truth, 3),
        "recall_hidden": round(hidden_found / n_hidden, 3) if n_hidden else 1.0,
        "recall_clear": round((right - hidden_found) / (n_truth - n_hidden), 3),
        "mean_iou": round(float(np.mean(ious)), 3) if ious else 0.0,
        "detections": made,
        "false_on_empty_photos": empty_hits,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--examples", type=int, default=12, help="examples per tag")
    parser.add_argument("--kinds", nargs="+", default=["orb", "rootsift"])
    args = parser.parse_args()

    examples, photos = dataset(args.photos, args.examples)
    truths = [t for _, t in photos]
    report: dict = {"photos": len(photos), "logos": sum(len(t) for t in truths), "tags": len(examples)}
    for kind in args.kinds:
        spec = RegionSpec(kind=kind)
        t = time.perf_counter()
        index = LogoIndex.build(examples, spec)
        build_s = time.perf_counter() - t
        found, seconds = [], []
        for image, _ in photos:
            t = time.perf_counter()
            found.append(detect(index, image, threshold=0.0))
            seconds.append(time.perf_counter() - t)
        report[kind] = {
            "build_s": round(build_s, 2),
            "reference_keypoints": len(index.desc),
            "examples_with_region": sum(r.region is not None for r in index.references),
            "s_per_photo": round(float(np.mean(seconds)), 3),
            "at": [evaluate(found, truths, th) for th in THRESHOLDS],
        }
    report["load_avg_1_5_15"] = [round(v, 2) for v in os.getloadavg()]
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "regions.json").write_text(json.dumps(report, indent=2))

    print(f"{report['photos']} photos, {report['logos']} logos, {report['tags']} tags x {args.examples} examples")
    per_kind = (("s/photo", "s_per_photo"), ("build s", "build_s"), ("ref kp", "reference_keypoints"))
    per_row = (
        ("thr", "threshold"),
        ("prec", "precision"),
        ("recall", "recall"),
        ("hidden", "recall_hidden"),
        ("clear", "recall_clear"),
        ("IoU", "mean_iou"),
        ("dets", "detections"),
        ("FP empty", "false_on_empty_photos"),
    )
    print(f"{'kind':<9}" + "".join(f"{title:>9}" for title, _ in per_kind + per_row))
    for kind in args.kinds:
        r = report[kind]
        for row in r["at"]:
            print(
                f"{kind:<9}" + "".join(f"{r[k]:>9}" for _, k in per_kind) + "".join(f"{row[k]:>9}" for _, k in per_row)
            )
    print(f"load average (1, 5, 15 min): {report['load_avg_1_5_15']}; written {OUT_DIR / 'regions.json'}")


if __name__ == "__main__":
    main()
