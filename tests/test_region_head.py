"""ml/region_head.py without pictures: what a multi facet's head makes of detections and whole-photo scores, how
its strategy is chosen, and how its thresholds keep the `none` photos clean."""

import numpy as np

from ml.calibration import NEVER
from ml.multilabel import MultiLabelHead
from ml.region_head import RegionHead, choose, judge, region_floor
from ml.regions import Detection, RegionSpec

SPEC = RegionSpec()


def head(strategy="regions", whole=None):
    return RegionHead("sponsor", ["acme", "globex", "hooli"], strategy, {"acme": 0.5, "globex": 0.6, "hooli": NEVER},
                      SPEC, whole=whole)


def test_each_tag_found_is_a_row_with_its_best_box_and_a_photo_with_none_gets_no_row():
    found = [
        Detection("acme", 0.55, (0.1, 0.1, 0.1, 0.05), 18),
        Detection("acme", 0.70, (0.5, 0.5, 0.1, 0.05), 35),  # the same logo twice: its best box
        Detection("globex", 0.45, (0.2, 0.6, 0.1, 0.05), 12),  # above the floor, under its threshold: review
        Detection("hooli", 0.90, (0.7, 0.1, 0.1, 0.05), 135),  # a tag whose target no score reached: review
        Detection("initech", 0.9, (0.0, 0.0, 0.1, 0.1), 135),  # not a tag of this head
    ]
    rows = head().tag_rows(found, None)
    assert [(r["tag_id"], r["status"], r["box"]) for r in rows] == [
        ("hooli", "review", [0.7, 0.1, 0.1, 0.05]),
        ("acme", "applied", [0.5, 0.5, 0.1, 0.05]),
        ("globex", "review", [0.2, 0.6, 0.1, 0.05]),
    ]
    assert head().tag_rows([], None) == []
    assert region_floor(SPEC) == 8 / 23


def test_fused_heads_take_the_stronger_channel_and_its_box():
    # whole-photo heads: globex's logit is large, acme's small
    whole = MultiLabelHead("sponsor", ["acme", "globex", "hooli"], np.eye(3), np.array([-5.0, 5.0, -5.0]),
                           {"acme": 0.5, "globex": 0.6, "hooli": NEVER})
    rows = head("regions+whole", whole).tag_rows([Detection("acme", 0.8, (0.1, 0.1, 0.2, 0.1), 60)], np.zeros(3))
    assert [(r["tag_id"], r["status"], r["box"]) for r in rows] == [
        ("globex", "applied", None),  # the whole photo: no box
        ("acme", "applied", [0.1, 0.1, 0.2, 0.1]),
    ]


def test_thresholds_keep_none_photos_clean_and_the_simpler_strategy_wins_ties():
    rng = np.random.default_rng(0)
    n = 200
    Y = np.zeros((n, 2), np.int8)
    Y[:80, 0] = 1
    Y[80:160, 1] = 1  # the last 40 photos show neither tag
    scores = np.where(Y == 1, rng.uniform(0.55, 0.95, Y.shape), 0.0)
    scores[160:, 0] = rng.uniform(0.35, 0.5, 40)  # the none photos' false matches, weaker than the true ones
    judged = judge(scores, Y, ["acme", "globex"], 0.95, region_floor(SPEC))
    assert judged["none_false_positive_rate"] <= 0.05 and judged["applied_precision"] >= 0.95
    assert judged["thresholds"]["acme"] > 0.48 and judged["per_tag"]["globex"]["recall"] == 1.0
    assert choose({"regions": {"accuracy": 0.90}, "whole": {"accuracy": 0.91}, "regions+whole": {"accuracy": 0.97}}) \
        == "regions+whole"
    assert choose({"regions": {"accuracy": 0.90}, "whole": {"accuracy": 0.91}, "regions+whole": {"accuracy": 0.915}}) \
        == "regions"


def test_thresholds_take_the_lowest_score_the_holdout_cannot_tell_apart():
    from ml.region_head import lowest_in_gap

    scores = np.array([[0.70, 0.0], [0.52, 0.0], [0.0, 0.42], [0.0, 0.36], [0.0, 0.0]])
    # calibrated at the lowest right score (0.52); the highest score under it is 0.42 (a wrong pair)
    got = lowest_in_gap({"acme": 0.52, "globex": NEVER}, scores, region_floor(SPEC), lowest=0.4)
    assert got["globex"] == NEVER and 0.42 < got["acme"] < 0.4201
    # no wrong score near: not below `lowest`
    assert lowest_in_gap({"acme": 0.52}, scores[:2], region_floor(SPEC), lowest=0.4) == {"acme": 0.4}
