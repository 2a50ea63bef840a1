"""Strategies on grocery-produce: every head strategy on the frozen and on the fine-tuned backbone, and what
the pipeline would choose.

Protocol as benchmarks/accuracy.py: the data set's splits; the backbone is fine-tuned on train only
(ml/finetune.py: last blocks + classifier, augmentation, `--budget-min` of wall time); then the pipeline's
`train_facet_head` is fitted on train, checked on val (the holdout), refitted on train+val and scored on
test: logreg, lightgbm and prototype on the embeddings, logreg combined with ORB keypoint matches by the
learned combiner (`logreg+keypoints`), and the head `train_facet_head` chooses among all of them on val,
once with the frozen backbone and once with the fine-tuned one; then the backbone the pipeline keeps
(`ml.backbone_choice.choose` of the logreg probes, on val). Prints test top-1 / balanced accuracy per
strategy, epochs done, training images/s and the budget used. The fine-tuned weights are kept in
benchmarks/out/ (`--weights FILE` reuses them instead of training).

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
from ml.backbone_choice import choose
from ml.backbones import BackboneSpec
from ml.finetune import FinetuneConfig, finetune
from ml.heads import STRATEGIES, train_facet_head
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
    parser.add_argument("--augment", choices=["light", "strong"], default="light")
    parser.add_argument("--no-keypoints", action="store_true", help="skip the logreg+keypoints strategy")
    parser.add_argument("--views", action="store_true",
                        help="also both backbones on the whole frame plus centre crops at two scales, pooled")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    data = load_dataset()
    t = time.perf_counter()
    images = load_images(data.root, data.paths)
    report: dict = {"load_seconds": round(time.perf_counter() - t, 1)}
    train, val, test = data.mask("train"), data.mask("val"), data.mask("test")

    t = time.perf_counter()
    features = [None] * len(images) if args.no_keypoints else [extract(image) for image in images]
    report["keypoint_seconds"] = round(time.perf_counter() - t, 1)
    ids = np.array(data.paths)

    def evaluate(spec: BackboneSpec) -> dict:
        """Every strategy on one backbone (test top-1 of the head refitted on train+val), and the head the
        pipeline would choose on val among all of them (plain and +keypoints)."""
        backbone = spec.build()
        t0 = time.perf_counter()
        X = backbone.embed(images)
        split = Split(X[train], data.labels[train], X[val], data.labels[val], X[test], data.labels[test])
        plain = score_heads(split, list(STRATEGIES))
        out = {"model": backbone.model_id, "embed_and_fit_seconds": round(time.perf_counter() - t0, 1)}
        for name in STRATEGIES:
            out[name] = {k: round(plain[name][k], 4) for k in ("top1", "balanced", "val_top1", "val_balanced")}
        kp = {
            "keypoints_train": [features[i] for i in np.flatnonzero(train)],
            "keypoints_hold": [features[i] for i in np.flatnonzero(val)],
            "ids_train": list(ids[train]),
            "ids_hold": list(ids[val]),
        }
        test_idx = np.flatnonzero(test)
        test_features = [features[i] for i in test_idx]
        truth = data.labels[test]

        def scored(head) -> dict:
            predicted = np.array([t for t, _, _ in head.predict(X[test], features=test_features)])
            return {
                "top1": round(top1(truth, predicted), 4),
                "balanced": round(balanced(truth, predicted), 4),
                "val_top1": round(head.metrics["accuracy"], 4),
                "val_balanced": round(head.metrics["balanced_accuracy"], 4),
            }

        if args.no_keypoints:  # the plain strategies only: ~8 min less per backbone on 2 cores
            kp = {}
        else:
            forced = train_facet_head("label", X[train], data.labels[train], X[val], data.labels[val],
                                      strategies=["logreg"], force="logreg+keypoints", **kp)
            out["logreg+keypoints"] = scored(forced)
        head = train_facet_head("label", X[train], data.labels[train], X[val], data.labels[val],
                                strategies=list(STRATEGIES), **kp)
        out["chosen"] = {"strategy": head.strategy, **scored(head)}
        return out, head
    with tempfile.TemporaryDirectory() as tmp:
        report["frozen"], frozen_head = evaluate(BackboneSpec(cache_dir=str(Path(tmp) / "cache")))
        print(f"frozen: {report['frozen']}", flush=True)
        if args.weights:
            weights = str(args.weights)
        else:
            config = FinetuneConfig(budget_s=args.budget_min * 60, epochs=args.epochs, train_blocks=args.train_blocks,
                                    augment=args.augment)
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
                "config": {"budget_min": args.budget_min, "epochs": args.epochs, "train_blocks": args.train_blocks,
                           "augment": args.augment},
            }
            print(f"fine-tune: {report['finetune']}", flush=True)
        name = f"efficientnet-lite0-ft:{weights}"
        report["finetuned"], tuned_head = evaluate(BackboneSpec(name=name, cache_dir=str(Path(tmp) / "cache")))
        print(f"fine-tuned: {report['finetuned']}", flush=True)
        if args.views:
            cache = str(Path(tmp) / "cache")
            report["views"], _ = evaluate(BackboneSpec(name="efficientnet-lite0-views:224/avg/center+zoom+zoom60",
                                                       cache_dir=cache))
            print(f"views: {report['views']}", flush=True)
            report["finetuned_views"], _ = evaluate(BackboneSpec(name=f"efficientnet-lite0-ft-views:{weights}",
                                                                 cache_dir=cache))
            print(f"fine-tuned views: {report['finetuned_views']}", flush=True)
    # what the pipeline keeps: the backbone whose chosen head is better on val (ml/backbone_choice.py)
    role = choose({"base": probe_of(frozen_head), "finetuned": probe_of(tuned_head)})
    report["pipeline_choice"] = {"backbone": role, **report["frozen" if role == "base" else "finetuned"]["chosen"]}
    print_table(report)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2))


def print_table(report: dict) -> None:
    rows = [*STRATEGIES, *(["logreg+keypoints"] if "logreg+keypoints" in report["frozen"] else []), "chosen"]
    sides = [s for s in ("frozen", "finetuned", "views", "finetuned_views") if s in report]
    print(f"\n{'strategy':<22}" + "".join(f"{s + ' test top-1 / bal':>36}" for s in sides))
    for name in rows:
        cells = []
        for side in sides:
            r = report[side][name]
            label = f" ({r['strategy']})" if name == "chosen" else ""
            cells.append(f"{100 * r['top1']:.1f} % / {100 * r['balanced']:.1f} %{label}")
        print(f"{name:<22}" + "".join(f"{c:>36}" for c in cells))
    choice = report["pipeline_choice"]
    print(f"pipeline's choice on val: {choice['backbone']} backbone, {choice['strategy']}: "
          f"test top-1 {100 * choice['top1']:.1f} % (val {100 * choice['val_top1']:.1f} %)")



def probe_of(head) -> dict:
    """The pipeline's backbone probe from a head: its logistic regression's holdout balanced accuracy."""
    return {"balanced": head.metrics["strategies"]["logreg"]["balanced_accuracy"]}


if __name__ == "__main__":
    main()
