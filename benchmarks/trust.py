"""Does the promise hold on the next shoot? grocery-produce through the pipeline's own code path.

Examples = train+val (1,972 photos, 50 tags), uploads = test (1,704 photos taken in another session). For each
split the pipeline can make, the head is trained exactly as the `heads` asset trains it (`train_facet_head`,
default strategies, the library's default target precision 0.9), and two things are compared:
- the promise: what the head's metrics say to expect on a new shoot (top-1 and applied precision on the holdout,
  share applied), which the evaluation report and the Dagster metadata show;
- the measurement: the shipped head (refitted on all examples) on the test photos.
The test photos are in the library when the heads train, as the uploads of a library are: the head may learn
from them unlabelled (ml/self_training.py, the `heads` asset's pool); `--no-library` trains without them.

The backbone is chosen as `backbone_choice` chooses it: the library's, the views candidate (whole frame plus
centre crops at two scales), the large backbone on the same views and, with --finetune, the fine-tuned backbone,
that one on views and the ensemble, each probed by a logistic regression on the same split, the costlier kept
only where it wins by a point (ml/backbone_choice.py).

Splits: `random` (rows, stratified by tag: the pipeline before group-aware holdouts) and `groups` (ml/groups.py
groups: here every tag is one folder with no metadata, so look-alike clusters; ml/splits.py keeps each on one
side; inner C search and out-of-fold combiners keep them too).

    .venv/bin/python -m benchmarks.trust                    # ~4 min warm on 2 cores, ~12 min cold
    .venv/bin/python -m benchmarks.trust --no-views         # the library's backbone only
    .venv/bin/python -m benchmarks.trust --finetune --splits groups --seeds 0 1 2   # every default candidate
    .venv/bin/python -m benchmarks.trust --keypoints        # with the ORB keypoint strategies (+3 min)
    .venv/bin/python -m benchmarks.trust --seeds 0 1 2      # the spread over split seeds

Writes benchmarks/out/trust.json. Figures, not tests: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from benchmarks.backbones import embedding_arguments, get_embeddings
from benchmarks.grocery import OUT_DIR, Dataset, load_dataset
from ml.backbone_choice import (
    COLOUR_BACKBONE,
    ENSEMBLE_OF,
    choose,
    judged,
    large_views_backbone,
    probe,
    views_backbone,
)
from ml.backbones.concat import join
from ml.calibration import applied_mask, top_predictions
from ml.groups import PhotoFacts, exif_session, holdout_units, shoot_groups
from ml.heads import STRATEGIES, train_facet_head
from ml.splits import group_holdout_split, holdout_split

log = logging.getLogger("benchmarks.trust")


def measured(head, X: np.ndarray, y: np.ndarray, features=None) -> dict:
    """The shipped head on new photos: top-1, balanced accuracy, applied precision and share applied."""
    scores = head.predict_scores(X, features=features)
    pred, top, correct = top_predictions(scores, list(y), head.classes)
    applied = applied_mask(pred, top, head.classes, head.thresholds)
    labels = np.array(head.classes)[pred]
    balanced = float(np.mean([np.mean(labels[y == c] == c) for c in np.unique(y)]))
    return {
        "top1": round(float(correct.mean()), 4),
        "balanced": round(balanced, 4),
        "applied_precision": round(float(correct[applied].mean()), 4) if applied.any() else None,
        "share_applied": round(float(applied.mean()), 4),
    }


def example_groups(data: Dataset, rows: np.ndarray, X: np.ndarray) -> tuple[list[str], float]:
    """The pipeline's holdout units of the example photos (`examples` asset), and the seconds they took."""
    started = time.perf_counter()
    photos = [
        PhotoFacts(
            data.paths[i],
            str(data.root / data.paths[i]),
            (("product", str(data.labels[i])),),
            None,
            exif_session((data.root / data.paths[i]).read_bytes()),
        )
        for i in rows
    ]
    groups = shoot_groups(photos, X)
    units, _, _ = holdout_units(photos, groups, X)
    return units, time.perf_counter() - started


def run(data: Dataset, X_by: dict[str, np.ndarray], split_kind: str, seed: int, strategies, keypoints,
        tune=None, library: bool = True) -> dict:
    """`X_by`: {role: vectors of every photo} of the candidate backbones; groups come from the base ones, as in
    the `examples` asset, and the backbone from `backbone_choice`'s probe on the same split."""
    examples = np.flatnonzero(data.mask("train", "val"))
    test = np.flatnonzero(data.mask("test"))
    X, y = X_by["base"][examples], data.labels[examples]
    group_seconds = 0.0
    if split_kind == "random":
        split, groups = holdout_split(y, 0.25, seed), None
    else:
        units, group_seconds = example_groups(data, examples, X)
        split = group_holdout_split([data.paths[i] for i in examples], ["product"] * len(y), list(y), units, 0.25, seed)
        groups = np.array(units)
    tr = split == "train"
    g_tr = None if groups is None else list(groups[tr])
    if tune is not None:  # the fine-tuned candidates, trained on this split's train rows as the pipeline does
        X_by = {**X_by, **finetuned_candidates(data, examples[tr], f"{split_kind}-{seed}", "views" in X_by, tune)}
    if all(role in X_by for role in ENSEMBLE_OF):  # as backbone_choice joins it from its parts' vectors
        X_by["ensemble"] = join([X_by[role] for role in ENSEMBLE_OF])
    probes = {
        role: probe(X_by[role][examples][tr], y[tr], X_by[role][examples][~tr], y[~tr], g_tr, seed)
        for role in judged(list(X_by))
    }
    role = choose(probes)
    X_all = X_by[role]
    X = X_all[examples]
    extra = {}
    if keypoints is not None:
        extra = {
            "keypoints_train": [keypoints[i] for i in examples[tr]],
            "keypoints_hold": [keypoints[i] for i in examples[~tr]],
            "ids_train": [data.paths[i] for i in examples[tr]],
            "ids_hold": [data.paths[i] for i in examples[~tr]],
        }
    started = time.perf_counter()
    head = train_facet_head(
        "product",
        X[tr],
        y[tr],
        X[~tr],
        y[~tr],
        strategies=strategies,
        seed=seed,
        groups_train=None if groups is None else groups[tr],
        X_pool=X_all[test] if library else None,  # the uploads are in the library when heads train
        **extra,
    )
    heads_seconds = time.perf_counter() - started
    new = head.metrics["new_shoot"]
    features = [keypoints[i] for i in test] if keypoints is not None and head.matches_keypoints else None
    got = measured(head, X_all[test], data.labels[test], features)
    return {
        "split": split_kind,
        "seed": seed,
        "backbone": role,
        "probes": {r: p["balanced"] for r, p in probes.items()},
        "strategy": head.strategy,
        "n_holdout": int((~tr).sum()),
        "promised_top1": new["top1_projected"],
        "promised_top1_interval": [new["top1_low"], new["top1_projected_high"]],
        "holdout_top1": new["top1"],
        "promised_applied_precision": new["applied_precision"],
        "promised_applied_interval": [new["applied_precision_low"], new["applied_precision_high"]],
        "promised_share_applied": new["share_applied"],
        "same_shoot_top1": head.metrics["same_shoot"]["top1"],
        "self_training": head.metrics.get("self_training"),
        "test": got,
        "gap_top1": round(new["top1_projected"] - got["top1"], 4),
        "gap_holdout_top1": round(new["top1"] - got["top1"], 4),
        "gap_applied_precision": (
            round(new["applied_precision"] - got["applied_precision"], 4)
            if new["applied_precision"] is not None and got["applied_precision"] is not None
            else None
        ),
        "heads_seconds": round(heads_seconds, 1),
        "group_seconds": round(group_seconds, 1),
    }


def finetuned_candidates(data: Dataset, rows: np.ndarray, key: str, views: bool, args) -> dict[str, np.ndarray]:
    """{"finetuned": vectors, "finetuned-views": vectors} of every photo by the backbone fine-tuned on `rows` with a
    new library's settings (resources/libraries.py FinetuneSettings: budget, epochs, blocks, augmentation). The
    weights of a (split, seed) are kept in benchmarks/out/ and reused by the next run."""
    from benchmarks.finetune import load_images
    from ml.backbone_choice import finetuned_views_backbone
    from ml.finetune import FinetuneConfig, finetune
    from resources.libraries import FinetuneSettings

    settings = FinetuneSettings()
    record = OUT_DIR / f"trust-finetuned-{key}.json"
    done = json.loads(record.read_text()) if record.exists() else None
    if done is None or not Path(done["weights"]).is_file():
        config = FinetuneConfig(budget_s=settings.budget_min * 60, epochs=settings.epochs,
                                train_blocks=settings.train_blocks, augment=settings.augment, seed=0)
        images = load_images(data.root, [data.paths[i] for i in rows])
        result = finetune(images, list(data.labels[rows]), OUT_DIR / "trust-ft", config)
        done = {"weights": result.weights_path, "epochs_done": result.epochs_done, "seconds": result.seconds,
                "settings": settings.model_dump()}
        record.write_text(json.dumps(done))
    log.info("fine-tuned for %s: %s", key, done)
    name = f"efficientnet-lite0-ft:{done['weights']}"
    out = {"finetuned": get_embeddings(name, data, args)["vectors"]}
    if views:
        out["finetuned-views"] = get_embeddings(finetuned_views_backbone(name), data, args)["vectors"]
    return out


def orb_features(data: Dataset) -> list:
    from ml.keypoints import extract
    from ml.media import decode_image

    started = time.perf_counter()
    out = [extract(decode_image((data.root / p).read_bytes(), 512)) for p in data.paths]
    log.info("ORB features of %d photos in %.0f s", len(out), time.perf_counter() - started)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", default="efficientnet-lite0")
    parser.add_argument("--no-views", action="store_true", help="the library's backbone only (views: off)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--splits", nargs="+", default=["random", "groups"])
    parser.add_argument("--keypoints", action="store_true", help="also the +keypoints strategies (ORB)")
    parser.add_argument("--no-library", action="store_true",
                        help="heads learn from the examples only, not from the uploads in the library")
    parser.add_argument("--finetune", action="store_true",
                        help="also the fine-tuned candidates, with a new library's settings (+~8 min a seed)")
    embedding_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data = load_dataset()
    X_by = {"base": get_embeddings(args.backbone, data, args)["vectors"]}
    for role, name in (("views", views_backbone(args.backbone)), ("large-views", large_views_backbone(args.backbone)),
                       ("colour", COLOUR_BACKBONE)):
        if name and not args.no_views:  # the candidates `backbone_choice` compares by default
            X_by[role] = get_embeddings(name, data, args)["vectors"]
    keypoints = orb_features(data) if args.keypoints else None
    results = [
        run(data, X_by, kind, seed, STRATEGIES, keypoints, args if args.finetune else None, not args.no_library)
        for kind in args.splits
        for seed in args.seeds
    ]
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "trust.json").write_text(json.dumps(results, indent=1))
    print(
        "\nsplit   seed backbone    strategy          holdout | promised top-1 (interval) [holdout] applied prec"
        " (interval)  share | test top-1 balanced applied prec share | gap top-1 gap applied"
        " | same-shoot top-1 | heads s"
    )
    for r in results:
        t = r["test"]
        ap = r["promised_applied_precision"]
        print(
            f"{r['split']:7s} {r['seed']:4d} {r['backbone']:11s} {r['strategy']:18s} {r['n_holdout']:6d} | "
            f"{r['promised_top1']:.3f} ({r['promised_top1_interval'][0]:.3f}-{r['promised_top1_interval'][1]:.3f})"
            f" [{r['holdout_top1']:.3f}]  "
            f"{'-' if ap is None else f'{ap:.3f}'} ({r['promised_applied_interval'][0]:.3f}-"
            f"{r['promised_applied_interval'][1]:.3f})  {r['promised_share_applied']:.3f} | "
            f"{t['top1']:.3f} {t['balanced']:.3f} {t['applied_precision'] or 0:.3f} {t['share_applied']:.3f} | "
            f"{r['gap_top1']:+.3f} {r['gap_applied_precision'] or 0:+.3f} | {r['same_shoot_top1']:.3f} | "
            f"{r['heads_seconds']:.0f} (groups {r['group_seconds']:.0f})"
        )
    for r in results:
        print(f"{r['split']} {r['seed']}: self-training {r['self_training']}")


if __name__ == "__main__":
    main()
