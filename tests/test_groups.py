"""Groups, group-aware splits and thresholds with a margin (ml/groups.py, ml/splits.py, ml/calibration.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ml.calibration import NEVER, calibrate_thresholds, precision_coverage, promise, wilson_interval
from ml.groups import PhotoFacts, exif_session, holdout_units, shoot_groups
from ml.splits import group_folds, group_holdout_split


def facts(uri: str, tag: str, group: str | None = None, session: str | None = None, media_id: str = "") -> PhotoFacts:
    return PhotoFacts(media_id or uri, uri, (("product", tag),), group, session)


def test_manifest_group_wins_and_links_only_its_photos():
    photos = [facts("/a/1.jpg", "x", "day1"), facts("/b/7.jpg", "y", "day1"), facts("/c/2.jpg", "x", "day2")]
    groups = shoot_groups(photos)
    assert groups[0] == groups[1] == "manifest:day1" and groups[2] == "manifest:day2"


def test_a_folder_of_one_tag_is_not_a_shoot_but_a_folder_of_several_is():
    per_tag = [facts(f"/lib/{t}/{side}.jpg", t) for t in ("x", "y") for side in ("front", "back", "top")]
    groups = shoot_groups(per_tag)
    assert len(set(groups)) == 6  # names without numbers next to each other: nothing links them
    shoot = [facts("/shoot1/a.jpg", "x"), facts("/shoot1/b.jpg", "y"), facts("/shoot2/c.jpg", "x")]
    groups = shoot_groups(shoot)
    assert groups[0] == groups[1] != groups[2]


def test_runs_of_file_numbers_and_exif_sessions_link_photos():
    photos = [facts(f"/x/IMG_{n:04d}.jpg", "x") for n in (100, 101, 103, 200, 201)]
    groups = shoot_groups(photos)
    assert groups[0] == groups[1] == groups[2] and groups[3] == groups[4] and groups[0] != groups[3]
    sessions = [facts("/p/a.jpg", "x", session="2026-05-04|Canon"), facts("/q/b.jpg", "x", session="2026-05-04|Canon")]
    assert len(set(shoot_groups(sessions))) == 1


def test_exif_session_reads_capture_date_and_camera():
    image = Image.new("RGB", (8, 8))
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0132] = "Canon", "EOS R6", "2026:05:04 10:11:12"
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    assert exif_session(buffer.getvalue()) == "2026-05-04|Canon EOS R6"
    plain = io.BytesIO()
    image.save(plain, "PNG")
    assert exif_session(plain.getvalue()) is None
    assert exif_session(b"not an image") is None


def test_near_copies_of_the_same_tag_are_one_group_and_look_alikes_of_two_tags_are_not():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(1, 32))
    vectors = np.vstack([base, base + 0.01 * rng.normal(size=(1, 32)), base + 0.01 * rng.normal(size=(1, 32))])
    photos = [facts("/a/p.jpg", "x"), facts("/b/q.jpg", "x"), facts("/c/r.jpg", "y")]
    groups = shoot_groups(photos, vectors)
    assert groups[0] == groups[1] != groups[2]


def test_a_single_shoot_tag_is_cut_into_look_alike_clusters():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(3, 16))
    vectors = np.vstack([centres[i % 3] + 0.05 * rng.normal(size=16) for i in range(24)])
    photos = [facts(f"/shoot/{i}.jpg", "x" if i < 24 else "y", group="one") for i in range(24)]
    groups = shoot_groups(photos, vectors)
    units, kinds, n_groups = holdout_units(photos, groups, vectors)
    assert n_groups[("product", "x")] == 1 and set(kinds) == {"cluster"}
    assert len(set(units)) == 3  # 24 / 8 clusters, one per look
    for u in set(units):
        assert len({i % 3 for i in range(24) if units[i] == u}) == 1


def two_facet_rows(n_photos: int = 240):
    rng = np.random.default_rng(3)
    media, facet_list, tags, units = [], [], [], []
    for p in range(n_photos):
        unit = f"shoot{p // 4}"  # shoots of 4 photos
        for facet, tag in (("product", f"p{(p // 4) % 10}"), ("colour", f"c{rng.integers(3)}")):
            media.append(f"m{p}")
            facet_list.append(facet)
            tags.append(tag)
            units.append(unit)
    return media, facet_list, tags, units


def test_group_split_never_puts_a_group_or_a_photo_on_both_sides():
    media, facet_list, tags, units = two_facet_rows()
    split = group_holdout_split(media, facet_list, tags, units, holdout_frac=0.25, seed=1)
    assert np.array_equal(split, group_holdout_split(media, facet_list, tags, units, holdout_frac=0.25, seed=1))
    sides: dict[str, set[str]] = {}
    for key in (media, units):
        sides.clear()
        for k, s in zip(key, split, strict=True):
            sides.setdefault(k, set()).add(str(s))
        assert all(len(s) == 1 for s in sides.values())
    assert (split == "holdout").mean() == pytest.approx(0.25, abs=0.1)
    for facet in ("product", "colour"):
        for tag in {t for f, t in zip(facet_list, tags, strict=True) if f == facet}:
            mine = [s for f, t, s in zip(facet_list, tags, split, strict=True) if f == facet and t == tag]
            assert "train" in mine and "holdout" in mine, (facet, tag)


def test_group_folds_keep_groups_whole():
    y = np.array([0, 0, 1, 1] * 10)
    groups = [f"g{i // 2}" for i in range(40)]
    folds = group_folds(y, groups, 4, seed=0)
    assert len(folds) == 4  # the checks below must not run over an empty list
    for train, test in folds:
        assert not {groups[i] for i in train} & {groups[i] for i in test}
    assert sorted(i for _, test in folds for i in test) == list(range(40))  # every row tested once


def rows(pred: int, top: list[float], n_classes: int = 2) -> np.ndarray:
    out = np.tile((1 - np.asarray(top))[:, None] / (n_classes - 1), (1, n_classes))
    out[:, pred] = top
    return out


def test_thresholds_need_the_lower_bound_of_precision_to_reach_the_target():
    # 60 predictions of 'x', right from 0.5 up, the 5 lowest (0.1 .. 0.3) wrong; 'y' never predicted
    top = list(np.linspace(0.99, 0.5, 55)) + [0.3, 0.25, 0.2, 0.15, 0.1]
    y_true = ["x"] * 55 + ["y"] * 5
    scores = rows(0, top)
    thresholds = calibrate_thresholds(scores, y_true, ["x", "y"], target_precision=0.9)
    assert thresholds["x"] == pytest.approx(0.5)  # 55 of 55: lower bound 0.953
    assert thresholds["y"] == thresholds["x"]  # no evidence against 'y': the facet's threshold
    few = calibrate_thresholds(scores[:10], y_true[:10], ["x", "y"], target_precision=0.9)
    assert few["x"] == NEVER  # 10 of 10 right vouches only for 0.79
    assert wilson_interval(10, 10)[0] == pytest.approx(0.787, abs=0.001)


def test_a_tag_shown_worse_than_its_facet_gets_a_threshold_of_its_own():
    # 'x': 200 right answers; 'y': 40 right answers from 0.71 up and 20 mistakes between 0.60 and 0.70
    x = rows(0, list(np.linspace(0.99, 0.55, 200)))
    y = rows(1, list(np.linspace(0.95, 0.71, 40)) + list(np.linspace(0.70, 0.60, 20)))
    scores = np.vstack([x, y])
    truth = ["x"] * 200 + ["y"] * 40 + ["x"] * 20
    thresholds = calibrate_thresholds(scores, truth, ["x", "y"], target_precision=0.9)
    assert 0.6 < thresholds["x"] < 0.65  # the facet's: where the lower bound of the pooled rows reaches 0.9
    # 'y' at the facet's threshold: 40 of ~54 right, upper bound below 0.9: its own, 40 of 44 right above it
    assert 0.68 < thresholds["y"] < 0.69
    kept = promise(scores, truth, ["x", "y"], thresholds)
    # the promise counts the facet's threshold: every row at or above it, 'y''s mistakes above 0.6 included
    at_facet = scores.max(axis=1) >= thresholds["x"]
    right = scores.argmax(axis=1) == np.array([0 if t == "x" else 1 for t in truth])
    assert kept.n_applied == at_facet.sum() and kept.applied_precision == pytest.approx(right[at_facet].mean())
    # 'y''s own threshold drops its mistakes on these rows, but a raise chosen on a few rows is not promised
    kept_rows = at_facet & ~((scores.argmax(axis=1) == 1) & (scores.max(axis=1) < thresholds["y"]))
    # 165 rows of 'x' and 44 of 'y' (40 right) kept: 205 of 209; the promise: 205 of the 219 at the facet's
    assert right[kept_rows].mean() == pytest.approx(205 / 209) and kept.applied_precision == pytest.approx(205 / 219)
    assert kept.share_applied == pytest.approx(kept_rows.mean()) and 0.7 < kept.share_applied < 0.9
    curve = precision_coverage(scores, truth, ["x", "y"])
    assert curve[-1]["coverage"] == 1.0 and curve[-1]["precision"] == pytest.approx(240 / 260, abs=1e-4)
    assert all(p["precision_low"] <= p["precision"] for p in curve)


def test_tied_scores_are_kept_or_dropped_together():
    scores = rows(0, [0.9] * 40 + [0.5] * 10)
    truth = ["x"] * 40 + ["x"] * 5 + ["y"] * 5
    assert calibrate_thresholds(scores, truth, ["x", "y"], 0.9)["x"] == pytest.approx(0.9)


def test_examples_without_a_vector_are_an_error_not_a_silent_drop():
    import polars as pl

    from assets_defs.training.assets import with_groups

    rows = [
        {"media_id": f"m{i}", "uri": f"/shoot/IMG_{i:04d}.jpg", "facet": "product", "tag_id": f"t{i % 2}",
         "group": None, "session": None}
        for i in range(4)
    ]
    table = pl.DataFrame(rows, schema={k: pl.String for k in rows[0]})
    vectors = np.random.default_rng(3).normal(size=(4, 8)).astype(np.float32)
    grouped = with_groups(table, [f"m{i}" for i in range(4)], vectors)
    assert grouped.height == 4 and grouped["group"].null_count() == 0
    with pytest.raises(ValueError, match=r"1 example photos have no embedding.*IMG_0003"):
        with_groups(table, ["m0", "m1", "m2"], vectors[:3])
