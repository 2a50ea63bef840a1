"""Fine-grained accuracy of frozen-backbone embeddings on grocery-produce (50 classes, real shop photos).

Why: the default embedding (EfficientNet-Lite0, one 224 px centre crop, average pool) plus a logistic
regression is the pipeline's baseline; this measures it and every frozen-backbone trick that could raise it
without training the backbone - input resolution, test-time and training-time augmentation (views),
multi-scale features (pooled intermediate blocks), GeM pooling, a colour histogram, wider C, feature
standardisation / PCA-whitening - so the pipeline adopts only what pays.

Protocol: the data set's own splits. Heads are the pipeline's `train_facet_head` (fit on train, choose the
strategy on val, refit on train+val) scored on test; the linear probe sweeps C on val, refits on train+val,
scores on test. Features are cached under benchmarks/out/ (first run extracts them: minutes per view and
input size on 2 cores; reruns take seconds for features, the rest is head fitting).

    python -m benchmarks.accuracy                # baseline vs recommended, every head strategy (~5 min warm)
    python -m benchmarks.accuracy --all          # the whole variant table (~25 min warm; ~45 min cold)
    python -m benchmarks.accuracy --variants 320-avg+b14 --transforms l2,standardize,pca-whiten
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.grocery import OUT_DIR, Dataset, FeatureCache, load_dataset
from benchmarks.probes import TRANSFORMS, Split, linear_probe, score_heads
from ml.groups import PhotoFacts, holdout_units
from ml.heads import STRATEGIES, train_facet_head
from ml.splits import group_holdout_split
from ml.views import combine_features

log = logging.getLogger("benchmarks.accuracy")

FLIPS = ("center", "center_flip")
TTA4 = ("center", "center_flip", "squash", "squash_flip")
CROPS2 = ("center", "zoom", "zoom60")  # the frame's short-side crop plus centre crops of 80 % and 60 %
FIVE_CROP = ("center", "tl", "tr", "bl", "br")  # centre + the four 80 % corners


@dataclass(frozen=True)
class Part:
    """One forward configuration: input size, pooled features, views averaged into one row."""

    size: int
    features: tuple[str, ...] = ("avg",)
    views: tuple[str, ...] = ("center",)


@dataclass(frozen=True)
class Variant:
    """An embedding recipe: parts concatenated (each L2-normalised); `train_views`, when set, gives each
    training photo one row per view (training-time augmentation) instead of one row of averaged views."""

    name: str
    parts: tuple[Part, ...]
    train_views: tuple[str, ...] = ()
    weights: dict[str, float] = field(default_factory=dict, hash=False)
    note: str = ""


BASELINE = "224-avg"
RECOMMENDED = "320-avg+hsv"
VARIANTS: list[Variant] = [
    Variant(BASELINE, (Part(224),), note="the pipeline today: 224 px centre crop, average pool"),
    Variant("224-avg-tta4", (Part(224, views=TTA4),), note="test-time aug: centre + squash, each + flip"),
    Variant("224-avg-flipaug", (Part(224, views=FLIPS),), train_views=FLIPS,
            note="train rows per flip, test = mean of flips"),
    Variant("224-avg-crops2", (Part(224, views=CROPS2),), note="mean of centre, 80 % and 60 % centre crops"),
    Variant("224-avg-crops2-trainaug", (Part(224, views=CROPS2),), train_views=CROPS2,
            note="train rows per crop scale, test = mean of the 3 crops"),
    Variant("224-zoom", (Part(224, views=("zoom",)),), note="one 80 % centre crop instead of the frame"),
    Variant("224-zoom60", (Part(224, views=("zoom60",)),), note="one 60 % centre crop instead of the frame"),
    Variant("224-avg-5crop", (Part(224, views=FIVE_CROP),), note="mean of centre + four 80 % corner crops"),
    Variant("224-gem", (Part(224, ("gem",)),), note="GeM (p=3) instead of average pool"),
    Variant("224-avg+b14", (Part(224, ("avg", "b14")),), note="+ pooled block 14 (192-d, stride 32)"),
    Variant("224-avg+b10+b14+b15", (Part(224, ("avg", "b10", "b14", "b15")),), note="+ three block pools"),
    Variant("320-avg", (Part(320),), note="input 320 px"),
    Variant("320-avg-tta4", (Part(320, views=TTA4),)),
    Variant("320-avg+b14", (Part(320, ("avg", "b14")),)),
    Variant("320-avg+b14-flipaug", (Part(320, ("avg", "b14"), FLIPS),), train_views=FLIPS),
    Variant("320-avg+b14-cropaug", (Part(320, ("avg", "b14"), FLIPS),),
            train_views=(*TTA4, "zoom", "zoom_flip"), note="train rows: centre, squash, 80 % zoom, each + flip"),
    Variant("320-avg+b14+hsv", (Part(320, ("avg", "b14", "hsv")),), weights={"hsv": 0.5},
            note="+ HSV colour histogram, weight 0.5"),
    Variant("320-avg+b14+hsv-flipaug", (Part(320, ("avg", "b14", "hsv"), FLIPS),), train_views=FLIPS,
            weights={"hsv": 0.5}),
    Variant(RECOMMENDED, (Part(320, ("avg", "hsv")),), weights={"hsv": 0.5}, note="recommended: 320 px + colour"),
    Variant("224-avg+hsv", (Part(224, ("avg", "hsv")),), weights={"hsv": 0.5}, note="colour at today's cost"),
    Variant("416-avg+b14", (Part(416, ("avg", "b14")),), note="input 416 px"),
    Variant("512-avg+b14", (Part(512, ("avg", "b14")),), note="input 512 px"),
    Variant("224+320-concat", (Part(224), Part(320, ("avg", "b14"))), note="two resolutions concatenated"),
]
BY_NAME = {v.name: v for v in VARIANTS}


def embed_variant(cache: FeatureCache, variant: Variant, views: tuple[str, ...] | None = None) -> np.ndarray:
    """Rows for every photo: each part's features averaged over `views` (default: the part's own views)."""
    blocks = []
    for part in variant.parts:
        part_views = views or part.views
        feats = cache.get(part.size, part_views, hsv="hsv" in part.features)
        blocks.append(combine_features([feats[v] for v in part_views], part.features, variant.weights))
    return blocks[0] if len(blocks) == 1 else combine_features([{"all": np.hstack(blocks)}], ["all"])


def make_split(cache: FeatureCache, data: Dataset, variant: Variant) -> Split:
    for part in variant.parts:  # extract every missing view of a size in one pass: one decode per photo
        cache.get(part.size, [*part.views, *variant.train_views], hsv="hsv" in part.features)
    X = embed_variant(cache, variant)
    train = data.mask("train")
    if variant.train_views:
        X_train = np.vstack([embed_variant(cache, variant, (view,))[train] for view in variant.train_views])
        y_train = np.concatenate([data.labels[train]] * len(variant.train_views))
    else:
        X_train, y_train = X[train], data.labels[train]
    val, test = data.mask("val"), data.mask("test")
    return Split(X_train, y_train, X[val], data.labels[val], X[test], data.labels[test])


def group_units(cache: FeatureCache, data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(train+val row indices, their holdout units): per tag Ward clusters of about 8 look-alike photos.

    Every photo is its own non-shoot group (no manifest group, no session), so every tag is cut into clusters
    by `ml.groups.holdout_units`; the clusters come from the baseline's vectors, so every variant is scored on
    the same units.
    """
    examples = np.flatnonzero(data.mask("train", "val"))
    X = embed_variant(cache, BY_NAME[BASELINE])[examples]
    photos = [PhotoFacts(data.paths[i], str(data.root / data.paths[i]), (("product", str(data.labels[i])),))
              for i in examples]
    units, _, _ = holdout_units(photos, [f"copy:{p.media_id}" for p in photos], X)
    return examples, np.array(units)


def group_holdout(cache: FeatureCache, data: Dataset, variant: Variant, examples: np.ndarray, units: np.ndarray,
                  strategy: str = "logreg", seed: int = 0) -> dict:
    """Top-1 / balanced of `strategy` fit on the train side of a group-aware holdout of train+val, scored on
    the held-out clusters (the pipeline's holdout figure: `train_facet_head`'s per-strategy metrics)."""
    y = data.labels[examples]
    side = group_holdout_split([data.paths[i] for i in examples], ["product"] * len(y), list(y), list(units),
                               0.25, seed)
    tr, ho = examples[side == "train"], examples[side == "holdout"]
    X = embed_variant(cache, variant)
    if variant.train_views:
        X_tr = np.vstack([embed_variant(cache, variant, (view,))[tr] for view in variant.train_views])
        k = len(variant.train_views)
    else:
        X_tr, k = X[tr], 1
    y_tr, g_tr = np.tile(data.labels[tr], k), np.tile(units[side == "train"], k)
    head = train_facet_head("label", X_tr, y_tr, X[ho], data.labels[ho], strategies=[strategy], seed=seed,
                            groups_train=g_tr)
    got = head.metrics["strategies"][strategy]
    return {"top1": got["accuracy"], "balanced": got["balanced_accuracy"], "train": len(tr), "holdout": len(ho),
            "units": len(set(units.tolist()))}


def run(variants: list[Variant], strategies: list[str], transforms: list[str], out: Path,
        group_aware: bool = False) -> dict:
    data = load_dataset()
    cache = FeatureCache(data)
    log.info("grocery-produce: %d photos (%s), %d classes", len(data.paths),
             {s: int(data.mask(s).sum()) for s in ("train", "val", "test")}, len(np.unique(data.labels)))
    results = []
    units = None
    for variant in variants:
        started = time.perf_counter()
        split = make_split(cache, data, variant)
        extraction = round(time.perf_counter() - started, 1)  # views not cached yet by an earlier variant
        row = {"variant": variant.name, "note": variant.note, "dim": split.X_train.shape[1],
               "train_rows": len(split.y_train), "recipe": asdict(variant)}
        row["heads"] = score_heads(split, strategies) if strategies else {}
        row["probe"] = {t: linear_probe(split, t) for t in transforms}
        row["views_per_photo"] = sum(len(p.views) for p in variant.parts)
        row["extraction_seconds"] = extraction
        if group_aware:
            if units is None:
                examples, units = group_units(cache, data)
            row["group_holdout"] = group_holdout(cache, data, variant, examples, units)
            log.info("%s group-aware holdout: top-1 %.3f balanced %.3f", variant.name,
                     row["group_holdout"]["top1"], row["group_holdout"]["balanced"])
        row["seconds"] = round(time.perf_counter() - started, 1)
        results.append(row)
        log.info("%s done in %.0fs", variant.name, row["seconds"])
        out.write_text(json.dumps({"results": results}, indent=2))  # partial results survive an interrupt
    print_table(results, strategies, transforms)
    return {"results": results}


def _pct(x: float | None) -> str:
    return "    -" if x is None else f"{100 * x:5.1f}"


def print_table(results: list[dict], strategies: list[str], transforms: list[str]) -> None:
    """Test top-1 / balanced accuracy (%) per head strategy and probe transform; val figures for choosing."""
    cols = [*strategies, "chosen"] if strategies else []
    header = f"{'variant':28s} {'dim':>5s} " + " ".join(f"{c[:9]:>13s}" for c in cols)
    header += " " + " ".join(f"{'probe ' + t[:7]:>19s}" for t in transforms)
    header += f" {'val(chosen)':>13s}" if strategies else ""
    print("\ntest top-1 / balanced accuracy, %  (probe: C in brackets)")
    print(header)
    print("-" * len(header))
    for r in results:
        line = f"{r['variant']:28s} {r['dim']:5d} "
        line += " ".join(f"{_pct(r['heads'][c]['top1'])}/{_pct(r['heads'][c]['balanced'])}  " for c in cols)
        for t in transforms:
            p = r["probe"][t]
            line += f" {_pct(p['top1'])}/{_pct(p['balanced'])} [{p['C']:>5g}]"
        if strategies:
            chosen = r["heads"]["chosen"]
            line += f" {chosen['strategy'][:6]:>6s} {_pct(chosen['val_top1'])}"
        if "group_holdout" in r:
            line += f"  group-holdout {_pct(r['group_holdout']['top1'])}/{_pct(r['group_holdout']['balanced'])}"
        print(line)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--all", action="store_true", help="every variant of the table")
    parser.add_argument("--variants", default=f"{BASELINE},{RECOMMENDED}",
                        help=f"comma-separated names; known: {', '.join(BY_NAME)}")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="head strategies ('' for none)")
    parser.add_argument("--transforms", default="l2", help=f"linear-probe transforms of {TRANSFORMS} ('' for none)")
    parser.add_argument("--group-holdout", action="store_true",
                        help="also score logreg on a group-aware holdout of train+val (Ward clusters of ~8 photos)")
    parser.add_argument("--out", type=Path, default=OUT_DIR / "accuracy.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("ml.heads").setLevel(logging.WARNING)

    names = list(BY_NAME) if args.all else [n for n in args.variants.split(",") if n]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(BY_NAME)}")
    strategies = [s for s in args.strategies.split(",") if s]
    transforms = [t for t in args.transforms.split(",") if t]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    run([BY_NAME[n] for n in names], strategies, transforms, args.out, args.group_holdout)
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
