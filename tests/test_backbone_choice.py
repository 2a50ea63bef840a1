"""Choosing a facet's backbone: a linear probe on the group-aware holdout, a costlier candidate only where it
wins by the margin (ml/backbone_choice.py)."""

import numpy as np
import pytest

import ml.strategies
from ml.backbone_choice import MARGIN, choose, judged, large_views_backbone, probe, probe_c, train_key, views_backbone
from ml.heads import train_facet_head


def test_a_costlier_candidate_must_win_by_the_margin_and_base_keeps_ties():
    def r(balanced):
        return {"balanced": balanced}

    assert choose({"base": r(0.80), "views": r(0.80 + MARGIN)}) == "views"
    assert choose({"base": r(0.80), "views": r(0.80 + MARGIN / 2)}) == "base"
    assert choose({"views": r(0.9), "base": r(0.9), "finetuned": r(0.9)}) == "base"
    # of two that win, the better one, each judged against the pick so far
    assert choose({"base": r(0.70), "finetuned": r(0.80), "views": r(0.85)}) == "views"
    assert choose({"base": r(0.70), "finetuned": r(0.80), "views": r(0.805)}) == "finetuned"
    assert choose({"base": r(float("nan")), "finetuned": r(0.2)}) == "finetuned"
    assert choose({"base": r(0.9), "finetuned": r(0.1)}, forced="finetuned") == "finetuned"
    with pytest.raises(ValueError, match="no backbone"):
        choose({})
    # the large backbone on views and the ensemble cost the most: each is kept only over a pick it beats
    everything = {"base": r(0.72), "views": r(0.78), "finetuned-views": r(0.80), "large-views": r(0.805)}
    assert choose(everything) == "finetuned-views"  # large-views is better by less than the margin
    assert choose(everything | {"ensemble": r(0.80 + MARGIN)}) == "ensemble"
    assert choose(everything | {"ensemble": r(0.80 + MARGIN / 2)}) == "finetuned-views"
    assert choose(everything | {"large-views": r(0.83), "ensemble": r(0.835)}) == "large-views"


def test_the_colour_part_is_judged_only_inside_the_ensemble_unless_forced():
    roles = ["base", "views", "large-views", "colour", "finetuned-views", "ensemble"]
    assert judged(roles) == ["base", "views", "large-views", "finetuned-views", "ensemble"]
    assert judged(roles, forced="colour") == ["colour"]
    assert judged(roles, forced="views") == ["views"]


def _facet(rng, noise, n_tags=4, shoots=6, per_shoot=5, dim=32):
    """Photos of n_tags tags in shoots; each shoot shifts its photos the same way (a shared look)."""
    centres = rng.normal(size=(n_tags, dim))
    X, y, groups = [], [], []
    for t in range(n_tags):
        for s in range(shoots):
            look = rng.normal(scale=noise, size=dim)
            for _ in range(per_shoot):
                X.append(centres[t] + look + rng.normal(scale=0.3, size=dim))
                y.append(f"t{t}")
                groups.append(f"t{t}-s{s}")
    return np.array(X), np.array(y), np.array(groups)


def test_the_probe_scores_shoots_it_never_saw():
    rng = np.random.default_rng(7)
    X, y, groups = _facet(rng, noise=0.5)
    hold = np.array([g.endswith(("-s4", "-s5")) for g in groups])
    result = probe(X[~hold], y[~hold], X[hold], y[hold], groups[~hold].tolist(), seed=0)
    assert result["n_holdout"] == hold.sum() == 40
    assert result["top1"] == 1.0 and result["balanced"] == 1.0  # well separated tags
    # features whose shoot look drowns the tag: the probe says so on the held-out shoots
    Xn, yn, gn = _facet(np.random.default_rng(7), noise=6.0)
    noisy = probe(Xn[~hold], yn[~hold], Xn[hold], yn[hold], gn[~hold].tolist(), seed=0)
    assert noisy["balanced"] < 0.8
    assert choose({"base": noisy, "views": result}) == "views"
    assert choose({"base": result, "views": noisy}) == "base"
    with pytest.raises(ValueError, match="two tags"):
        probe(X[:5], y[:5], X[hold], y[hold])


def test_the_head_takes_the_probes_c_for_the_same_rows_and_searches_otherwise(monkeypatch):
    X, y, groups = _facet(np.random.default_rng(3), noise=2.0)
    hold = np.array([g.endswith(("-s4", "-s5")) for g in groups])
    Xt, yt, gt = X[~hold], y[~hold], groups[~hold].tolist()
    searched = probe(Xt, yt, X[hold], y[hold], gt, seed=0)
    probes = {"views": {**searched, "model": "m"}}
    assert probe_c(probes, "views", train_key(Xt, yt, gt, 0)) == searched["C"]
    # other rows, groups, seed or vectors: a C searched for something else is not taken
    assert probe_c(probes, "views", train_key(Xt[1:], yt[1:], gt[1:], 0)) is None
    assert probe_c(probes, "views", train_key(Xt, yt, gt[::-1], 0)) is None
    assert probe_c(probes, "views", train_key(Xt, yt, gt, 1)) is None
    assert probe_c(probes, "views", train_key(Xt[:, :8], yt, gt, 0)) is None
    assert probe_c(probes, "base", train_key(Xt, yt, gt, 0)) is None
    # given, it is the search's answer without the search (the search would give the same: checked first)
    searched_head = train_facet_head("f", Xt, yt, X[hold], y[hold], strategies=("logreg",), groups_train=gt)
    assert searched_head.metrics["params"]["C"] == searched["C"]

    def no_search(*args, **kwargs):
        raise AssertionError("the C search ran again")

    monkeypatch.setattr(ml.strategies, "_choose_logreg_c", no_search)
    given = train_facet_head("f", Xt, yt, X[hold], y[hold], strategies=("logreg",), groups_train=gt,
                             logreg_c=searched["C"])  # fmt: skip
    assert given.metrics["params"] == searched_head.metrics["params"]
    assert given.thresholds == searched_head.thresholds


def test_views_is_a_candidate_of_the_default_backbone_only():
    assert views_backbone("efficientnet-lite0") == "efficientnet-lite0-views:224/avg/center+zoom+zoom60"
    assert views_backbone("open_clip:ViT-B-32@/models/clip.bin") is None
    assert large_views_backbone("efficientnet-lite0") == "efficientnet-lite2-views"
    assert large_views_backbone("efficientnet-lite2") is None


def test_a_new_library_compares_views_and_a_fine_tuned_backbone_without_a_setting():
    from pydantic import ValidationError

    from resources.libraries import LibraryConfig

    config = LibraryConfig(name="shop", media="/photos")
    assert config.views and config.finetune.budget_min == 10 and config.finetunes
    assert config.finetune.augment == "strong"
    # another backbone: nothing to fine-tune by default, and no error
    clip = LibraryConfig(name="shop", media="/photos", backbone="open_clip:ViT-B-32@/m.bin")
    assert not clip.finetunes and views_backbone(clip.backbone) is None
    with pytest.raises(ValidationError, match="finetune works on the default backbone"):
        LibraryConfig(name="shop", media="/photos", backbone="efficientnet-lite2", finetune={"budget_min": 5})
    assert not LibraryConfig(name="shop", media="/photos", finetune={"budget_min": 0}).finetunes
