"""A train/holdout split that stays put when examples are added: new products in seconds.

Heads are versioned by a hash of their facet's (photo, tag, split) rows (assets_defs/heads/assets.py), so a
split drawn afresh over every photo each run (ml/splits.py `group_holdout_split`, StratifiedGroupKFold over the
whole training set) reshuffles when one facet gains examples, and every other facet retrains for nothing. Here
a photo that was in the previous split keeps its side, and only what is new is placed:

- a new photo joins the side of its unit (ml/groups.py holdout_units: a shoot, a manifest group, a look-alike
  cluster) when the unit already has photos, so a unit is never on both sides;
- a wholly new unit is drawn by a stable seeded draw: sha256 of (seed, unit) as a number in [0, 1) below
  `holdout_frac` means holdout. The same unit gets the same side on every machine and every run (never
  Python's `hash()`, which is salted per process);
- then the per-tag guarantees of `group_holdout_split` are restored (every tag has a unit in train; a tag with
  two or more units has one in holdout), moving units that hold no earlier photo first, so old photos move only
  when nothing else can satisfy a tag.

Units merge: a new photo can bridge two old units on different sides (a near-copy of both, or a manifest group
naming photos of two shoots). Stickiness and "a unit on one side" then conflict, and the group guarantee wins,
since a unit on both sides makes the holdout measure photos the head has nearly seen: the merged unit goes to
the side most of its earlier photos were on (ties: train), and the photos that change sides are counted in
`StickyReport.moved` (their facets retrain, which is the honest cost). The same happens when a unit is re-cut
(look-alike clusters are recomputed as a tag gains photos).

Pure ML code: no Dagster, no Ray.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ml.splits import group_holdout_split

TRAIN, HOLDOUT = "train", "holdout"


@dataclass
class StickyReport:
    """What the split kept and changed: for the run's log and the asset's metadata."""

    kept: int = 0  # photos of the previous split on the same side
    new: int = 0  # photos the previous split did not have
    moved: list[str] = field(default_factory=list)  # earlier photos that changed sides (merged units, guarantees)
    merged_units: list[str] = field(default_factory=list)  # units whose earlier photos were on both sides
    fresh: bool = False  # no previous split: drawn from scratch by group_holdout_split


def stable_draw(seed: int, unit: str) -> float:
    """A number in [0, 1) fixed by (seed, unit) alone: the same on every run, process and machine."""
    digest = hashlib.sha256(f"{seed}\x00{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def sticky_holdout_split(
    media_ids: Sequence[str],
    facets: Sequence[str],
    tags: Sequence[str],
    units: Sequence[str],
    previous: Mapping[str, str],
    holdout_frac: float = 0.25,
    seed: int = 0,
    previous_labels: Collection[tuple[str, str]] | None = None,
) -> tuple[np.ndarray, StickyReport]:
    """'train'/'holdout' per (photo, facet, tag) row, keeping each photo of `previous` ({media_id: split}, the
    last `examples` table) on its side where the group guarantee allows; with no previous split, the
    from-scratch `group_holdout_split`. See the module's docstring for how new photos, new units and merged
    units are placed.

    `previous_labels`, the (facet, tag) pairs of the last table: the per-tag guarantees are restored only for a
    tag that is new or has a new photo, so a tag nothing happened to never moves a unit (an old tag whose
    guarantee could not be met before would otherwise move units again on every run). None: every tag."""
    media_ids, facets, tags, units = list(media_ids), list(facets), list(tags), list(units)
    if not len(media_ids) == len(facets) == len(tags) == len(units):
        raise ValueError("media_ids, facets, tags and units differ in length")
    if not 0.0 < holdout_frac < 1.0:
        raise ValueError(f"holdout_frac must be in (0, 1), got {holdout_frac}")
    report = StickyReport()
    photos = list(dict.fromkeys(media_ids))
    if not any(m in previous for m in photos):
        report.fresh, report.new = True, len(photos)
        return group_holdout_split(media_ids, facets, tags, units, holdout_frac, seed), report
    unit_of = dict(zip(media_ids, units, strict=True))
    members: dict[str, list[str]] = {}
    for m in photos:
        members.setdefault(unit_of[m], []).append(m)
    held: set[str] = set()
    for unit in sorted(members):
        earlier = [previous[m] for m in members[unit] if m in previous]
        if not earlier:  # a wholly new unit: a stable draw
            if stable_draw(seed, unit) < holdout_frac:
                held.add(unit)
            continue
        n_hold = earlier.count(HOLDOUT)
        if 0 < n_hold < len(earlier):
            report.merged_units.append(unit)
        if n_hold > len(earlier) - n_hold:  # the side most of its earlier photos were on; ties: train
            held.add(unit)
    touched = None
    if previous_labels is not None:
        known = set(previous_labels)
        touched = {(f, t) for f, t, m in zip(facets, tags, media_ids, strict=True) if (f, t) not in known}
        touched |= {(f, t) for f, t, m in zip(facets, tags, media_ids, strict=True) if m not in previous}
    _restore_guarantees(facets, tags, units, members, previous, held, seed, touched)
    side = {m: HOLDOUT if unit_of[m] in held else TRAIN for m in photos}
    for m in photos:
        if m not in previous:
            report.new += 1
        elif previous[m] == side[m]:
            report.kept += 1
        else:
            report.moved.append(m)
    return np.array([side[m] for m in media_ids], dtype="<U7"), report


def _restore_guarantees(
    facets: list[str],
    tags: list[str],
    units: list[str],
    members: dict[str, list[str]],
    previous: Mapping[str, str],
    held: set[str],
    seed: int,
    touched: set[tuple[str, str]] | None,
) -> None:
    """`group_holdout_split`'s per-tag guarantees on `held` (changed in place), finest facet first: a tag with
    every unit held out gets one back in train, a tag with two or more units and none held out gets one held out.
    A unit holding no earlier photo is moved first; among equals the stable draw picks, so a rerun moves the
    same one."""

    def pick(candidates: list[str]) -> str:
        new_only = [u for u in candidates if not any(m in previous for m in members[u])]
        return min(new_only or candidates, key=lambda u: (stable_draw(seed, u), u))

    units_of: dict[str, dict[str, set[str]]] = {}
    for facet, tag, unit in zip(facets, tags, units, strict=True):
        if touched is not None and (facet, tag) not in touched:
            continue
        units_of.setdefault(facet, {}).setdefault(tag, set()).add(unit)
    order = sorted(units_of, key=lambda f: (-len(units_of[f]), f))
    for _ in range(2):  # a move for one facet can undo another's; a second pass settles what it can
        for facet in order:
            for tag in sorted(units_of[facet]):
                mine = sorted(units_of[facet][tag])
                inside = [u for u in mine if u in held]
                if inside and len(inside) == len(mine):
                    held.discard(pick(inside))
                elif not inside and len(mine) >= 2:
                    held.add(pick(mine))
