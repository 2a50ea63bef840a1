"""The evaluation report: per-tag metrics, confusions, and the page a person reads."""

import json

import numpy as np

from ml.report import confusions, promise_figures, render_evaluation, tag_metrics

HOLDOUT = [
    {"media_id": "m1", "true": "h500", "predicted": "h500", "score": 0.95},
    {"media_id": "m2", "true": "h500", "predicted": "h750", "score": 0.55},
    {"media_id": "m3", "true": "h750", "predicted": "h750", "score": 0.91},
    {"media_id": "m4", "true": "mug", "predicted": "mug", "score": 0.40},
]


def test_tag_metrics_top1_and_applied():
    by_tag = {m["tag_id"]: m for m in tag_metrics(HOLDOUT, {"h500": 0.5, "h750": 0.6, "mug": 0.5})}
    assert (by_tag["h500"]["precision"], by_tag["h500"]["recall"]) == (1.0, 0.5)
    assert (by_tag["h750"]["precision"], by_tag["h750"]["recall"]) == (0.5, 1.0)
    assert by_tag["h750"]["applied_precision"] == 1.0  # the 0.55 mistake is below its 0.6 threshold
    assert by_tag["mug"]["applied_precision"] is None and by_tag["mug"]["applied_recall"] == 0.0


def test_confusions_and_page():
    assert [(t, p, n) for t, p, n, _ in confusions(HOLDOUT)] == [("h500", "h750", 1)]
    facet = {
        "facet": "product",
        "version": "product-abc",
        "strategy": "logreg+ocr",
        "bar": 0.8,
        "passed": False,
        "metrics": {
            "accuracy": 0.75,
            "n_train": 10,
            "n_holdout": 4,
            "strategies": {
                "logreg": {"accuracy": 0.5, "balanced_accuracy": 0.5, "n_holdout": 4, "fit_seconds": 0.1},
                "logreg+ocr": {"accuracy": 0.75, "balanced_accuracy": 0.83, "n_holdout": 4, "fit_seconds": 0.3},
            },
            "combiner_weights": {"visual": 1.2, "evidence": 3.4},
            "backbone": "finetuned",
            "backbones": {
                "base": {"model": "lite0@1", "top1": 0.5, "balanced": 0.5, "n_holdout": 4},
                "finetuned": {"model": "lite0-ft@2", "top1": 0.75, "balanced": 0.8, "n_holdout": 4},
            },
        },
        "thresholds": {"h500": 0.5, "h750": 0.6, "mug": 0.5},
        "holdout": HOLDOUT,
    }
    seen = []

    def thumbnail(media_id):
        seen.append(media_id)
        return b"\xff\xd8jpeg" if media_id else None

    page = render_evaluation("shop", [facet], {"h500": "Hydra 500", "h750": "Hydra <750>"}, thumbnail, {"h750": "e7"})
    assert "Hydra 500 taken for Hydra &lt;750&gt; (1×)" in page
    assert seen == ["m2", "e7"]  # the confused photo, and an example of what it was taken for
    assert "FAILS" in page and "evidence +3.40" in page and "best holdout balanced accuracy" in page
    assert "Backbone: <b>finetuned</b>, the best linear probe on the group-aware holdout" in page
    assert "<tr class=chosen><td>finetuned</td><td>lite0-ft@2</td>" in page and "linear probe" in page


def test_report_leads_with_the_new_shoot_promise():
    from ml.calibration import precision_coverage, promise

    scores = np.array([[0.9, 0.1]] * 30 + [[0.2, 0.8]] * 25 + [[0.6, 0.4]] * 5)
    truth = ["a"] * 30 + ["b"] * 25 + ["b"] * 5
    new = promise(scores, truth, ["a", "b"], {"a": 0.7, "b": 0.7}).as_dict()
    new.update(top1_projected=0.95, top1_projected_high=0.99)
    metrics = {
        "accuracy": 0.917, "balanced_accuracy": 0.9, "strategies": {}, "new_shoot": new,
        "curve": precision_coverage(scores, truth, ["a", "b"]), "target_precision": 0.9,
        "single_group_tags": ["b"], "same_shoot": {"strategy": "logreg", "top1": 0.99, "group_aware_top1": 0.917},
        "self_training": {"pool": 300, "pseudo_rows": 210, "holdout_balanced_plain": 0.85, "holdout_balanced": 0.9,
                          "used": True, "shipped_pseudo_rows": 180},
    }
    facet = {"facet": "product", "version": "v1", "strategy": "logreg", "bar": 0.5, "passed": True,
             "metrics": metrics, "thresholds": {"a": 0.7, "b": 0.7}, "holdout": []}
    page = render_evaluation("shop", [facet], {"b": "Bravo"}, lambda m: None, {})
    promise_at, strategies_at = page.index("What to expect on a new shoot"), page.index("<th>strategy</th>")
    assert promise_at < strategies_at and page.index("<svg") < strategies_at  # the truth comes first
    assert "<b>0.950</b> (" in page and "measured on the holdout by the head trained without it: 0.917" in page
    assert "1 tag(s) had a single shoot" in page and "Bravo" in page
    assert "optimistic, not a forecast" in page and "top-1 0.990" in page
    assert f"{new['share_review']:.1%}" in page
    assert new["applied_precision"] == 1.0 and new["n_applied"] == 55  # every photo at the facet's 0.7, all right
    assert "counts every photo at the facet's threshold" in page
    assert "with the 210 of 300 unlabelled photos" in page and "from 0.850 to 0.900 (<b>kept</b>)" in page
    assert promise_figures([{"facet": "product", "accuracy": 0.9, "metrics": json.dumps(metrics)}])[
        "self_trained_rows/product"
    ] == 180


def test_promise_figures_put_the_new_shoot_before_the_same_shoot_figure():
    new = {
        "top1_projected": 0.81,
        "top1_low": 0.7,
        "top1_projected_high": 0.9,
        "applied_precision": None,
        "share_applied": 0.6,
    }
    rows = [
        {"facet": "colorway", "accuracy": 0.66666, "metrics": '{"same_shoot": {"top1": 0.97}}'},
        {"facet": "product", "accuracy": 0.8, "metrics": json.dumps({"new_shoot": new})},
    ]
    figures = promise_figures(rows)
    assert figures == {
        "holdout_top1/colorway": 0.6667,
        "same_shoot_top1_optimistic/colorway": 0.97,
        "new_shoot_top1/product": 0.81,
        "new_shoot_top1_interval/product": "0.700-0.900",
        "new_shoot_share_applied/product": 0.6,  # no applied precision: nothing applied on the new shoot
        "holdout_top1/product": 0.8,
    }
