"""Identifiers against OCR text: normalisation, fuzzy matching, no short-code false hits."""

import pytest

from ml.identifiers import identifier_similarity, normalise, text_scores


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("AS-1OO", "as 100"),  # O/0, case, separators
        ("SKU-4411", "5KU 44II"),  # S/5, I/1
        ("Laktosefrei", "LAKTOSEFREI"),
        ("Crème brûlée", "CREME BRULEE"),  # diacritics
        ("X-200/B", "x200 8"),
    ],
)
def test_confusions_and_separators_normalise_alike(a, b):
    assert normalise(a) == normalise(b)


def test_similarity_is_exact_for_a_token_and_tolerant_for_one_wrong_symbol():
    assert identifier_similarity("NT-40", "NT-40") == 1.0
    assert identifier_similarity("SKU-4504", "S0U-450 4") > 0.8  # one misread letter, a stray space
    assert identifier_similarity("AS-100", "SKU-4485 AS 100") == 1.0  # split into two tokens
    assert identifier_similarity("SKU-4485", "SKU-4485GF-1") == 1.0  # glued to the next word: found inside
    # a short code is compared with whole tokens only: "R5" is not inside "R500"
    assert identifier_similarity("R5", "R500") < 0.7
    assert identifier_similarity("R5", "STRIDE R5") == 1.0


def test_text_scores_weigh_by_confidence_and_pick_the_right_twin():
    idents = {"hydra-500": ["H500", "SKU-4411"], "hydra-750": ["H750", "SKU-4448"], "no-text": []}
    scores = text_scores([("H750", 0.95), ("SKU-4448", 0.6)], idents)
    assert set(scores) == {"hydra-500", "hydra-750"}
    assert scores["hydra-750"] == pytest.approx(0.95)
    assert scores["hydra-500"] < scores["hydra-750"] - 0.15
    assert text_scores([], idents) == {"hydra-500": 0.0, "hydra-750": 0.0}
