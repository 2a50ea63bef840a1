"""Other queue orders for the review-learning benchmark, compared without looking at the test split:
`python -m benchmarks.review_orders [review_learning's options]` runs review_learning.py with them.

The pool is split once into a part people review (A) and a part that only scores (B), group-aware: the pool's
holdout units as the pipeline would derive them (ml/groups.py), about 30 % of them in B (ml/splits.py). The
round-0 head predicts A; each order picks 200 of A's review queue; the verdicts are added and the head is
retrained exactly as in the main benchmark; the figure is top-1 on B. Test photos play no part: an order that
wins here can be checked on test afterwards, once, which is what the report does for the best of them.

Orders (each a function of the queue as `review_queue` returns it, with `row`, `score`, `threshold`,
`candidates`):
- `priority`: ml/review_order.py as shipped (a hash shuffle: what `random` measures, one fixed draw);
- `uncertainty x frequency`: the order shipped before (uncertainty near the threshold x (1 + ln photos of the tag
  waiting)), which lost to random;
- `... NEVER as none`: that order with a tag whose threshold is unreachable (NEVER: nothing of it is applied)
  read as a tag without one;
- `uncertainty`: that order without the frequency factor;
- `margin`: smallest gap between the best two candidates' scores first (classic margin sampling);
- `least confident`: lowest top score first;
- `tag round-robin`: uncertainty x frequency, but one photo per proposed tag in turn (each tag's best first), so
  no tag takes a run of look-alikes;
- `random`: uniform over the queue, mean of 3 seeds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import numpy as np
import polars as pl

from benchmarks.review_learning import Bench, review_queue, reviewer_verdicts
from benchmarks.trust import example_groups
from ml.facet_head import FacetHead
from ml.splits import group_holdout_split

log = logging.getLogger("benchmarks.review_orders")

N_VERDICTS = 200


def uncertainty_frequency(queue: pl.DataFrame) -> pl.DataFrame:
    """The order shipped before: uncertainty = 1 - |score - threshold| / max(threshold, 1 - threshold) (a missing
    threshold read as 0.5) times 1 + ln(photos of the same tag in the queue), highest first."""
    threshold = pl.col("threshold").fill_null(0.5).clip(0.0, 1.0)
    span = pl.max_horizontal(threshold, 1.0 - threshold).clip(lower_bound=1e-6)
    uncertainty = (1.0 - (pl.col("score").fill_null(0.0) - threshold).abs() / span).clip(0.0, 1.0)
    frequency = 1.0 + pl.len().over("facet", "tag_id").cast(pl.Float64).log()
    return queue.with_columns(priority=(uncertainty * frequency).round(6)).sort(
        ["priority", "score", "media_id"], descending=[True, False, False], nulls_last=True
    )


def by_uncertainty(queue: pl.DataFrame) -> pl.DataFrame:
    threshold = pl.col("threshold").clip(0.0, 1.0)
    span = pl.max_horizontal(threshold, 1.0 - threshold).clip(lower_bound=1e-6)
    return queue.with_columns(u=1.0 - (pl.col("score") - threshold).abs() / span).sort(
        ["u", "score", "media_id"], descending=[True, False, False]
    )


def by_margin(queue: pl.DataFrame) -> pl.DataFrame:
    def margin(candidates: str) -> float:
        scores = [s for _, s in json.loads(candidates)]
        return scores[0] - (scores[1] if len(scores) > 1 else 0.0)

    return queue.with_columns(m=pl.col("candidates").map_elements(margin, return_dtype=pl.Float64)).sort(
        ["m", "media_id"]
    )


def tag_round_robin(queue: pl.DataFrame) -> pl.DataFrame:
    """Uncertainty x frequency within each proposed tag; the k-th photo of every tag before any tag's (k+1)-th,
    tags in the order of their best photo."""
    ranked = (
        uncertainty_frequency(queue.drop("priority", strict=False))
        .with_row_index("rank")
        .with_columns(turn=pl.col("rank").rank("ordinal").over("tag_id"))
    )
    return ranked.sort(["turn", "rank"]).drop("rank", "turn")


def unreachable_as_none(queue: pl.DataFrame) -> pl.DataFrame:
    """Uncertainty x frequency with an unreachable threshold (calibration's NEVER, above 1) read as no threshold
    (0.5): clipped to 1, it turns "near the threshold" into "most confident"."""
    return uncertainty_frequency(
        queue.drop("priority", strict=False).with_columns(
            threshold=pl.when(pl.col("threshold") > 1.0).then(None).otherwise("threshold")
        )
    )


ORDERS: dict[str, Callable[[pl.DataFrame], pl.DataFrame] | None] = {
    "priority": None,  # review_queue already returns the shipped order
    "uncertainty x frequency": lambda queue: uncertainty_frequency(queue.drop("priority", strict=False)),
    "uncertainty x frequency, NEVER as none": unreachable_as_none,
    "uncertainty": by_uncertainty,
    "margin": by_margin,
    "least confident": lambda queue: queue.sort(["score", "media_id"]),
    "tag round-robin": tag_round_robin,
}


def pool_split(bench: Bench, seed: int = 0, frac: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """(A, B): the pool's rows split by holdout units as the pipeline derives them; B is about `frac`."""
    pool = bench.pool
    units, _ = example_groups(bench.data, pool, bench.X[pool])
    labels = [str(x) for x in bench.data.labels[pool]]
    side = group_holdout_split([bench.data.paths[i] for i in pool], ["product"] * len(pool), labels, units, frac, seed)
    return pool[side == "train"], pool[side == "holdout"]


def compare_orders(bench: Bench, head0: FacetHead, seeds: tuple[int, ...] = (0, 1, 2)) -> dict:
    """{order: {"top1_B": ..., ...}} for 200 verdicts from A's queue; B scores. The winner is also scored on test."""
    part_a, part_b = pool_split(bench)
    queue = review_queue(head0, bench.data, bench.X, part_a)
    log.info("orders: pool A %d (queue %d), pool B %d", len(part_a), queue.height, len(part_b))
    out: dict[str, dict] = {}

    def score(name: str, chosen: pl.DataFrame) -> dict:
        head, added = bench.retrain(reviewer_verdicts(chosen, bench.truth))
        scores = head.predict_scores(bench.X[part_b])
        top1 = float(np.mean(np.array(head.classes)[scores.argmax(axis=1)] == bench.data.labels[part_b]))
        figures = {
            "top1_B": round(top1, 4),
            "corrections": int(sum(chosen["tag_id"][i] != bench.truth[m] for i, m in enumerate(chosen["media_id"]))),
            "tags_taught": int(added["tag_id"].n_unique()),
            "strategy": head.strategy,
        }
        log.info("order %s: %s", name, figures)
        return figures

    head0_scores = head0.predict_scores(bench.X[part_b])
    out["no review"] = {
        "top1_B": round(
            float(np.mean(np.array(head0.classes)[head0_scores.argmax(axis=1)] == bench.data.labels[part_b])), 4
        )
    }
    for name, order in ORDERS.items():
        ordered = queue if order is None else order(queue)
        out[name] = score(name, ordered.head(N_VERDICTS))
    randoms = [
        score(f"random (seed {s})", queue[np.random.default_rng(s).choice(queue.height, N_VERDICTS, replace=False)])
        for s in seeds
    ]
    out["random"] = {
        "top1_B": round(float(np.mean([r["top1_B"] for r in randoms])), 4),
        "top1_B_sd": round(float(np.std([r["top1_B"] for r in randoms])), 4),
        "tags_taught": round(float(np.mean([r["tags_taught"] for r in randoms])), 1),
    }
    return out


if __name__ == "__main__":
    import sys

    from benchmarks.review_learning import main

    main(sys.argv[1:], orders=(ORDERS, compare_orders))
