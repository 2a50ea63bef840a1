"""Multi-label facets (ml/multilabel.py): several tags or none per photo, thresholds that hold on new shoots."""

from __future__ import annotations

import numpy as np
import pytest

from ml.multilabel import NONE, label_matrix, train_multilabel_head

TAGS = ["acme", "globex", "hooli", "initech", "northwind", "umbrella"]
DIM = 48


def event_shoots(rng: np.random.Generator, means: np.ndarray, shoots: int, photos: int):
    """Embeddings of photos of `shoots` shoots: each photo shows 0-3 tags (a quarter none), and each shoot adds
    its own light and background (the near-copy effect a holdout must not be fooled by)."""
    X, labels, groups = [], [], []
    for s in range(shoots):
        offset = rng.normal(0, 0.3, DIM)
        for _ in range(photos):
            n = rng.choice([0, 1, 2, 3], p=[0.25, 0.4, 0.25, 0.1])
            shown = set(rng.choice(len(TAGS), size=n, replace=False).tolist())
            v = offset + rng.normal(0, 0.3, DIM) + sum((means[k] for k in shown), np.zeros(DIM))
            X.append(v / np.linalg.norm(v))
            labels.append({TAGS[k] for k in shown} or {NONE})
            groups.append(s)
    return np.array(X), labels, np.array(groups)


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(7)
    means = rng.normal(0, 1, (len(TAGS), DIM))
    means = 3.0 * means / np.linalg.norm(means, axis=1, keepdims=True)
    X, labels, groups = event_shoots(rng, means, shoots=20, photos=40)
    hold = groups >= 12  # eight whole shoots held out
    head = train_multilabel_head(
        "sponsor", X[~hold], [labels[i] for i in np.flatnonzero(~hold)], X[hold],
        [labels[i] for i in np.flatnonzero(hold)], target_precision=0.95,
    )
    new_X, new_labels, _ = event_shoots(rng, means, shoots=10, photos=40)  # shoots no one saw
    return head, new_X, new_labels


def test_several_tags_or_none_per_photo_with_precision_that_holds_on_new_shoots(trained):
    from ml.multilabel import evaluate

    head, X, labels = trained
    promised = head.metrics
    measured = evaluate(head, X, label_matrix(labels, head.tags))
    assert promised["applied_precision"] >= 0.95 and measured["applied_precision"] >= 0.95
    assert measured["applied_recall"] >= 0.9
    # photos with no sponsor stay out of every set: at most 5 % on the holdout's ~80 empty photos, and the new
    # shoots' rate within the noise of that point estimate
    assert promised["none_false_positive_rate"] <= 0.05 and measured["none_false_positive_rate"] <= 0.08
    predictions = head.predict(X)
    several = [p for p, found in zip(predictions, labels, strict=True) if len(found) >= 2]
    assert np.mean([sum(s == "applied" for _, _, s in p) >= 2 for p in several]) >= 0.4
    for p in predictions:
        assert [score for _, score, _ in p] == sorted((score for _, score, _ in p), reverse=True)
        assert all(score >= 0.5 for _, score, _ in p)


def test_thresholds_are_per_tag_and_never_below_a_yes(trained):
    head, _, _ = trained
    assert set(head.thresholds) == set(TAGS) and all(t >= 0.5 for t in head.thresholds.values())
    assert head.metrics["n_holdout"] == 320 and head.metrics["target_precision"] == 0.95


def test_labels_and_mistakes_in_the_examples():
    assert label_matrix([{"acme"}, {NONE}, set(), {"acme", "hooli"}], ["acme", "hooli"]).tolist() == [
        [1, 0], [0, 0], [0, 0], [1, 1]
    ]
    X = np.eye(4)
    with pytest.raises(ValueError, match="'acme' needs photos with and without it"):
        train_multilabel_head("sponsor", X, [{"acme"}] * 4, X[:0], [])
    with pytest.raises(ValueError, match="no example shows any tag"):
        train_multilabel_head("sponsor", X, [{NONE}] * 4, X[:0], [])
