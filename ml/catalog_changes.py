"""What changed between two versions of a catalog: the rows of the `catalog_changes` history.

Catalogs change every season. The catalog file holds only the present, and the `catalog` table is rewritten
each run, so without a record a retired product, a renamed one or one moved to another facet would leave no
trace of when it happened; tags and heads made before the change could no longer be explained. History is
appended to, never rewritten: a change is recorded once, with the time a run first saw it.

Pure code on plain rows (the `catalog` table's tag_id, facet, name, retired): no Dagster, no Ray.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# what a row of `catalog_changes` says happened to a tag
CHANGES = ("added", "retired", "unretired", "renamed", "moved", "removed")


def catalog_changes(previous: Iterable[Mapping], current: Iterable[Mapping], seen_at: str) -> list[dict]:
    """One row per change from `previous` to `current` catalog rows: {tag_id, facet, change, name, before,
    seen_at}. `before` is the earlier name (renamed) or facet (moved), else None. The first catalog (no
    `previous`) records every tag as added, and a tag added already retired as added and retired. A retired
    flag read from a table written before the column existed (None) counts as not retired."""
    old = {r["tag_id"]: r for r in previous}
    new = {r["tag_id"]: r for r in current}
    rows: list[dict] = []

    def record(row: Mapping, change: str, before: str | None = None) -> None:
        rows.append(
            {
                "tag_id": row["tag_id"],
                "facet": row["facet"],
                "change": change,
                "name": row["name"],
                "before": before,
                "seen_at": seen_at,
            }
        )

    for tag_id in sorted(new):
        row, was = new[tag_id], old.get(tag_id)
        retired = bool(row.get("retired"))
        if was is None:
            record(row, "added")
            if retired:
                record(row, "retired")
            continue
        if was["facet"] != row["facet"]:
            record(row, "moved", was["facet"])
        if was["name"] != row["name"]:
            record(row, "renamed", was["name"])
        if retired != bool(was.get("retired")):
            record(row, "retired" if retired else "unretired")
    for tag_id in sorted(set(old) - set(new)):
        record(old[tag_id], "removed")
    return rows
