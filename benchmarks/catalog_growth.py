"""New products in seconds? 10 tags added to a 1,000-tag catalog, on synthetic cached embeddings.

The pipeline's own code path, without Dagster: examples with shoots (units), the split the `examples` asset
makes (ml/sticky_splits.py: the first from scratch, the next keeping every earlier photo's side), the head
version the `heads` asset compares (assets_defs/heads/assets.py `head_version`: only a facet whose rows changed
retrains), `train_facet_head` with the library's default strategies and target precision, and `predict_table`
(what `tags` calls) over the library's photos. Timed: the retrain of the changed facet(s) and the re-tag.

Two catalogs of the same 1,000 tags (~10 examples each, in 3 shoots):
- `one-facet`: one facet of 1,000 tags; 10 new tags land in it, so the whole facet retrains;
- `ten-facets`: 10 facets of 100 tags; the 10 new tags land in one facet, and only that facet retrains.

Embeddings: 1280-d (the default backbone's size), seeded numpy rng: tag centres in 100 families of look-alikes,
a per-shoot offset (a new shoot's light and backdrop) and per-photo noise, L2-normalised. Library photos come
from shoots no example saw, with known truth; accuracy is reported on the head's group-aware holdout and on
them.

    .venv/bin/python -m benchmarks.catalog_growth                              # both layouts, default strategies
    .venv/bin/python -m benchmarks.catalog_growth --layouts ten-facets --strategies logreg prototype
    .venv/bin/python -m benchmarks.catalog_growth --profile                    # where the retrain's time goes

Writes benchmarks/out/catalog_growth.json. Figures, not tests: nothing here asserts.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from assets_defs.heads.assets import head_version
from ml.heads import predict_table, train_facet_head
from ml.self_training import pool_sample
from ml.sticky_splits import sticky_holdout_split
from resources.libraries import LibraryConfig

OUT = Path(__file__).resolve().parent / "out"
DIM = 1280


@dataclass
class Photos:
    ids: list[str]
    facets: list[str]
    tags: list[str]
    units: list[str]
    X: np.ndarray


class World:
    """Tag centres (families of look-alikes), shoots with their own offset, photos drawn from them."""

    def __init__(
        self, seed: int, families: int = 100, family_spread: float = 0.5, shoot: float = 1.5, noise: float = 3.0
    ) -> None:
        self.rng = np.random.default_rng(seed)
        self.family_centres = self.rng.normal(size=(families, DIM))
        self.family_spread, self.shoot, self.noise = family_spread, shoot, noise
        self.centres: dict[str, np.ndarray] = {}

    def centre(self, tag: str) -> np.ndarray:
        if tag not in self.centres:
            family = self.family_centres[len(self.centres) % len(self.family_centres)]
            self.centres[tag] = family + self.family_spread * self.rng.normal(size=DIM)
        return self.centres[tag]

    def photos(self, facet: str, tag: str, shoots: list[str], per_shoot: list[int], prefix: str) -> Photos:
        ids, units, rows = [], [], []
        for shoot, n in zip(shoots, per_shoot, strict=True):
            offset = self.shoot * self.rng.normal(size=DIM)
            for k in range(n):
                ids.append(f"{prefix}{tag}-{shoot}-{k}")
                units.append(f"manifest:{tag}-{shoot}")
                rows.append(self.centre(tag) + offset + self.noise * self.rng.normal(size=DIM))
        X = np.asarray(rows, np.float32)
        return Photos(ids, [facet] * len(ids), [tag] * len(ids), units, X / np.linalg.norm(X, axis=1, keepdims=True))


def concat(parts: list[Photos]) -> Photos:
    return Photos(
        [i for p in parts for i in p.ids],
        [f for p in parts for f in p.facets],
        [t for p in parts for t in p.tags],
        [u for p in parts for u in p.units],
        np.vstack([p.X for p in parts]),
    )


def catalog_examples(world: World, layout: str, n_tags: int, first: int = 0, facet: str | None = None) -> list[Photos]:
    """~10 examples per tag in 3 shoots (4 + 3 + 3); tag i in `facet`, else as `layout` says: 'f0' (one-facet)
    or 'f<i // 100>' (ten-facets)."""
    out = []
    for i in range(first, first + n_tags):
        into = facet or ("f0" if layout == "one-facet" else f"f{i // 100}")
        out.append(world.photos(into, f"t{i:04d}", ["s0", "s1", "s2"], [4, 3, 3], "ex-"))
    return out


def library_photos(world: World, facet_of: dict[str, str], n: int) -> Photos:
    """`n` photos of the catalog's tags from shoots no example saw (truth known), 5 per new shoot."""
    tags = sorted(facet_of)
    parts = [
        world.photos(facet_of[t], t, [f"lib{k}"], [5], "lib-")
        for k, t in enumerate([tags[i % len(tags)] for i in range(n // 5)])
    ]
    return concat(parts)


def table(ex: Photos, split: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {"media_id": ex.ids, "facet": ex.facets, "tag_id": ex.tags, "split": list(split), "group": ex.units}
    )


def train(facet: str, ex: Photos, rows: pl.DataFrame, config: LibraryConfig, profile: bool, pool: np.ndarray):
    """`train_facet_head` as the `heads` asset calls it (assets_defs/heads/assets.py `train_on`), the library's
    photos as the pool it may learn from (ml/self_training.py)."""
    mask = np.array([f == facet for f in ex.facets])
    X, y = ex.X[mask], np.array(ex.tags)[mask]
    sub = rows.filter(pl.col("facet") == facet)
    is_train = (sub["split"] == "train").to_numpy()
    groups = sub["group"].to_numpy()
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    head = train_facet_head(
        facet,
        X[is_train],
        y[is_train],
        X[~is_train],
        y[~is_train],
        strategies=tuple(config.head_strategies),
        seed=config.seed,
        target_precision=config.target_precision,
        groups_train=groups[is_train],
        X_pool=pool[pool_sample(len(pool), config.seed)],
    )
    seconds = time.perf_counter() - started
    if profiler:
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
        print(text.getvalue())
    return head, seconds


def retag(heads: dict, lib: Photos) -> tuple[float, float, int]:
    """`predict_table` of each head in `heads` over every library photo, as `tags` does: seconds, top-1 of the
    rows of each photo's own facet against its truth (nan: no such row), rows written."""
    started = time.perf_counter()
    rows = []
    for head in heads.values():
        rows += predict_table(head, lib.ids, lib.X)
    seconds = time.perf_counter() - started
    truth = {(i, f): t for i, f, t in zip(lib.ids, lib.facets, lib.tags, strict=True)}
    hits = [truth[(r["media_id"], r["facet"])] == r["tag_id"] for r in rows if (r["media_id"], r["facet"]) in truth]
    return seconds, float(np.mean(hits)) if hits else float("nan"), len(rows)


def run_layout(layout: str, args, config: LibraryConfig) -> dict:
    world = World(args.seed)
    ex = concat(catalog_examples(world, layout, args.tags))
    split, _ = sticky_holdout_split(ex.ids, ex.facets, ex.tags, ex.units, {}, config.holdout_frac, config.seed)
    rows = table(ex, split)
    facets = sorted(set(ex.facets))
    versions = {f: head_version(f, "synthetic", rows.filter(pl.col("facet") == f), config) for f in facets}
    facet_of = dict(zip(ex.tags, ex.facets, strict=True))
    lib = library_photos(world, facet_of, args.library)

    # the season's new products: 10 tags, ~10 examples each, in 3 shoots of their own, all in facet f0
    new = concat(catalog_examples(world, layout, args.added, first=args.tags, facet="f0"))
    grown = concat([ex, new])
    previous = dict(zip(ex.ids, split, strict=True))
    labels = set(zip(ex.facets, ex.tags, strict=True))
    split2, sticky = sticky_holdout_split(
        grown.ids, grown.facets, grown.tags, grown.units, previous, config.holdout_frac, config.seed, labels
    )
    rows2 = table(grown, split2)
    changed = [
        f for f in facets if head_version(f, "synthetic", rows2.filter(pl.col("facet") == f), config) != versions[f]
    ]
    heads, first_train = {}, {}
    for f in facets:  # the catalog before: trained once (a facet about to retrain is skipped with --no-first-train)
        if not (args.no_first_train and f in changed):
            heads[f], first_train[f] = train(f, ex, rows, config, profile=False, pool=lib.X)
    first_retag, first_top1, _ = retag(heads, lib) if heads else (float("nan"), float("nan"), 0)

    started, cpu = time.perf_counter(), time.process_time()
    retrain = {}
    for f in changed:
        heads[f], retrain[f] = train(f, grown, rows2, config, profile=args.profile, pool=lib.X)
    retrain_s, retrain_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    lib2 = concat([lib, library_photos(world, dict(zip(new.tags, new.facets, strict=True)), 5 * args.added)])
    retag_changed_s, _, _ = retag({f: heads[f] for f in changed}, lib2)
    retag_s, top1, tagged = retag(heads, lib2)
    return {
        "layout": layout,
        "tags": args.tags,
        "added": args.added,
        "facets": len(facets),
        "examples": len(grown.ids),
        "library_photos": len(lib2.ids),
        "strategies": config.head_strategies,
        "first_train_s": round(sum(first_train.values()), 2) if first_train else None,
        "first_retag_s": round(first_retag, 2),
        "first_library_top1": round(first_top1, 4),
        "split_kept": sticky.kept,
        "split_new": sticky.new,
        "split_moved": len(sticky.moved),
        "facets_retrained": changed,
        "retrain_s": round(retrain_s, 2),
        # CPU seconds of every thread: what the retrain costs whatever else shares the cores (wall = CPU / 2 at best)
        "retrain_cpu_s": round(retrain_cpu_s, 2),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "retag_changed_s": round(retag_changed_s, 2),
        "retag_all_s": round(retag_s, 2),
        "retrain_plus_retag_s": round(retrain_s + retag_changed_s, 2),
        "holdout_top1": {f: round(heads[f].metrics["accuracy"], 4) for f in changed},
        "chosen": {f: heads[f].strategy for f in changed},
        "params": {f: heads[f].metrics["params"] for f in changed},
        "self_training": {f: heads[f].metrics.get("self_training") for f in changed},
        "strategy_holdout_top1": {
            f: {s: round(r["accuracy"], 4) for s, r in heads[f].metrics["strategies"].items()} for f in changed
        },
        "library_top1": round(top1, 4),
        "rows_tagged": tagged,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", nargs="+", default=["ten-facets", "one-facet"])
    parser.add_argument("--tags", type=int, default=1000)
    parser.add_argument("--added", type=int, default=10)
    parser.add_argument("--library", type=int, default=10_000, help="library photos to re-tag")
    parser.add_argument("--strategies", nargs="+", default=None, help="default: a new library's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="cProfile of each retrain (top 25 by cumulative)")
    parser.add_argument(
        "--no-first-train", action="store_true", help="skip the first training of the facets that retrain anyway"
    )
    args = parser.parse_args()
    settings = {"head_strategies": args.strategies} if args.strategies else {}
    config = LibraryConfig(name="bench", media="/nowhere", **settings)
    print(f"cores: {os.cpu_count()}, strategies: {config.head_strategies}")
    results = []
    for layout in args.layouts:
        started = time.perf_counter()
        result = run_layout(layout, args, config)
        result["bench_wall_s"] = round(time.perf_counter() - started, 1)
        results.append(result)
        print(json.dumps(result, indent=1))
    OUT.mkdir(exist_ok=True)
    name = "catalog_growth.json" if not args.strategies else f"catalog_growth-{'-'.join(args.strategies)}.json"
    (OUT / name).write_text(json.dumps(results, indent=1))
    print(
        f"{'layout':<11} {'retrained':<10} {'retrain s':>9} {'re-tag s':>8} {'total s':>8} {'holdout':>8} "
        f"{'library':>8}"
    )
    for r in results:
        hold = np.mean(list(r["holdout_top1"].values())) if r["holdout_top1"] else float("nan")
        print(
            f"{r['layout']:<11} {','.join(r['facets_retrained']):<10} {r['retrain_s']:>9.1f} "
            f"{r['retag_changed_s']:>8.1f} {r['retrain_plus_retag_s']:>8.1f} {hold:>8.3f} {r['library_top1']:>8.3f}"
        )


if __name__ == "__main__":
    main()
