"""Learning from review on grocery-produce: test accuracy after 0, 50 and 200 verdicts, queue order vs random.

What a team does with tagsmith: a few example photos per tag, a library of untagged photos, a first run, then
people work through `tagsmith review` and the next run trains on their verdicts. Here, group-aware and honest:

- examples: `--shots` photos per tag drawn (seeded) from the data set's train split. 5 by default: the head then
  starts well below what the same head reaches on every labelled photo (printed as `ceiling`), so there is
  something to learn, and 50 verdicts are one per tag on average;
- library (the pool people review): the rest of train+val; test: the test split, photos of another session that
  are never in the pool, never reviewed, never trained on;
- every head is the pipeline's: groups and holdout units of the examples as the `examples` asset derives them
  (ml/groups.py through benchmarks/trust.py `example_groups`, recomputed as examples grow), the group-aware split
  (ml/splits.py), `train_facet_head` with the default strategies and target precision 0.9;
- round 0: the head predicts the pool (`predict_table`); the queue is the rows with status `review`, ordered by
  `ml.review_order.review_priority` with each tag's threshold from the head;
- verdicts come from the truth, as a reviewer gives them: accept the proposed tag when it is right, replace it
  by the right one otherwise; they go through `ml.verdicts.person_labels` (the log -> `manual` labels the next
  run trains on, source review / correction) and are added to the examples, then the head is retrained.

Arms: 0 verdicts; the first 50 and 200 of the queue; 200 drawn at random from the same queue (one seeded numpy
rng per seed, `--seeds`); 200 in four sessions of 50, the queue re-ranked by a retrained head after each.
Per arm, on test: top-1, balanced accuracy, applied precision, share applied, and what the head promises for a
new shoot; per arm also what the verdicts were (share of corrections, tags they touch, how alike the photos are).

    .venv/bin/python -m benchmarks.review_learning              # ~4 min warm on 2 cores (+2 min to embed, once)
    .venv/bin/python -m benchmarks.review_orders              # + other queue orders, tuned on a pool split

Writes benchmarks/out/review_learning.json. Figures, not tests: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.backbones import embedding_arguments, get_embeddings
from benchmarks.grocery import OUT_DIR, Dataset, load_dataset
from benchmarks.trust import example_groups, measured
from ml.facet_head import FacetHead, predict_table
from ml.heads import STRATEGIES, train_facet_head
from ml.review_order import review_priority
from ml.splits import group_holdout_split
from ml.verdicts import LOG_SCHEMA, person_labels

log = logging.getLogger("benchmarks.review_learning")

FACET = "product"
OUT_JSON = OUT_DIR / "review_learning.json"


# ------------------------------------------------------------------------------------------ the library
def initial_examples(data: Dataset, shots: int, seed: int) -> np.ndarray:
    """`shots` photos per tag from the train split (fewer where a tag has fewer), drawn once with `seed`."""
    rng = np.random.default_rng(seed)
    train = np.flatnonzero(data.mask("train"))
    picked = [
        rng.choice(train[data.labels[train] == tag], min(shots, int((data.labels[train] == tag).sum())), replace=False)
        for tag in np.unique(data.labels[train])
    ]
    return np.sort(np.concatenate(picked))


def train_head(
    data: Dataset,
    X: np.ndarray,
    rows: np.ndarray,
    labels: np.ndarray,
    seed: int = 0,
    strategies: tuple[str, ...] = STRATEGIES,
) -> FacetHead:
    """The head the `heads` asset would train on these examples: groups and holdout units derived from the
    photos, the group-aware split, every default strategy, target precision 0.9."""
    units, _ = example_groups(data, rows, X[rows])
    units = np.array(units)
    split = group_holdout_split(
        [data.paths[i] for i in rows], [FACET] * len(rows), list(labels), list(units), 0.25, seed
    )
    tr = split == "train"
    Xr = X[rows]
    return train_facet_head(
        FACET,
        Xr[tr],
        labels[tr],
        Xr[~tr],
        labels[~tr],
        strategies=strategies,
        seed=seed,
        groups_train=units[tr],
    )


def review_queue(head: FacetHead, data: Dataset, X: np.ndarray, pool: np.ndarray) -> pl.DataFrame:
    """The pool's rows a head sends to review, in the order `tagsmith review` shows them (`row`: data set index)."""
    table = pl.DataFrame(predict_table(head, [data.paths[i] for i in pool], X[pool]))
    table = table.with_columns(row=pl.Series(pool), threshold=pl.col("tag_id").replace_strict(head.thresholds))
    return review_priority(table.filter(pl.col("status") == "review"))


# ------------------------------------------------------------------------------------------ verdicts
def reviewer_verdicts(chosen: pl.DataFrame, truth: dict[str, str], start: int = 0) -> pl.DataFrame:
    """The verdict log a reviewer who knows the truth writes for `chosen` queue rows, in their order: accept the
    proposed tag when it is right, replace it by the right one otherwise. `start`: verdicts given before (times)."""
    rows = []
    for k, row in enumerate(chosen.iter_rows(named=True)):
        right = truth[row["media_id"]]
        seconds = start + k  # one verdict a second, so the log's order is the review's order
        rows.append(
            {
                "at": f"2026-01-01T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}",
                "who": "reviewer",
                "kind": "photo",
                "media_id": row["media_id"],
                "uri": row["media_id"],
                "facet": row["facet"],
                "tag_id": row["tag_id"],
                "verdict": "accept" if row["tag_id"] == right else "replace",
                "new_tag_id": None if row["tag_id"] == right else right,
                "start_s": None,
                "end_s": None,
                "via": "benchmark",
            }
        )
    return pl.DataFrame(rows, schema=LOG_SCHEMA)


def labelled_examples(verdict_log: pl.DataFrame) -> pl.DataFrame:
    """(media_id, tag_id, origin) of the `manual` labels the log makes: what the next run trains on."""
    labels = person_labels(verdict_log)
    return labels.filter(pl.col("status") == "manual").select("media_id", "tag_id", "origin").sort("media_id")


# ------------------------------------------------------------------------------------------ arms
class Bench:
    """The data set, its vectors, the examples, the pool and the test rows; trains and scores an arm."""

    def __init__(
        self,
        data: Dataset,
        X: np.ndarray,
        initial: np.ndarray,
        pool: np.ndarray,
        test: np.ndarray,
        strategies: tuple[str, ...] = STRATEGIES,
    ):
        self.data, self.X, self.initial, self.pool, self.test = data, X, initial, pool, test
        self.strategies = strategies
        self.row_of = {p: i for i, p in enumerate(data.paths)}
        self.truth = {data.paths[i]: str(data.labels[i]) for i in pool}

    def retrain(self, verdict_log: pl.DataFrame) -> tuple[FacetHead, pl.DataFrame]:
        added = labelled_examples(verdict_log)
        rows = np.concatenate([self.initial, [self.row_of[m] for m in added["media_id"]]]).astype(int)
        labels = np.concatenate([self.data.labels[self.initial], added["tag_id"].to_numpy()]).astype(str)
        return train_head(self.data, self.X, rows, labels, strategies=self.strategies), added

    def score(self, name: str, head: FacetHead, verdict_log: pl.DataFrame, added: pl.DataFrame, seconds: float):
        new = head.metrics["new_shoot"]
        reviewed = np.array([self.row_of[m] for m in verdict_log["media_id"]], dtype=int)
        return {
            "arm": name,
            "verdicts": verdict_log.height,
            "corrections": int((verdict_log["verdict"] == "replace").sum()) if verdict_log.height else 0,
            "tags_taught": int(added["tag_id"].n_unique()) if added.height else 0,
            "max_per_tag": int(added["tag_id"].value_counts()["count"].max()) if added.height else 0,
            "mean_cosine": mean_cosine(self.X[reviewed]),
            "examples": len(self.initial) + added.height,
            "strategy": head.strategy,
            "test": measured(head, self.X[self.test], self.data.labels[self.test]),
            "promised": {
                "top1": new["top1_projected"],
                "applied_precision": new["applied_precision"],
                "share_applied": new["share_applied"],
            },
            "train_seconds": round(seconds, 1),
        }


def mean_cosine(V: np.ndarray) -> float | None:
    """Mean pairwise cosine similarity of the reviewed photos: high means look-alikes, each teaching less."""
    if len(V) < 2:
        return None
    U = V / np.linalg.norm(V, axis=1, keepdims=True)
    sims = U @ U.T
    return round(float((sims.sum() - len(U)) / (len(U) * (len(U) - 1))), 4)


def run_arm(bench: Bench, name: str, verdict_log: pl.DataFrame) -> dict:
    started = time.perf_counter()
    head, added = bench.retrain(verdict_log)
    result = bench.score(name, head, verdict_log, added, time.perf_counter() - started)
    log.info("%s: %s", name, json.dumps(result))
    return result


def sessions(
    bench: Bench,
    head: FacetHead,
    n_sessions: int,
    per_session: int,
    order: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
) -> tuple[pl.DataFrame, FacetHead]:
    """`n_sessions` of `per_session` verdicts, the queue rebuilt by the head retrained after each session."""
    verdict_log = pl.DataFrame(schema=LOG_SCHEMA)
    for _ in range(n_sessions):
        reviewed = set(verdict_log["media_id"].to_list())
        left = np.array([i for i in bench.pool if bench.data.paths[i] not in reviewed])
        queue = review_queue(head, bench.data, bench.X, left)
        queue = order(queue) if order is not None else queue
        verdict_log = pl.concat(
            [verdict_log, reviewer_verdicts(queue.head(per_session), bench.truth, verdict_log.height)]
        )
        head, _ = bench.retrain(verdict_log)
    return verdict_log, head


def run_draw(data: Dataset, X: np.ndarray, args: argparse.Namespace, draw: int, orders=None) -> dict:
    """Every arm on one draw of the initial examples (`draw` seeds it)."""
    initial = initial_examples(data, args.shots, draw)
    pool = np.setdiff1d(np.flatnonzero(data.mask("train", "val")), initial)
    bench = Bench(data, X, initial, pool, np.flatnonzero(data.mask("test")), tuple(args.strategies))
    empty = pl.DataFrame(schema=LOG_SCHEMA)
    started = time.perf_counter()
    head0, _ = bench.retrain(empty)
    results = [
        bench.score("no review", head0, empty, empty.select("media_id", "tag_id"), time.perf_counter() - started)
    ]
    log.info("draw %d, no review: %s", draw, json.dumps(results[0]))
    queue = review_queue(head0, data, X, pool)
    log.info("draw %d, round 0: %d of %d pool photos in the review queue", draw, queue.height, len(pool))
    for n in (50, 200):
        results.append(run_arm(bench, f"queue order, first {n}", reviewer_verdicts(queue.head(n), bench.truth)))
    for seed in args.seeds:
        picked = np.random.default_rng(seed).choice(queue.height, min(200, queue.height), replace=False)
        results.append(run_arm(bench, f"random 200 (seed {seed})", reviewer_verdicts(queue[picked], bench.truth)))
    if not args.no_sessions:
        started = time.perf_counter()
        verdict_log, head = sessions(bench, head0, 4, 50)
        added = labelled_examples(verdict_log)
        results.append(
            bench.score("queue order, 4 sessions of 50", head, verdict_log, added, time.perf_counter() - started)
        )
    report = {"draw": draw, "examples": len(initial), "pool": len(pool), "test": len(bench.test), "queue": queue.height}
    if orders is not None:  # (ORDERS, compare_orders) from benchmarks/review_orders.py, its entry point
        ORDERS, compare_orders = orders  # noqa: N806 (the module's constant, handed in)
        report["orders"] = compare_orders(bench, head0)
        best = max(ORDERS, key=lambda o: report["orders"][o]["top1_B"])  # ties: the shipped order (first)
        report["chosen_order"] = best
        ordered = queue if ORDERS[best] is None else ORDERS[best](queue)  # chosen on the pool split; test once
        results.append(
            run_arm(bench, "order chosen on pool B, first 200", reviewer_verdicts(ordered.head(200), bench.truth))
        )
    if not args.no_ceiling:
        every = np.concatenate([initial, pool])
        started = time.perf_counter()
        head = train_head(data, X, every, data.labels[every].astype(str), strategies=bench.strategies)
        results.append(
            bench.score(
                "ceiling: every pool photo labelled",
                head,
                empty,
                empty.select("media_id", "tag_id"),
                time.perf_counter() - started,
            )
        )
        results[-1]["examples"] = len(every)
    return report | {"arms": results}


def summary(draws: list[dict]) -> list[dict]:
    """Per arm (random seeds pooled), over every draw: mean and sd of the test figures and of what was reviewed."""
    by_arm: dict[str, list[dict]] = {}
    for report in draws:
        for r in report["arms"]:
            by_arm.setdefault(r["arm"].split(" (seed")[0], []).append(r)
    out = []
    for arm, rs in by_arm.items():
        top1 = [r["test"]["top1"] for r in rs]
        out.append(
            {
                "arm": arm,
                "runs": len(rs),
                "top1": round(float(np.mean(top1)), 4),
                "top1_sd": round(float(np.std(top1)), 4),
                "balanced": round(float(np.mean([r["test"]["balanced"] for r in rs])), 4),
                # where nothing was applied precision is undefined: averaged over the runs that applied some
                "applied_precision": mean_defined([r["test"]["applied_precision"] for r in rs]),
                "share_applied": round(float(np.mean([r["test"]["share_applied"] for r in rs])), 4),
                "promised_top1": round(float(np.mean([r["promised"]["top1"] for r in rs])), 4),
                "corrections": round(float(np.mean([r["corrections"] for r in rs])), 1),
                "tags_taught": round(float(np.mean([r["tags_taught"] for r in rs])), 1),
                "max_per_tag": round(float(np.mean([r["max_per_tag"] for r in rs])), 1),
            }
        )
    return out


def mean_defined(values: list[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return round(float(np.mean(defined)), 4) if defined else None


def main(argv: list[str] | None = None, orders=None) -> None:
    """`orders`: (ORDERS, compare_orders), handed in by `python -m benchmarks.review_orders` (that module imports
    this one, never the other way round)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shots", type=int, default=5, help="example photos per tag before any review")
    parser.add_argument("--draws", type=int, nargs="+", default=[0], help="seeds of the initial examples' draw")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the random arm")
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), help="head strategies (default: all)")
    parser.add_argument("--no-sessions", action="store_true", help="leave out the 4 x 50 re-ranked arm")
    parser.add_argument("--no-ceiling", action="store_true", help="leave out the head on every labelled photo")
    parser.add_argument("--out", type=Path, default=OUT_JSON)
    embedding_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("ml").setLevel(logging.WARNING)
    data = load_dataset()
    X = get_embeddings("efficientnet-lite0", data, args)["vectors"]  # the library's default backbone, cached
    started = time.perf_counter()
    draws = [run_draw(data, X, args, draw, orders) for draw in args.draws]
    report = {
        "shots": args.shots,
        "strategies": args.strategies,
        "draws": draws,
        "summary": summary(draws),
        "seconds": round(time.perf_counter() - started),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    for draw in draws:
        print_table(draw, args.shots)
    print_summary(report)


def print_summary(report: dict) -> None:
    print(
        f"\nover {len(report['draws'])} draw(s) of the examples, strategies {' '.join(report['strategies'])}, "
        f"{report['seconds']} s"
    )
    print(f"{'arm':36s} runs  test top-1     balanced applied-prec share | promised | corr  tags max/tag")
    for r in report["summary"]:
        print(
            f"{r['arm']:36s} {r['runs']:4d}  {r['top1']:.3f} ± {r['top1_sd']:.3f}  {r['balanced']:.3f}    "
            f"{r['applied_precision'] or 0:.3f}        {r['share_applied']:.3f} | {r['promised_top1']:.3f}    | "
            f"{r['corrections']:5.1f} {r['tags_taught']:4.1f} {r['max_per_tag']:5.1f}"
        )


def print_table(report: dict, shots: int) -> None:
    print(
        f"\ndraw {report['draw']}: {report['examples']} examples ({shots} per tag), pool {report['pool']} photos, "
        f"{report['queue']} in the round-0 review queue, test {report['test']} photos (another session)"
    )
    print(
        f"{'arm':36s} verdicts corr tags max/tag cos  | test top-1 balanced applied-prec share | "
        "promised top-1 applied-prec share | strategy"
    )
    for r in report["arms"]:
        t, p = r["test"], r["promised"]
        cos = "-" if r["mean_cosine"] is None else f"{r['mean_cosine']:.2f}"
        print(
            f"{r['arm']:36s} {r['verdicts']:8d} {r['corrections']:4d} {r['tags_taught']:4d} {r['max_per_tag']:7d} "
            f"{cos:4s} | {t['top1']:.3f}      {t['balanced']:.3f}    {t['applied_precision'] or 0:.3f}        "
            f"{t['share_applied']:.3f} | {p['top1']:.3f}          {p['applied_precision'] or 0:.3f}        "
            f"{p['share_applied']:.3f} | {r['strategy']}"
        )
    for name, figures in report.get("orders", {}).items():
        print(f"  queue order {name:18s} on pool B: {figures}")
    if "chosen_order" in report:
        print(f"  chosen on pool B: {report['chosen_order']}")


if __name__ == "__main__":
    main()
