"""Strategies on grocery-produce: frozen vs fine-tuned backbone, each alone and combined with keypoints.

Protocol as benchmarks/accuracy.py: the data set's splits; the backbone is fine-tuned on train only
(ml/finetune.py: last blocks + classifier, augmentation, `--budget-min` of wall time); then the pipeline's
`train_facet_head` is fitted on train, checked on val (the holdout), refitted on train+val and scored on
test: logreg on the embeddings, and logreg combined with ORB keypoint matches by the learned combiner
(`logreg+keypoints`), once with the frozen backbone and once with the fine-tuned one. Prints top-1 /
balanced accuracy per strategy, epochs done, training images/s and the budget used. The fine-tuned weights
are kept in benchmarks/out/ (`--weights FILE` reuses them instead of training).

    python -m benchmarks.finetune --budget-min 15      # ~25 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.grocery import load_dataset
from benchmarks.probes import Split, balanced, score_heads, top1
from ml.backbones import BackboneSpec
from ml.finetune import FinetuneConfig, finetune
from ml.heads import train_facet_head
from ml.keypoints import extract

OUT = Path(__file__).parent / "out" / "finetune.json"


def load_images(root: Path, paths: list[str], short: int = 256) -> list[Image.Image]:
    """Photos decoded once, short side `short` (JPEG draft decoding): what both training and embedding use."""
    out = []
    for rel in paths:
        image = Image.open(root / rel)
        image.draft("RGB", (short, short))
        image = image.convert("RGB")
        scale = short / min(image.size)
        out.append(image.resize((max(short, round(image.width * scale)), max(short, round(image.height * scale)))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-min", type=float, default=15.0)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train-blocks", type=int, default=3)
    parser.add_argument("--weights", type=Path, help="fine-tuned weights from an earlier run: skip training")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    data = load_dataset()
    t = time.perf_counter()
    images = load_images(data.root, data.paths)
    report: dict = {"load_seconds": round(time.perf_counter() - t, 1)}
    train, val, test = data.mask("train"), data.mask("val"), data.mask("test")

    t = time.perf_counter()
    features = [extract(image) for image in images]
    report["keypoint_seconds"] = round(time.perf_counter() - t, 1)
    ids = np.array(data.paths)

    def evaluate(spec: BackboneSpec) -> dict:
        backbone = spec.build()
        t0 = time.perf_counter()
        X = backbone.embed(images)
        split = Split(X[train], data.labels[train], X[val], data.labels[val], X[test], data.labels[test])
        scores = score_heads(split, ["logreg"])["logreg"]
        out = {
            "model": backbone.model_id,
            "logreg": {"test_top1": round(scores["top1"], 4), "test_balanced": round(scores["balanced"], 4)},
            "embed_and_fit_seconds": round(time.perf_counter() - t0, 1),
        }
        head = train_facet_head(
            "label",
            X[train],
            data.labels[train],
            X[val],
            data.labels[val],
            strategies=["logreg"],
            keypoints_train=[features[i] for i in np.flatnonzero(train)],
            keypoints_hold=[features[i] for i in np.flatnonzero(val)],
            ids_train=list(ids[train]),
            ids_hold=list(ids[val]),
            force="logreg+keypoints",
        )
        test_idx = np.flatnonzero(test)
        predicted = np.array([t for t, _, _ in head.predict(X[test], features=[features[i] for i in test_idx])])
        truth = data.labels[test]
        out["logreg+keypoints"] = {
            "test_top1": round(top1(truth, predicted), 4),
            "test_balanced": round(balanced(truth, predicted), 4),
            "val_top1": round(head.metrics["accuracy"], 4),
        }
        return out

    with tempfile.TemporaryDirectory() as tmp:
        report["frozen"] = evaluate(BackboneSpec(cache_dir=str(Path(tmp) / "cache")))
        print(f"frozen: {report['frozen']}", flush=True)
        if args.weights:
            weights = str(args.weights)
        else:
            config = FinetuneConfig(budget_s=args.budget_min * 60, epochs=args.epochs, train_blocks=args.train_blocks)
            train_idx = np.flatnonzero(train)
            result = finetune([images[i] for i in train_idx], list(data.labels[train_idx]), OUT.parent / "ft", config)
            weights = result.weights_path
            report["finetune"] = {
                "epochs_done": result.epochs_done,
                "seconds": result.seconds,
                "stopped_by": result.stopped_by,
                "images_per_s": result.images_per_s,
                "losses": result.losses,
                "weights": weights,
                "config": {"budget_min": args.budget_min, "epochs": args.epochs, "train_blocks": args.train_blocks},
            }
            print(f"fine-tune: {report['finetune']}", flush=True)
        name = f"efficientnet-lite0-ft:{weights}"
        report["finetuned"] = evaluate(BackboneSpec(name=name, cache_dir=str(Path(tmp) / "cache")))
        print(f"fine-tuned: {report['finetuned']}", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
