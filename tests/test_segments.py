import numpy as np
import pytest

from ml.segments import SegmentParams, build_segments, format_timestamp, smooth_scores

CLASSES = ["acme", "globex"]


def frames(pattern: str) -> np.ndarray:
    """One row per second: 'a' = acme clearly, 'g' = globex clearly, '.' = nothing, 'w' = weak acme."""
    rows = {"a": [0.95, 0.05], "g": [0.05, 0.95], ".": [0.1, 0.1], "w": [0.45, 0.1]}
    return np.array([rows[c] for c in pattern], dtype=np.float32)


def test_consecutive_hits_merge_and_flicker_is_smoothed_over():
    scores = frames("..aaa.aaa...gg..")
    segs = build_segments(
        list(range(len(scores))), scores, CLASSES, {"acme": 0.6, "globex": 0.6}, SegmentParams(window=1, max_gap_s=2.0)
    )
    assert [(s["tag_id"], s["start_s"], s["end_s"], s["status"]) for s in segs] == [
        ("acme", 2.0, 9.0, "applied"),
        ("globex", 12.0, 14.0, "applied"),
    ]


def test_short_or_weak_stretches_go_to_review():
    scores = frames("....a.......wwww....")
    segs = build_segments(
        list(range(len(scores))),
        scores,
        CLASSES,
        {"acme": 0.6, "globex": 0.6},
        SegmentParams(window=1, min_duration_s=2.0),
    )
    assert [(s["start_s"], s["end_s"], s["status"]) for s in segs] == [(4.0, 5.0, "review"), (12.0, 16.0, "review")]
    assert segs[1]["peak_score"] == pytest.approx(0.45)


def test_unsorted_and_uneven_timestamps():
    ts = [3.0, 0.0, 1.0, 2.0, 2.6]  # a scene-change frame at 2.6 between interval samples
    scores = np.array([[0.9, 0.1], [0.1, 0.1], [0.1, 0.1], [0.1, 0.1], [0.9, 0.1]], dtype=np.float32)
    segs = build_segments(ts, scores, CLASSES, {"acme": 0.5}, SegmentParams(window=1, min_duration_s=1.0))
    assert [(s["start_s"], s["end_s"], s["status"]) for s in segs] == [(2.6, 4.0, "applied")]


def test_smoothing_keeps_length_and_averages():
    out = smooth_scores(np.array([[0.0], [3.0], [0.0]], dtype=np.float32), 3)
    assert out[:, 0].tolist() == pytest.approx([1.5, 1.0, 1.5])
    assert build_segments([], np.zeros((0, 2)), CLASSES, {}) == []
    with pytest.raises(ValueError):
        build_segments([0.0], np.zeros((2, 2)), CLASSES, {})


def test_format_timestamp():
    assert format_timestamp(38 * 60 + 12 + 3600 * 0) == "00:38:12"
    assert format_timestamp(4 * 3600 + 5) == "04:00:05"


def test_smoothing_does_not_cross_a_scene_cut():
    # scene A (tag a) for 4 samples, a cut at 4.4 s, then scene B (tag b): without the cut, the frame right
    # after it is averaged with scene A and the segment of b starts one sample late
    ts = [0.0, 1.0, 2.0, 3.0, 4.0, 4.4, 5.0, 6.0, 7.0]
    scores = np.array([[1.0, 0.0]] * 5 + [[0.4, 0.6]] + [[0.3, 0.7]] * 3)
    thresholds = {"a": 0.5, "b": 0.5}
    blurred = build_segments(ts, scores, ["a", "b"], thresholds)
    assert [s["start_s"] for s in blurred if s["tag_id"] == "b"] == [5.0]
    sharp = build_segments(ts, scores, ["a", "b"], thresholds, scene_starts=[4.4])
    assert [(s["tag_id"], s["start_s"], s["end_s"]) for s in sharp] == [("a", 0.0, 4.4), ("b", 4.4, 8.0)]


def test_evaluate_segments_matches_one_to_one_and_measures_boundaries():
    from ml.segments import evaluate_segments

    truth = [
        {"media": "a.mp4", "tag_id": "x", "start_s": 2.0, "end_s": 10.0},
        {"media": "a.mp4", "tag_id": "y", "start_s": 12.0, "end_s": 20.0},
        {"media": "b.mp4", "tag_id": "x", "start_s": 0.0, "end_s": 5.0},
    ]
    predicted = [
        {"media": "a.mp4", "tag_id": "x", "start_s": 2.4, "end_s": 10.0},  # match: errors 0.4 and 0
        {"media": "a.mp4", "tag_id": "x", "start_s": 3.0, "end_s": 9.0},  # same truth, already taken
        {"media": "a.mp4", "tag_id": "y", "start_s": 19.0, "end_s": 25.0},  # IoU 1/13: no match
        {"media": "b.mp4", "tag_id": "x", "start_s": 1.0, "end_s": 5.5},  # match: errors 1.0 and 0.5
    ]
    report = evaluate_segments(predicted, truth)
    assert (report["matched"], report["precision"], report["recall"]) == (2, 0.5, round(2 / 3, 4))
    assert sorted(report["boundary_errors"]) == [0.0, 0.4, 0.5, 1.0]
    assert report["boundary_error_median_s"] == 0.45
    empty = evaluate_segments([], truth)
    assert empty["precision"] is None and empty["recall"] == 0.0 and empty["boundary_error_median_s"] is None


def test_text_read_on_one_frame_counts_for_its_scene_only():
    from ml.frame_scores import spread_within_scenes

    ts = [0.0, 1.0, 2.0, 3.0, 3.5, 4.0, 12.0]
    evidence = np.zeros((7, 2))
    evidence[1, 0] = 0.9  # the label read once, at 1 s
    spread = spread_within_scenes(ts, evidence, cuts=[3.5], window_s=5.0)
    assert spread[:, 0].tolist() == [0.9, 0.9, 0.9, 0.9, 0.0, 0.0, 0.0]  # not past the cut at 3.5 s
    assert spread_within_scenes(ts, evidence, cuts=[], window_s=5.0)[6, 0] == 0.0  # nor beyond the window
