"""From the rows the heads proposed to the `tags` table: retired tags left out, people's verdicts laid over.

The last step of scoring, shared by the `tags` asset (every photo of a run) and the one-photo tagger
(tagsmith/tag_now.py), so a photo tagged now leaves out and keeps exactly what a run would.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ml.catalog import Catalog
from ml.verdicts import apply_labels, person_labels
from resources.tables import frame
from resources.verdicts import read_verdicts


@dataclass(frozen=True)
class TagsTable:
    table: pl.DataFrame  # the `tags` rows
    retired_left_out: int  # predictions of retired tags a head in use still knows, not written


def people_labels(library_dir: Path, catalog: Catalog) -> pl.DataFrame:
    """The labels people set in the library (its verdict log, ml/verdicts.py rules), one row per labelled tag."""
    return person_labels(read_verdicts(library_dir), catalog.multi_facets())


def tags_table(rows: Sequence[dict], catalog: Catalog, labels: pl.DataFrame, media_ids: Collection[str]) -> TagsTable:
    """The `tags` rows of `rows` (what the heads proposed for the photos `media_ids`).

    A head trained before a tag was retired still knows it (one that retrains without it may be held back by the
    blocking check): no head's prediction of a retired tag is written, whichever head is in use (a person's label
    of it still is). People win: a tag someone accepted, set or rejected is `manual` / `rejected` whatever the
    heads say; only the labels of `media_ids` count (a photo gone from the library keeps its log only)."""
    proposed = frame("tags", list(rows))
    retired = sorted(catalog.retired())
    stale = proposed.filter(pl.col("tag_id").is_in(retired))
    if stale.height:
        proposed = proposed.filter(~pl.col("tag_id").is_in(retired))
    labels = labels.filter(pl.col("media_id").is_in(list(media_ids)))
    table = frame("tags", apply_labels(proposed, labels, catalog.multi_facets()))
    return TagsTable(table, stale.height)
