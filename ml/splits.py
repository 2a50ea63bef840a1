"""Splits that never put one group on both sides: the train/holdout split of the examples, the inner split
that chooses a head's C, and the folds of out-of-fold scores that train the evidence combiners.

Groups come from ml/groups.py (shoots, sessions, near-copies, look-alike clusters). Splitting by group
rather than by row is what makes a holdout figure a forecast for the next shoot (scikit-learn's
`StratifiedGroupKFold` does the balancing: tags keep their share on both sides where the groups allow).

Pure ML code: no Dagster, no Ray.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold


def holdout_split(labels: Sequence[str], holdout_frac: float = 0.25, seed: int = 0) -> np.ndarray:
    """Stratified train/holdout assignment by row ('train'/'holdout'), for rows that are their own groups.

    Per class (sorted, so a seed gives one draw): round(n * holdout_frac) clamped to [1, n - 1] when n >= 2; a
    class with one example goes to train, since a holdout-only tag could never be predicted.
    """
    if not 0.0 < holdout_frac < 1.0:
        raise ValueError(f"holdout_frac must be in (0, 1), got {holdout_frac}")
    labels_arr = np.asarray(list(labels))
    split = np.full(len(labels_arr), "train", dtype="<U7")
    rng = np.random.default_rng(seed)
    for label in np.unique(labels_arr):
        idx = np.flatnonzero(labels_arr == label)
        if len(idx) < 2:
            continue
        n_hold = min(len(idx) - 1, max(1, int(np.floor(len(idx) * holdout_frac + 0.5))))
        split[rng.permutation(idx)[:n_hold]] = "holdout"
    return split


def group_folds(
    y: np.ndarray, groups: Sequence[str] | None, n_splits: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, test rows) per fold, stratified by y, groups never on both sides (rows are their own groups
    when `groups` is None). The number of folds is capped by the number of groups and by the largest class
    (at least 2); a fold with an empty side is left out, and so is every fold when no class has two rows."""
    y = np.asarray(y)
    if len(y) == 0 or np.unique(y, return_counts=True)[1].max() < 2:
        return []  # one example per class: nothing can be held out stratified
    if groups is None:
        counts = np.unique(y, return_counts=True)[1]
        k = int(max(2, min(n_splits, counts.min())))
        return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    groups = np.asarray(list(groups))
    # more folds than groups, or than the largest class has members, cannot be cut
    k = int(max(2, min(n_splits, len(np.unique(groups)), np.unique(y, return_counts=True)[1].max())))
    with warnings.catch_warnings():  # "the least populated class has fewer members than n_splits": expected
        warnings.simplefilter("ignore", UserWarning)
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        return [(a, b) for a, b in splitter.split(np.zeros(len(y)), y, groups) if len(a) and len(b)]


def group_holdout_split(
    media_ids: Sequence[str],
    facets: Sequence[str],
    tags: Sequence[str],
    units: Sequence[str],
    holdout_frac: float = 0.25,
    seed: int = 0,
) -> np.ndarray:
    """'train'/'holdout' per (photo, facet, tag) row; a unit (ml/groups.py holdout_units: a shoot, a manifest
    group or a look-alike cluster) is on one side only, and so is a photo, in every facet it is labelled in.

    About `holdout_frac` of the units go to holdout, stratified by the finest facet's tag (StratifiedGroupKFold,
    one fold of round(1 / holdout_frac)). Then per facet and tag, finest facet first: a tag with every unit held
    out gets one of them back in train (a tag never trained on could never be predicted), and a tag with two or
    more units and none held out gets one held out (nor could one never measured be judged). The unit is drawn
    at random, weighted by its photos, not the smallest: small units are the unusual shoots, and a holdout of
    unusual shoots is pessimistic. Moving a unit moves all its photos, so the guarantee holds.
    """
    media_ids, facets, tags, units = list(media_ids), list(facets), list(tags), list(units)
    if not len(media_ids) == len(facets) == len(tags) == len(units):
        raise ValueError("media_ids, facets, tags and units differ in length")
    if not 0.0 < holdout_frac < 1.0:
        raise ValueError(f"holdout_frac must be in (0, 1), got {holdout_frac}")
    unit_of = dict(zip(media_ids, units, strict=True))
    rows_of: dict[str, list[int]] = {}
    for i, facet in enumerate(facets):
        rows_of.setdefault(facet, []).append(i)
    order = sorted(rows_of, key=lambda f: (-len({tags[i] for i in rows_of[f]}), f))  # the finest facet first
    photos = list(dict.fromkeys(media_ids))
    finest = {media_ids[i]: tags[i] for i in rows_of[order[0]]} if order else {}
    held: set[str] = set()
    all_units = list(dict.fromkeys(unit_of[m] for m in photos))
    if len(all_units) >= 2:
        k = max(2, min(round(1 / holdout_frac), len(all_units)))
        labels = np.array([finest.get(m, "") for m in photos])
        folds = group_folds(labels, [unit_of[m] for m in photos], k, seed)
        held = {unit_of[photos[i]] for i in folds[0][1]} if folds else set()
    size = dict.fromkeys(all_units, 0)
    for m in photos:
        size[unit_of[m]] += 1
    rng = np.random.default_rng(seed)

    def draw(candidates: list[str]) -> str:  # a unit drawn like a photo: the larger, the likelier
        weights = np.array([size[u] for u in candidates], dtype=float)
        return candidates[rng.choice(len(candidates), p=weights / weights.sum())]

    for _ in range(2):  # a move for one facet can undo another's; a second pass settles what it can
        for facet in order:
            units_of_tag: dict[str, set[str]] = {}
            for i in rows_of[facet]:
                units_of_tag.setdefault(tags[i], set()).add(units[i])
            for tag in sorted(units_of_tag):
                mine = sorted(units_of_tag[tag])
                inside = [u for u in mine if u in held]
                if inside and len(inside) == len(mine):
                    held.discard(draw(inside))
                elif not inside and len(mine) >= 2:
                    held.add(draw(mine))
    return np.array(["holdout" if unit_of[m] in held else "train" for m in media_ids], dtype="<U7")
