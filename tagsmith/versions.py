"""Head versions a person restores: `tagsmith rollback LIB FACET VERSION` and `--release`.

Only a version that passed the blocking check when it was trained (it was promoted then: `promoted_at` in
`head_promotions`) can be restored, and its model file must still exist. The choice is a pin
(resources/pins.py) that every later run honours, and the library is re-tagged from cache at once by the
`retag` job (pipelines/jobs.py), through the same path as `tagsmith run` (run lock, progress, one-line
errors): one Dagster run, visible in the UI, whose `promoted_heads` materialization names the pinned version.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from resources import pins
from resources.libraries import LibraryError
from tagsmith import service

PREVIOUS = "previous"  # the version promoted last before the one in use


class VersionError(LibraryError):
    """A version that cannot be restored, or a facet with no pin to release: one line, with what can be done."""


@dataclass
class Rollback:
    facet: str
    version: str
    replaced: str | None  # the version in use until now
    outcome: service.RunOutcome


def facet_versions(library: str, facet: str) -> pl.DataFrame:
    """The `heads` rows of one facet (every version trained, with promoted / promoted_at)."""
    service.require_run(library)
    table = service.resources()["warehouse"].read(library, "heads").filter(pl.col("facet") == facet)
    if table.height == 0:
        raise LibraryError(f"library {library!r} has no head of facet {facet!r}")
    return table


def restorable(table: pl.DataFrame) -> list[str]:
    """The versions of one facet's rows that passed the blocking check once, promoted last first."""
    passed = table.filter(pl.col("promoted_at").is_not_null())
    return passed.sort(["promoted_at", "trained_at"], descending=True)["version"].to_list()


def in_use(table: pl.DataFrame) -> str | None:
    found = table.filter(pl.col("promoted"))["version"].to_list()
    return found[0] if found else None


def restorable_line(table: pl.DataFrame, facet: str) -> str:
    """What every refusal ends with: `restorable versions of product: product-v2 (in use), product-v1`."""
    current = in_use(table)
    listed = ", ".join(f"{v} (in use)" if v == current else v for v in restorable(table)) or "none"
    return f"restorable versions of {facet}: {listed}"


def resolve(table: pl.DataFrame, facet: str, version: str) -> str:
    """`version` (an id `tagsmith heads` lists, or `previous`) as a restorable version id of `facet`, else a
    VersionError naming the restorable ones."""
    candidates = restorable(table)
    where = restorable_line(table, facet)
    if not version:
        raise VersionError(f"name the version of {facet} to restore, or `{PREVIOUS}`; {where}")
    if version == PREVIOUS:
        earlier = [v for v in candidates if v != in_use(table)]
        if not earlier:
            raise VersionError(f"{facet} has no version promoted before the one in use; {where}")
        return earlier[0]
    if version not in table["version"].to_list():
        raise VersionError(f"{facet} has no version {version!r}; {where}")
    if version not in candidates:
        raise VersionError(f"{version} never passed the blocking check, so it cannot be restored; {where}")
    return version


def rollback(library: str, facet: str, version: str, env=None) -> Rollback:
    """Pin `facet` to `version` and re-tag the library from cache (the `retag` job). A run refused before it
    starts (another run holds the library, an invalid library.yaml) leaves the pins as they were."""
    table = facet_versions(library, facet)
    chosen = resolve(table, facet, version)
    res = service.resources()
    path = res["model_store"].head_path(library, facet, chosen)
    if not path.exists():
        raise VersionError(
            f"{chosen} cannot be restored: its model file is missing ({path}); {restorable_line(table, facet)}"
        )
    folder = res["libraries"].dir(library)
    saved = pins.pins_path(folder).read_bytes() if pins.pins_path(folder).exists() else None
    current = in_use(table)
    pins.pin(folder, facet, chosen, replaced=current)
    try:
        outcome = service.run_library(library, "retag", env)
    except Exception:
        if saved is None:
            pins.pins_path(folder).unlink(missing_ok=True)
        else:
            pins.pins_path(folder).write_bytes(saved)
        raise
    return Rollback(facet, chosen, current, outcome)


def release(library: str, facet: str) -> str:
    """Remove `facet`'s pin; returns the version it pinned. The version stays in use until the next run, which
    promotes the newest candidate that passes the blocking check."""
    service.resources()["libraries"].config(library)
    removed = pins.release(service.resources()["libraries"].dir(library), facet)
    if removed is None:
        raise VersionError(f"facet {facet!r} of library {library!r} is not pinned")
    return removed
