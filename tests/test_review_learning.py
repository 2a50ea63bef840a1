"""The review-learning benchmark's reviewer and queue orders (benchmarks/review_learning.py, review_orders.py).

The benchmark's figures are only as honest as its simulated reviewer: it must give the verdicts a person gives
(accept a right proposal, replace a wrong one by the truth), and those verdicts must become the examples the
pipeline's own rules make of them (ml/verdicts.py). Small tables, no data set, no training.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from benchmarks.review_learning import labelled_examples, mean_cosine, reviewer_verdicts
from benchmarks.review_orders import by_margin, tag_round_robin, uncertainty_frequency, unreachable_as_none
from ml.calibration import NEVER


def queue(rows: list[tuple[str, str, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"media_id": m, "facet": "product", "tag_id": t, "score": s, "threshold": 0.8, "candidates": "[]"}
            for m, t, s in rows
        ]
    )


def test_reviewer_accepts_right_proposals_and_replaces_wrong_ones_by_the_truth():
    proposed = queue([("a.jpg", "apple", 0.7), ("b.jpg", "apple", 0.6), ("c.jpg", "pear", 0.5)])
    truth = {"a.jpg": "apple", "b.jpg": "kiwi", "c.jpg": "pear"}
    log = reviewer_verdicts(proposed, truth)
    assert log.select("media_id", "verdict", "new_tag_id").rows() == [
        ("a.jpg", "accept", None),
        ("b.jpg", "replace", "kiwi"),
        ("c.jpg", "accept", None),
    ]
    assert log["at"].is_sorted()
    examples = labelled_examples(log)
    assert examples.rows() == [
        ("a.jpg", "apple", "review"),
        ("b.jpg", "kiwi", "correction"),
        ("c.jpg", "pear", "review"),
    ]


def test_later_sessions_keep_the_log_in_review_order():
    first = reviewer_verdicts(queue([("a.jpg", "apple", 0.7)]), {"a.jpg": "apple"})
    second = reviewer_verdicts(queue([("b.jpg", "apple", 0.7)]), {"b.jpg": "pear"}, start=3700)
    assert first["at"][0] < second["at"][0] == "2026-01-01T01:01:40"


def test_tag_round_robin_takes_one_photo_per_tag_in_turn():
    ordered = queue([("a1", "apple", 0.79), ("a2", "apple", 0.78), ("a3", "apple", 0.77), ("p1", "pear", 0.5)])
    assert tag_round_robin(ordered)["media_id"].to_list() == ["a1", "p1", "a2", "a3"]


def test_margin_order_puts_the_closest_call_first():
    ordered = queue([("sure", "apple", 0.9), ("torn", "apple", 0.5)]).with_columns(
        candidates=pl.Series(['[["apple", 0.9], ["pear", 0.05]]', '[["apple", 0.5], ["pear", 0.45]]'])
    )
    assert by_margin(ordered)["media_id"].to_list() == ["torn", "sure"]


def test_mean_cosine_of_look_alikes_is_higher_than_of_different_photos():
    alike = mean_cosine(np.array([[1.0, 0.0], [0.9, 0.1], [0.95, 0.05]]))
    apart = mean_cosine(np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    assert alike > 0.9
    assert apart == -0.3333  # one opposite pair of three, two orthogonal


def test_an_unreachable_threshold_no_longer_puts_the_surest_guess_first():
    """Calibration's NEVER (above 1) is clipped to 1 by the order shipped before: "near the threshold" then means
    "most confident". Read as no threshold, the photo nearest 0.5 comes first."""
    unreachable = queue([("sure", "apple", 0.9), ("torn", "apple", 0.5)]).with_columns(threshold=NEVER)
    assert uncertainty_frequency(unreachable)["media_id"].to_list() == ["sure", "torn"]
    assert unreachable_as_none(unreachable)["media_id"].to_list() == ["torn", "sure"]
