"""The split that stays put when examples are added (ml/sticky_splits.py): old photos keep their side, new units
are drawn stably, a unit is never on both sides (merges included), and the per-tag guarantees hold for new tags."""

from __future__ import annotations

import numpy as np

from ml.splits import group_holdout_split
from ml.sticky_splits import stable_draw, sticky_holdout_split


def rows(spec: list[tuple[str, str, str, str]]) -> tuple[list[str], list[str], list[str], list[str]]:
    """(media_ids, facets, tags, units) from (media_id, facet, tag, unit) tuples."""
    return tuple(list(col) for col in zip(*spec, strict=True))  # type: ignore[return-value]


def catalog_rows() -> list[tuple[str, str, str, str]]:
    """Two facets over the same 48 photos: 4 products x 4 shoots x 3 photos, each photo a colour too."""
    out = []
    for p in range(4):
        for shoot in range(4):
            for k in range(3):
                m = f"p{p}-s{shoot}-{k}"
                out += [
                    (m, "product", f"p{p}", f"shoot:{p}-{shoot}"),
                    (m, "colorway", f"c{k % 2}", f"shoot:{p}-{shoot}"),
                ]
    return out


def sides(media_ids, split) -> dict[str, str]:
    return dict(zip(media_ids, split, strict=True))


def units_on_both_sides(units, split) -> set[str]:
    seen: dict[str, set[str]] = {}
    for u, s in zip(units, split, strict=True):
        seen.setdefault(u, set()).add(str(s))
    return {u for u, s in seen.items() if len(s) > 1}


def test_the_draw_is_sha256_of_seed_and_unit_not_python_hash():
    assert stable_draw(0, "shoot:a") == 0.9504136990009815  # the same in every process, whatever PYTHONHASHSEED
    assert stable_draw(1, "shoot:a") == 0.27745264777321943


def test_without_a_previous_split_it_is_the_from_scratch_split():
    cols = rows(catalog_rows())
    split, report = sticky_holdout_split(*cols, previous={}, holdout_frac=0.25, seed=3)
    assert np.array_equal(split, group_holdout_split(*cols, holdout_frac=0.25, seed=3))
    assert report.fresh and report.new == 48 and report.moved == []


def test_a_new_tag_in_one_facet_leaves_every_earlier_photo_on_its_side():
    before = catalog_rows()
    first, _ = sticky_holdout_split(*rows(before), previous={})
    previous = sides(rows(before)[0], first)
    # a fifth product with three new shoots, and a new photo in an existing shoot of p0
    added = [(f"p4-s{s}-{k}", "product", "p4", f"shoot:4-{s}") for s in range(3) for k in range(2)]
    added += [("p0-s0-extra", "product", "p0", "shoot:0-0")]
    cols = rows(before + added)
    labels = {(f, t) for _, f, t, _ in before}
    split, report = sticky_holdout_split(*cols, previous=previous, previous_labels=labels)
    now = sides(cols[0], split)
    assert {m: now[m] for m in previous} == previous
    assert report.kept == 48 and report.new == 7 and report.moved == [] and report.merged_units == []
    assert now["p0-s0-extra"] == previous["p0-s0-0"]  # joins its shoot's side
    new_sides = {now[f"p4-s{s}-0"] for s in range(3)}
    assert new_sides == {"train", "holdout"}  # three units: one in train, one held out at least
    assert units_on_both_sides(cols[3], split) == set()


def test_a_new_tag_with_one_unit_is_trained_on_and_row_order_does_not_matter():
    before = catalog_rows()
    previous = sides(rows(before)[0], sticky_holdout_split(*rows(before), previous={})[0])
    # pick a unit name the stable draw sends to holdout: the guarantee must pull it back into train
    unit = next(f"shoot:new-{i}" for i in range(100) if stable_draw(0, f"shoot:new-{i}") < 0.25)
    added = [(f"n-{k}", "product", "p9", unit) for k in range(3)]
    spec = before + added
    split, _ = sticky_holdout_split(*rows(spec), previous=previous, holdout_frac=0.25)
    assert set(sides(rows(spec)[0], split)[f"n-{k}"] for k in range(3)) == {"train"}
    shuffled = [spec[i] for i in np.random.default_rng(0).permutation(len(spec))]
    again, _ = sticky_holdout_split(*rows(shuffled), previous=previous, holdout_frac=0.25)
    assert sides(rows(shuffled)[0], again) == sides(rows(spec)[0], split)


def test_a_photo_bridging_two_units_on_both_sides_puts_the_merged_unit_on_one_side_and_says_so():
    before = catalog_rows()
    previous = sides(rows(before)[0], sticky_holdout_split(*rows(before), previous={})[0])
    by_unit: dict[str, str] = {}
    for m, _, _, u in before:
        by_unit.setdefault(u, previous[m])
    held = sorted(u for u, s in by_unit.items() if s == "holdout")
    trained = sorted(u for u, s in by_unit.items() if s == "train")
    # one held-out shoot and one trained shoot of the same product become one unit (a bridging near-copy)
    a, b = next((h, t) for h in held for t in trained if h.split("-")[0] == t.split("-")[0])
    merged = f"{a}+{b}"
    spec = [(m, f, t, merged if u in (a, b) else u) for m, f, t, u in before]
    spec += [("bridge", "product", f"p{a.split(':')[1].split('-')[0]}", merged)]
    cols = rows(spec)
    split, report = sticky_holdout_split(*cols, previous=previous)
    assert units_on_both_sides(cols[3], split) == set()
    assert report.merged_units == [merged]
    now = sides(cols[0], split)
    assert now["bridge"] == "train"  # 3 photos a side before: a tie goes to train
    of_a = {m for m, _, _, u in before if u == a}
    assert of_a <= set(report.moved)  # the held-out side's 3 photos went to train
    # the product lost its held-out shoot: the guarantee holds out another of its shoots, a whole one
    product = f"p{a.split(':')[1].split('-')[0]}"
    others = {u for m, _, _, u in spec if m in set(report.moved) - of_a}
    assert len(others) == 1 and all(now[m] == "holdout" for m in set(report.moved) - of_a)
    assert {now[m] for m, f, t, _ in spec if t == product} == {"train", "holdout"}
