"""Accuracy per strategy on the demo's hard category: look-alike products told apart only by printed text.

The demo library (generated, seed 0) has 24 products; 8 of them come in pairs identical but for the model
number printed on them (Hydra 500/750, Nova Tea 20/40, Stride R5/R7, Volt X200/X300). Protocol as the
pipeline: the examples with the pipeline's train/holdout split train the heads (the holdout chooses the
strategy and calibrates the thresholds), the new uploads with their known truth are the test set. Printed
text is read with the pipeline's OCR settings. OCR cost is reported per 320 px photo, per blank photo, and
per 640x360 frame of one 30 s demo video at 1 fps, with and without text. Then the same strategies on the
backbone fine-tuned on the train split (`--finetune-min`, 0 to skip), and the backbone the pipeline keeps.
Last, the catalog's identifiers withheld (`product_no_identifiers`), so only the text learnt from the examples'
print (ml/text_model.py; the tag names as weak identifiers, or not even those) can split the look-alikes, with
the training time the text channel adds to a plain head.

    python -m benchmarks.hard            # ~2.5 min on 2 cores (demo, embedding, OCR, heads, fine-tuning)
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from ml.backbone_choice import choose
from ml.backbones import BackboneSpec, cached_backbone
from ml.finetune import FinetuneConfig, finetune
from ml.heads import holdout_split, train_facet_head
from ml.keypoints import extract
from ml.ocr import OcrSpec, cached_engine
from ml.text_model import fit_text_model, text_channel
from ml.video import open_video, sample_frames
from tagsmith.demo import PRODUCTS, generate_demo_library

OUT = Path(__file__).parent / "out" / "hard.json"
STRATEGIES = ("logreg", "lightgbm", "prototype")


def read_rows(path: Path, facet: str = "product") -> list[tuple[str, str]]:
    with path.open(encoding="utf-8") as f:
        return [(r["path"], r["tag_id"]) for r in csv.DictReader(f) if r.get("facet", facet) == facet]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--finetune-min", type=float, default=2.0, help="fine-tuning budget (0: frozen only)")
    args = parser.parse_args()
    report: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        demo = generate_demo_library(Path(tmp) / "demo", seed=args.seed, videos=1, video_seconds=30.0)
        examples = [(str((demo.root / p).resolve()), t) for p, t in read_rows(demo.examples_manifest)]
        uploads = [(str(demo.uploads_dir / p), t) for p, t in read_rows(demo.truth_path)]
        catalog = yaml.safe_load(demo.catalog_path.read_text(encoding="utf-8"))["tags"]
        identifiers = {t["tag_id"]: t["identifiers"] for t in catalog if t["facet"] == "product"}
        names = {t["tag_id"]: [t["name"], *t.get("aliases", [])] for t in catalog if t["facet"] == "product"}
        hard = {p.tag_id for p in PRODUCTS if p.lookalike}

        backbone = cached_backbone(BackboneSpec())
        engine = cached_engine(OcrSpec(threads=2))

        def featurise(items: list[tuple[str, str]]):
            images = [Image.open(path).convert("RGB") for path, _ in items]
            X = backbone.embed(images)
            boxes, ms = [], []
            for image in images:
                t = time.perf_counter()
                found = engine.read(image)
                ms.append((time.perf_counter() - t) * 1000)
                boxes.append([(b.text, b.confidence) for b in found])
            return X, np.array([t for _, t in items]), boxes, np.array(ms)

        X_ex, y_ex, ocr_ex, ms_ex = featurise(examples)
        X_up, y_up, ocr_up, ms_up = featurise(uploads)
        ms = np.concatenate([ms_ex, ms_up])
        with_text = np.array([bool(b) for b in ocr_ex + ocr_up])
        blank = Image.new("RGB", (320, 320), (238, 238, 236))
        t = time.perf_counter()
        for _ in range(10):
            engine.read(blank)
        blank_ms = (time.perf_counter() - t) / 10 * 1000
        frame_ms, frame_text = [], []
        reader = open_video(str(demo.uploads_dir / "CLIP_0001.mp4"))
        for frame in sample_frames(reader, every_s=1.0):  # 640x360 frames at 1 fps, as the pipeline samples
            t1 = time.perf_counter()
            frame_text.append(bool(engine.read(frame.image)))
            frame_ms.append((time.perf_counter() - t1) * 1000)
        reader.close()
        frame_ms, frame_text = np.array(frame_ms), np.array(frame_text)
        report["ocr_ms_per_frame"] = {
            "frames": len(frame_ms),
            "with_text_median": round(float(np.median(frame_ms[frame_text])), 1) if frame_text.any() else None,
            "without_text_median": round(float(np.median(frame_ms[~frame_text])), 1) if (~frame_text).any() else None,
        }
        report["ocr_ms"] = {
            "per_photo_median": round(float(np.median(ms)), 1),
            "per_photo_p90": round(float(np.percentile(ms, 90)), 1),
            "photos_with_text": round(float(with_text.mean()), 3),
            "blank_photo": round(blank_ms, 1),
        }

        is_train = holdout_split(y_ex, holdout_frac=0.25, seed=0) == "train"
        ocr_split = {
            "ocr_train": [b for b, k in zip(ocr_ex, is_train, strict=True) if k],
            "ocr_hold": [b for b, k in zip(ocr_ex, is_train, strict=True) if not k],
            "identifiers": identifiers,
            "tag_names": names,
        }
        kp_ex = [extract(Image.open(path)) for path, _ in examples]
        kp_up = [extract(Image.open(path)) for path, _ in uploads]
        ex_ids = [path for path, _ in examples]
        kp_split = {
            "keypoints_train": [f for f, k in zip(kp_ex, is_train, strict=True) if k],
            "keypoints_hold": [f for f, k in zip(kp_ex, is_train, strict=True) if not k],
            "ids_train": [m for m, k in zip(ex_ids, is_train, strict=True) if k],
            "ids_hold": [m for m, k in zip(ex_ids, is_train, strict=True) if not k],
        }
        is_hard = np.isin(y_up, sorted(hard))

        combined = ("logreg+ocr", "logreg+text", "logreg+keypoints", "logreg+keypoints+ocr", "chosen")

        def evaluate(X_ex: np.ndarray, X_up: np.ndarray, text: dict = ocr_split, runs=combined) -> tuple[dict, object]:
            split = (X_ex[is_train], y_ex[is_train], X_ex[~is_train], y_ex[~is_train])
            rows, chosen = {}, None
            for run in (*STRATEGIES, *runs):
                name, _, variant = run.partition(" ")  # "logreg+text unnamed": that head without the tag names
                used = name.split("+")[1:] if name != "chosen" else ["ocr", "keypoints"]  # chosen: all evidence
                kwargs = {**(text if {"ocr", "text"} & set(used) else {}), **(kp_split if "keypoints" in used else {})}
                if variant == "unnamed":
                    kwargs["tag_names"] = None
                force = None if name == "chosen" else name
                strategies = STRATEGIES if name == "chosen" else (name.split("+")[0],)
                started = time.perf_counter()
                head = train_facet_head("product", *split, strategies=strategies, force=force, **kwargs)
                train_s = time.perf_counter() - started
                predicted = np.array([t for t, _, _ in head.predict(X_up, boxes=ocr_up, features=kp_up)])
                rows[run] = {
                    "strategy": head.strategy,
                    "holdout_accuracy": round(head.metrics["accuracy"], 4),
                    "uploads_top1": round(float(np.mean(predicted == y_up)), 4),
                    "hard_top1": round(float(np.mean(predicted[is_hard] == y_up[is_hard])), 4),
                    "other_top1": round(float(np.mean(predicted[~is_hard] == y_up[~is_hard])), 4),
                    "train_s": round(train_s, 2),
                }
                if name == "chosen":
                    chosen = head  # the head the pipeline would keep on this backbone
            return rows, chosen

        rows, base_head = evaluate(X_ex, X_up)
        report["product"] = rows
        # the catalog lists no identifiers: only the text learnt from the examples' print can read the model number
        unlisted, _ = evaluate(
            X_ex, X_up, {**ocr_split, "identifiers": {}}, ("logreg+text", "logreg+text unnamed", "chosen")
        )
        report["product_no_identifiers"] = unlisted
        classes = sorted(set(y_ex))  # the text channel's own cost: out-of-fold on train, holdout, final refit
        codes = np.array([classes.index(c) for c in y_ex])
        started = time.perf_counter()
        text_channel(ocr_split["ocr_train"], codes[is_train], ocr_split["ocr_hold"], classes, names)
        fit_text_model(ocr_ex, codes, classes, names)
        report["text_channel_own_s"] = round(time.perf_counter() - started, 2)
        report["text_channel_added_train_s"] = round(
            unlisted["logreg+text"]["train_s"] - unlisted["logreg"]["train_s"], 2
        )
        if args.finetune_min > 0:  # the backbone fine-tuned on the train split, as the pipeline's candidate
            images = [Image.open(path).convert("RGB") for (path, _), k in zip(examples, is_train, strict=True) if k]
            t = time.perf_counter()
            result = finetune(
                images, list(y_ex[is_train]), Path(tmp) / "ft", FinetuneConfig(budget_s=args.finetune_min * 60)
            )
            tuned = cached_backbone(BackboneSpec(name=f"efficientnet-lite0-ft:{result.weights_path}"))
            X_ex_ft = tuned.embed([Image.open(path).convert("RGB") for path, _ in examples])
            X_up_ft = tuned.embed([Image.open(path).convert("RGB") for path, _ in uploads])
            tuned_rows, tuned_head = evaluate(X_ex_ft, X_up_ft)
            report["product_finetuned"] = tuned_rows
            report["finetune"] = {
                "epochs_done": result.epochs_done,
                "seconds": result.seconds,
                "images_per_s": result.images_per_s,
                "wall_s_with_embedding": round(time.perf_counter() - t, 1),
            }
            role = choose({"base": probe_of(base_head), "finetuned": probe_of(tuned_head)})
            report["pipeline_choice"] = {"backbone": role, **(rows if role == "base" else tuned_rows)["chosen"]}
        report["product"] = rows
        report["n"] = {"examples": len(y_ex), "uploads": len(y_up), "hard_uploads": int(is_hard.sum())}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2))
    print(f"demo, facet product: {report['n']}")
    print(f"{'strategy':<22} {'chosen as':<22} {'holdout':>8} {'uploads':>8} {'hard':>8} {'others':>8} {'train s':>8}")
    for name, r in rows.items():
        print(_line(name, r))
    added, own = report["text_channel_added_train_s"], report["text_channel_own_s"]
    print(f"catalog identifiers withheld (text channel adds {added} s of head training, {own} s its own fits):")
    for name, r in report["product_no_identifiers"].items():
        print(_line(name, r))
    if "product_finetuned" in report:
        print(f"the same on the backbone fine-tuned on the train split ({report['finetune']}):")
        for name, r in report["product_finetuned"].items():
            print(_line(name, r))
        print(f"pipeline's choice (holdout): {report['pipeline_choice']}")
    print(f"OCR per 320 px photo: {report['ocr_ms']}")
    print(f"OCR per 640x360 video frame: {report['ocr_ms_per_frame']}")


def _line(name: str, r: dict) -> str:
    return (
        f"{name:<22} {r['strategy']:<22} {r['holdout_accuracy']:>8.3f} {r['uploads_top1']:>8.3f} "
        f"{r['hard_top1']:>8.3f} {r['other_top1']:>8.3f} {r['train_s']:>8.2f}"
    )



def probe_of(head) -> dict:
    """The pipeline's backbone probe from a head: its logistic regression's holdout balanced accuracy."""
    return {"balanced": head.metrics["strategies"]["logreg"]["balanced_accuracy"]}


if __name__ == "__main__":
    main()
