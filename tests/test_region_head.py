"""ml/region_head.py without pictures: what a multi facet's head makes of detections and whole-photo scores, how
its strategy is chosen, and how its thresholds keep the `none` photos clean."""

import numpy as np

from ml.calibration import NEVER
from ml.multilabel import MultiLabelHead
from ml.region_head import RegionHead, region_floor
from ml.region_training import choose, judge
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
    from ml.region_training import lowest_in_gap

    scores = np.array([[0.70, 0.0], [0.52, 0.0], [0.0, 0.42], [0.0, 0.36], [0.0, 0.0]])
    # calibrated at the lowest right score (0.52); the highest score under it is 0.42 (a wrong pair)
    got = lowest_in_gap({"acme": 0.52, "globex": NEVER}, scores, region_floor(SPEC), lowest=0.4)
    assert got["globex"] == NEVER and 0.42 < got["acme"] < 0.4201
    # no wrong score near: not below `lowest`
    assert lowest_in_gap({"acme": 0.52}, scores[:2], region_floor(SPEC), lowest=0.4) == {"acme": 0.4}


def _scene(rng, size, objects):
    """A photo: noisy background, `objects` = [(colour, shape, (x, y, side))] flat shapes (no texture)."""
    from PIL import Image, ImageDraw

    w, h = size
    base = rng.integers(90, 170, (h // 8, w // 8, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((w, h))
    draw = ImageDraw.Draw(image)
    for colour, shape, (x, y, side) in objects:
        box = (x, y, x + side, y + side)
        (draw.ellipse if shape == "disc" else draw.rectangle)(box, fill=colour)
    return image


def test_windows_find_a_flat_item_where_keypoints_cannot_and_every_channel_is_compared(tmp_path):
    """Flat-coloured items (a rental sofa is not a logo): the regions channel sees few keypoints, so the
    whole-photo and window channels are computed and compared; the window head puts its box on the item."""
    from PIL import Image

    from ml.backbones import BackboneSpec
    from ml.crop_channel import crop_task, train_crop_head, window_task
    from ml.media import LocalFiles
    from ml.region_head import MultiExample
    from ml.region_training import train_region_head

    rng = np.random.default_rng(4)
    items = {"sofa": ((200, 40, 40), "disc"), "table": ((40, 60, 200), "square")}
    examples, paths = [], []
    for n in range(24):
        tag = ["sofa", "table", None][n % 3]
        objects = [(*items[tag], (rng.integers(10, 60), rng.integers(10, 40), 70))] if tag else []
        path = tmp_path / f"ex{n}.jpg"
        _scene(rng, (160, 120), objects).save(path, quality=90)
        examples.append(MultiExample(f"m{n}", str(path), frozenset([tag] if tag else []), f"g{n}"))
        paths.append(str(path))
    spec = BackboneSpec(threads=1)
    X = spec.build().embed([Image.open(p).convert("RGB") for p in paths])
    backgrounds = []
    for n in range(3):
        path = tmp_path / f"bg{n}.jpg"
        _scene(rng, (320, 240), []).save(path, quality=90)
        backgrounds.append(str(path))

    def run(fn, calls):
        return [fn(*c) for c in calls]

    # the sofa examples' OCR read its label (confusables: S0FA), the tables' nothing
    corners = [20, 20, 60, 20, 60, 30, 20, 30]
    ocr_of = {e.media_id: [("S0FA", 0.9, corners, 160, 120)] for e in examples if "sofa" in e.labels}
    # 8 photos per tag: the lower bound of 8 right of 8 is 0.75, so the target is 0.6
    head = train_region_head("inventory", examples, X, LocalFiles(), run, 0.6, seed=0, crop_spec=spec,
                             backgrounds=backgrounds, ocr_of=ocr_of, identifiers={"sofa": ["Sofa"], "table": []})
    assert head.metrics["strategies"]["regions"]["accuracy"] < 0.98
    assert {"regions+ocr", "whole", "crops", "regions+crops"} <= set(head.metrics["compared"])
    assert head.metrics["strategies"]["regions+ocr"]["balanced_accuracy"] > 0.45  # the sofa read on every photo
    assert head.strategy != "regions"

    # the window head on a scene with a small sofa in one corner: its best window holds the sofa
    labels = [set(e.labels) for e in examples]
    negatives = window_task(spec, backgrounds, LocalFiles())
    crop_head = train_crop_head("inventory", X, labels, np.concatenate([v for _, v in negatives]), 0.8, 0)
    scene = tmp_path / "scene.jpg"
    _scene(rng, (640, 480), [(*items["sofa"], (470, 320, 110))]).save(scene, quality=90)
    found = {d.tag_id: d for d in crop_task(spec, crop_head, [str(scene)], LocalFiles())[0]}
    assert "sofa" in found
    x, y, w, h = found["sofa"].box
    assert x <= 525 / 640 <= x + w and y <= 375 / 480 <= y + h  # the window holds the sofa's centre


def test_word_marks_are_boxed_where_ocr_read_them():
    from ml.word_marks import word_mark_detections

    corners = [64, 48, 192, 48, 192, 96, 64, 96]  # 4 corners in pixels of a 640x480 read
    rows = [("ACME", 0.9, corners, 640, 480), ("GL0BEX INC", 0.8, corners, 640, 480)]
    rows.append(("Initek", 0.99, corners, 640, 480))  # another word
    found = word_mark_detections(rows, {"acme": ["Acme"], "globex": ["Globex"], "initech": ["Initech"]})
    assert [(d.tag_id, round(d.score, 3)) for d in found] == [("acme", 0.9), ("globex", 0.8)]  # confusables folded
    assert np.allclose(found[0].box, (0.1, 0.1, 0.2, 0.1))
    assert word_mark_detections([("Acne", 0.99, corners, None, None)], {"acme": ["Acme"]}) == []  # size unknown
