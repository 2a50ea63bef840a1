"""ml/frame_scores.py on its own: the heads' scores on a video's frames, range by range, without Dagster."""

import numpy as np
from sklearn.linear_model import LogisticRegression

from ml.facet_head import FacetHead
from ml.frame_scores import score_video_frames, top_tags


def _near(axis: int, n: int, rng: np.random.Generator) -> np.ndarray:
    X = np.zeros((n, 3)) + rng.normal(0.0, 0.05, size=(n, 3))
    X[:, axis] += 1.0
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _head(model_id: str | None) -> FacetHead:
    rng = np.random.default_rng(7)
    X = np.concatenate([_near(0, 20, rng), _near(1, 20, rng)])
    y = np.array([0] * 20 + [1] * 20)
    return FacetHead(
        "product",
        "logreg",
        ["mug", "vase"],
        LogisticRegression().fit(X, y),
        {"mug": 0.5, "vase": 0.5},
        prototypes=np.eye(3)[:2].astype(np.float32),
        min_familiarity=0.8,
        model_id=model_id,
    )


def test_frames_are_scored_range_by_range_and_unfamiliar_frames_recognise_nothing():
    rng = np.random.default_rng(3)
    ranges = {
        "lite0": [
            ([0.0, 1.0], _near(0, 2, rng)),  # a mug on screen
            ([600.0, 601.0, 602.0], np.concatenate([_near(1, 2, rng), np.eye(3)[2:]])),  # a vase, then nothing
        ]
    }
    read = []

    def ranges_of(model: str):
        read.append(model)
        return iter(ranges.get(model, []))

    heads = {"product": _head(None), "colorway": _head("lite1")}  # colorway's backbone embedded no frame yet
    scored = score_video_frames(heads, ranges_of, "lite0")
    assert sorted(read) == ["lite0", "lite1"]  # each backbone's frames read once
    assert list(scored) == ["product"]
    product = scored["product"]
    assert product.stamps == [0.0, 1.0, 600.0, 601.0, 602.0]
    assert product.scores.shape == (5, 2) and product.scores.dtype == np.float32
    tags, scores = top_tags(product.scores, heads["product"].classes)
    assert tags == ["mug", "mug", "vase", "vase", None]
    assert scores[4] is None and all(s > 0.5 for s in scores[:4])
    assert product.scores[4].tolist() == [0.0, 0.0]


def test_a_video_without_frames_scores_no_facet():
    assert score_video_frames({"product": _head(None)}, lambda model: iter([]), "lite0") == {}
