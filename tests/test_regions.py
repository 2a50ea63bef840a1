"""Small logos in busy photos (ml/regions.py): each pasted logo found with its tag and a box, nothing found where
there is no logo, a look-alike (same shape and colours, another word) not taken for the logo, and sliding-window
proposals covering the frame. Photos are generated here (tagsmith/logo_scenes.py), from seeded generators."""

import numpy as np
import pytest

from ml.regions import Detection, LogoIndex, box_iou, detect, proposals, suppress
from tagsmith.logo_scenes import LOGOS, LOOKALIKE, Placement, clutter, example_photo, scene

TAGS = LOGOS[:5]


@pytest.fixture(scope="module")
def index() -> LogoIndex:
    rng = np.random.default_rng(14)
    return LogoIndex.build({logo.tag_id: [example_photo(logo, rng) for _ in range(6)] for logo in TAGS})


def found(detections: list[Detection], truths: list[tuple[str, tuple]]) -> list[float]:
    """Per truth: the IoU of the best detection with its tag (0 when none)."""
    return [max((box_iou(d.box, box) for d in detections if d.tag_id == tag), default=0.0) for tag, box in truths]


def test_small_rotated_warped_logos_are_found_with_their_tag_and_box(index):
    rng = np.random.default_rng(1)
    busy, truths = scene(
        [
            Placement(TAGS[0], 0.03, 20, 0.2),
            Placement(TAGS[1], 0.02, -20, 0.25),
            Placement(TAGS[2], 0.04, 20, 0.15),
        ],
        rng,
    )
    detections = detect(index, busy)
    ious = found(detections, truths)
    assert min(ious) >= 0.5, (ious, detections)
    assert len(detections) == len(truths), detections  # nothing else: every detection is one of the logos
    assert all(0 <= d.score <= 1 and d.inliers >= 10 for d in detections)
    assert all(0 <= v <= 1 for d in detections for v in (d.box[0], d.box[1], d.box[0] + d.box[2], d.box[1] + d.box[3]))


def test_a_photo_searched_twice_gives_the_same_regions(index):
    """The descriptor index's randomised KD-trees are seeded: the same photo, the same boxes and scores, every
    time (a run and `tag now` must agree)."""
    busy, _ = scene([Placement(TAGS[0], 0.03, 20, 0.2), Placement(TAGS[2], 0.02, -20, 0.25)], np.random.default_rng(7))
    first = detect(index, busy, threshold=0.0)
    assert first and all(detect(index, busy, threshold=0.0) == first for _ in range(3))


def test_a_partly_hidden_logo_is_still_found(index):
    rng = np.random.default_rng(2)
    busy, truths = scene([Placement(TAGS[3], 0.035, -20, 0.2, occluded=0.2), Placement(TAGS[4], 0.025, 20, 0.2)], rng)
    detections = detect(index, busy)
    ious = found(detections, truths)
    assert min(ious) >= 0.5, (ious, detections)
    assert len(detections) == len(truths), detections


def test_photos_without_a_logo_yield_nothing(index):
    rng = np.random.default_rng(3)
    for size in ((640, 480), (480, 640), (1024, 768)):
        assert detect(index, clutter(size, rng)) == []
    assert detect(index, np.asarray(clutter((640, 480), rng))) == []  # arrays as well as PIL images


def test_a_lookalike_is_not_taken_for_the_logo(index):
    rng = np.random.default_rng(4)
    assert LOOKALIKE.shape == TAGS[0].shape and LOOKALIKE.plate == TAGS[0].plate and LOOKALIKE.word != TAGS[0].word
    busy, _ = scene([Placement(LOOKALIKE, 0.04, 20, 0.1)], rng)
    assert detect(index, busy) == []
    low = detect(index, busy, threshold=0.0)  # what is under the default threshold: the shared shape at most
    assert all(d.inliers < 10 for d in low), low
    real, truths = scene([Placement(TAGS[0], 0.04, 20, 0.1)], np.random.default_rng(4))  # the same spot, the logo
    assert [d.tag_id for d in detect(index, real)] == [TAGS[0].tag_id]
    assert min(found(detect(index, real), truths)) >= 0.5


def test_suppression_keeps_the_stronger_of_overlapping_boxes_across_tags():
    strong = Detection("a", 0.8, (0.1, 0.1, 0.2, 0.2), 60)
    weak = Detection("b", 0.5, (0.12, 0.11, 0.2, 0.2), 15)
    inner = Detection("c", 0.45, (0.15, 0.15, 0.05, 0.05), 12)
    apart = Detection("b", 0.5, (0.6, 0.6, 0.2, 0.2), 15)
    assert suppress([weak, apart, inner, strong], 0.3, 0.7) == [strong, apart]


def test_box_iou():
    assert box_iou((0, 0, 1, 1), (0, 0, 1, 1)) == 1.0
    assert box_iou((0, 0, 0.5, 1), (0.5, 0, 0.5, 1)) == 0.0
    assert box_iou((0, 0, 0.5, 0.5), (0.25, 0.25, 0.5, 0.5)) == pytest.approx(0.0625 / 0.4375)
    assert box_iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


@pytest.mark.parametrize("size", [(640, 480), (480, 640), (1000, 300)])
def test_proposals_cover_the_frame_at_each_scale(size):
    width, height = size
    scales = (0.25, 0.5, 1.0)
    boxes = proposals(width, height, scales=scales, overlap=0.5)
    short = min(width, height)
    for scale in scales:
        at_scale = [b for b in boxes if abs(b[2] * width - scale * short) < 1e-6]
        grid = np.zeros((height, width), bool)
        for x, y, w, h in at_scale:
            assert -1e-9 <= x and -1e-9 <= y and x + w <= 1 + 1e-9 and y + h <= 1 + 1e-9
            assert abs(w * width - h * height) < 1e-6  # square in pixels
            grid[round(y * height) : round((y + h) * height), round(x * width) : round((x + w) * width)] = True
        assert grid.all(), (scale, size)
        steps = np.diff(sorted({b[0] for b in at_scale})) * width
        assert (steps <= 0.5 * scale * short + 1e-6).all()  # neighbours overlap half a side at least
    assert len({round(b[2] * width) for b in boxes}) == len(scales)


def test_proposals_count_and_reject_bad_arguments():
    boxes = proposals(640, 480, scales=(0.25, 0.5, 1.0), overlap=0.5)
    sides = [round(b[2] * 640) for b in boxes]
    assert [sides.count(s) for s in (120, 240, 480)] == [10 * 7, 5 * 3, 2 * 1]  # strides 60, 120, 240 px
    assert boxes[-2:] == [(0.0, 0.0, 0.75, 1.0), (0.25, 0.0, 0.75, 1.0)]  # the last one flush with the right edge
    for bad in ({"scales": (1.5,)}, {"scales": (0.0,)}, {"overlap": 1.0}):
        with pytest.raises(ValueError):
            proposals(640, 480, **bad)


def test_a_tag_with_one_example_still_finds_its_logo_with_a_box_on_the_matched_points():
    """No other example to confirm the logo region: all its keypoints are kept, the box is the matched points'."""
    rng = np.random.default_rng(14)
    single = LogoIndex.build({logo.tag_id: [example_photo(logo, rng)] for logo in TAGS[:3]})
    assert all(r.region is None for r in single.references) and single.tags == sorted(t.tag_id for t in TAGS[:3])
    busy, truths = scene(
        [Placement(TAGS[0], 0.03, 20, 0.2), Placement(TAGS[1], 0.02, -20, 0.25), Placement(TAGS[2], 0.04, 20, 0.15)],
        np.random.default_rng(1),
    )
    detections = detect(single, busy)
    assert sorted(d.tag_id for d in detections) == sorted(tag for tag, _ in truths), detections
    assert min(found(detections, truths)) > 0.1, detections  # measured: 0.16 to 0.56, inside the logo
