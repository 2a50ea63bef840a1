"""The "text" evidence channel: a text classifier learnt from the examples' OCR text (ml/text_model.py)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import ml.text_model as text_model
from ml.heads import train_facet_head
from ml.splits import holdout_split
from ml.text_model import (
    TextModel,
    fit_text_model,
    name_evidence,
    name_words,
    normalise_text,
    out_of_fold_text,
    text_channel,
)

DIM = 32
NAMES = ["twin-a", "twin-b", "mug", "cap", "bag"]
# the twins' print: brand words the catalog lists nowhere (no identifiers, not in the tag names)
PRINT = {"twin-a": ["Aquila", "AQUILA sport", "aquila 1L"], "twin-b": ["Borea", "BOREA sport", "borea 1L"]}
TAG_NAMES = {"twin-a": ["Sport Bottle"], "twin-b": ["Sport Bottle"], "mug": ["Mug"], "cap": ["Cap"], "bag": ["Bag"]}


def _looks(seed: int = 0) -> np.ndarray:
    means = np.random.default_rng(seed).normal(size=(4, DIM))
    return means / np.linalg.norm(means, axis=1, keepdims=True)


def _photos(codes: np.ndarray, seed: int) -> np.ndarray:
    """Embeddings of the tags' looks; the twins (codes 0 and 1) share one look."""
    rng = np.random.default_rng(seed)
    looks = np.where(codes <= 1, 0, codes - 1)
    X = _looks()[looks] + 0.6 * rng.normal(size=(len(codes), DIM)) / np.sqrt(DIM)
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def _twins(n_per_tag: int = 16, seed: int = 0):
    """Twins that differ by printed brand only (read on 80 % of photos, sometimes with a slip); the other tags
    look different and print nothing."""
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(len(NAMES)), n_per_tag)
    rng.shuffle(codes)
    y = np.array([NAMES[c] for c in codes])
    ocr = []
    for label in y:
        if label in PRINT and rng.random() < 0.8:
            text = PRINT[label][rng.integers(len(PRINT[label]))]
            text = text.replace("i", "1") if rng.random() < 0.3 else text  # an OCR slip
            ocr.append([(text, float(rng.uniform(0.6, 1.0)))])
        else:
            ocr.append([])
    return _photos(codes, seed + 1), y, ocr


def test_normalised_text_folds_case_width_and_accents():
    assert normalise_text("Thé  ＮＯＶＡ\tCafé") == "the nova cafe"
    assert normalise_text("STRASSE") == normalise_text("straße")


@pytest.fixture(scope="module")
def twins_head():
    X, y, ocr = _twins()
    is_train = holdout_split(y, holdout_frac=0.3, seed=0) == "train"
    text = {
        "ocr_train": [o for o, t in zip(ocr, is_train, strict=True) if t],
        "ocr_hold": [o for o, t in zip(ocr, is_train, strict=True) if not t],
        "identifiers": {"twin-a": [], "twin-b": []},  # the catalog lists no identifiers: no "ocr" channel
        "tag_names": TAG_NAMES,
    }
    split = (X[is_train], y[is_train], X[~is_train], y[~is_train])
    return train_facet_head("product", *split, strategies=("logreg",), **text)


def test_text_learnt_from_examples_splits_look_alikes(twins_head):
    results = twins_head.metrics["strategies"]
    assert "logreg+ocr" not in results  # no identifiers: only the learned text can help
    assert twins_head.strategy == "logreg+text" and twins_head.reads_text
    assert results["logreg+text"]["accuracy"] >= results["logreg"]["accuracy"] + 0.1
    assert twins_head.metrics["combiner_weights"]["text_margin"] > 0  # it learnt to trust the text


def test_head_with_text_predicts_from_boxes_and_survives_pickle(twins_head):
    head = pickle.loads(pickle.dumps(twins_head))
    twin_look = _photos(np.array([0, 0]), seed=99)  # new photos of the shared look
    predicted = head.predict(twin_look, boxes=[[("AQU1LA", 0.9)], [("Borea", 0.8)]])  # a slip: still twin-a
    assert [tag for tag, _, _ in predicted] == ["twin-a", "twin-b"]
    assert head.predict_scores(twin_look).shape == (2, len(NAMES))  # no text read: still defined
    mug = _photos(np.array([2]), seed=98)
    assert head.predict(mug, boxes=[[]])[0][0] == "mug"


def test_out_of_fold_evidence_never_uses_a_rows_own_text(monkeypatch):
    """Every row is scored by a model fitted on other groups' rows only; each row's text is unique, so a model
    that saw it would be caught by its text."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 12)
    groups = np.array([f"shoot-{i // 3}" for i in range(len(y))])  # shoots of 3 photos, one tag each
    boxes = [[(f"brand{k} lot{i}", 0.9)] for i, k in enumerate(y)]
    boxes[5] = []  # a photo without text
    group_of = {b[0][0]: g for b, g in zip(boxes, groups, strict=True) if b}
    fitted_on: list[set[str]] = []
    scored_rows = []  # rows with text that a spied model scored: the checks inside the spy did run
    real_fit = text_model.fit_text_model

    def spying_fit(rows, codes, classes, names=None):
        model = real_fit(rows, codes, classes, names)
        seen = {t for b in rows for t, _ in b}
        seen_groups = {group_of[t] for t in seen}
        fitted_on.append(seen)

        class Spy(TextModel):
            def evidence(self, scored):
                for b in (b for b in scored if b):  # a row without text has nothing to leak
                    assert b[0][0] not in seen, "a row scored by a model fitted on its own text"
                    assert group_of[b[0][0]] not in seen_groups, "a row scored by a model of its shoot"
                    scored_rows.append(b[0][0])
                return model.evidence(scored)

        return Spy(model.classes, model.words, model.pipeline, model.learned)

    monkeypatch.setattr(text_model, "fit_text_model", spying_fit)
    out = out_of_fold_text(boxes, y, ["a", "b", "c"], groups=groups, seed=int(rng.integers(10)))
    assert len(fitted_on) >= 2 and all(fitted_on)
    assert sorted(set(scored_rows)) == sorted(group_of)  # every row with text was scored out of fold
    assert np.all(out[5] == 0)
    # behaviour: the brand word generalises across shoots, the row's own "lot" token cannot help it
    assert (out.argmax(axis=1) == y)[[i for i in range(len(y)) if i != 5]].mean() > 0.9


def test_rows_without_text_get_zero_evidence():
    y = np.array([0, 0, 1, 1, 0, 1])
    boxes = [[("alpha", 0.9)], [], [("beta", 0.9)], [("--", 0.5)], [("alpha one", 0.8)], [("beta two", 0.7)]]
    hold = [[], [("alpha", 0.9)], [(" ", 0.9)]]
    train_ev, hold_ev, has = text_channel(boxes, y, hold, ["a", "b"], {"a": ["Alpha"], "b": ["Beta"]}, seed=0)
    assert has.tolist() == [True, True]
    assert np.all(train_ev[[1, 3]] == 0) and np.all(hold_ev[[0, 2]] == 0)
    assert hold_ev[1].argmax() == 0 and train_ev[[0, 2, 4, 5]].sum(axis=1).min() > 0
    assert text_channel([[], []], np.array([0, 1]), hold, ["a", "b"]) is None  # no text in training: no channel


def test_tag_names_are_weak_identifiers():
    classes = ["hydra-500", "hydra-750", "mug"]
    names = {"hydra-500": ["Hydra 500", "Gourde Hydra 500"], "hydra-750": ["Hydra 750"], "mug": ["The XL"]}
    words = name_words(names, classes)
    assert words[2] == [{}]  # a stop-word and a short word: no weak identifier
    assert "GOURDE" not in words[1][0] and set(words[0][1]) == {"G0UR0E", "HY0RA", "500"}  # confusables folded
    ev = name_evidence([normalise_text("HYDRA 5OO"), "hydra", "", "the sport"], words)
    assert ev[0, 0] == pytest.approx(1.0) and 0 < ev[0, 1] < 0.5  # the shared word counts half
    assert ev[1, 0] == ev[1, 1] > 0 and ev[2].sum() == 0 and ev[3].sum() == 0
    # a tag with a name but no printed examples can still be read, weakly
    printed = [[("hydra 500", 0.9)], [("lid", 0.9)]]
    model = fit_text_model(printed, np.array([0, 2]), classes, {"hydra-750": ["Hydra 750"]})
    assert model.has.tolist() == [True, True, True]
    assert model.evidence([[("HYDRA 750", 0.9)]])[0, 1] > 0
