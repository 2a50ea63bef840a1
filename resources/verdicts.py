"""The verdict log of a library: every accept / reject / replace people gave, who and when, never rewritten.

It lives in the library's folder (`verdicts.csv`, next to library.yaml, the catalog and the example manifests),
not in the warehouse: it is people's work, like the examples, and survives a warehouse rebuilt from scratch.
Appends only, one write per batch (a reviewer's verdict is on disk before the next item is shown); the rules that
turn the log into labels are ml/verdicts.py.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import polars as pl

from ml.catalog import Catalog, Example
from ml.verdicts import LOG_SCHEMA, person_labels

LOG_NAME = "verdicts.csv"


def log_path(library_dir: Path) -> Path:
    return Path(library_dir) / LOG_NAME


def append_verdicts(library_dir: Path, rows: list[dict]) -> int:
    """Append `rows` (LOG_SCHEMA's keys; missing ones empty) to the library's log; returns how many."""
    if not rows:
        return 0
    path = log_path(library_dir)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(LOG_SCHEMA), lineterminator="\n")
    if not path.exists() or path.stat().st_size == 0:
        writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in LOG_SCHEMA})
    with path.open("a", encoding="utf-8", newline="") as out:
        out.write(buffer.getvalue())
    return len(rows)


def read_verdicts(library_dir: Path) -> pl.DataFrame:
    """The whole log, oldest first (empty with its columns when nobody has reviewed yet)."""
    path = log_path(library_dir)
    if not path.exists():
        return pl.DataFrame(schema=LOG_SCHEMA)
    table = pl.read_csv(path, schema=LOG_SCHEMA)
    return table.with_columns(pl.col(c).replace("", None) for c, t in LOG_SCHEMA.items() if t == pl.String)


def verdict_examples(library_dir: Path, catalog: Catalog) -> tuple[list[Example], list[str]]:
    """Example labels that people's verdicts make (source `review` for an accepted tag, `correction` for a
    replacement): the photos' `manual` tags of single facets, so the facet's head learns from them on the next
    run. Multi facets' verdicts stay labels only: a library photo with a 2 % logo as a reference view would teach
    the logo's keypoints the rest of the scene. Returns the examples and one line per label left out (a tag no
    longer in the catalog)."""
    labels = person_labels(read_verdicts(library_dir), catalog.multi_facets())
    tags = catalog.by_id()
    examples, skipped = [], []
    manual = labels.filter((pl.col("status") == "manual") & pl.col("start_s").is_null())
    for i, row in enumerate(manual.sort("set_at", "media_id").iter_rows(named=True)):
        if catalog.mode(row["facet"]) == "multi":
            continue
        tag = tags.get(row["tag_id"])
        if tag is None or tag.facet != row["facet"]:
            skipped.append(f"{LOG_NAME}: {row['uri']}: tag {row['tag_id']!r} is no longer in facet {row['facet']!r}")
            continue
        examples.append(
            Example(uri=row["uri"], tag_id=row["tag_id"], facet=row["facet"], line=i + 2, source=row["origin"])
        )
    return examples, skipped
