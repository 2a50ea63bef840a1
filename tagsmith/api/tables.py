"""Tables as JSON: polars rows with NaN as null (JSON has no NaN) and nothing a client should not see."""

from __future__ import annotations

import polars as pl

from resources.libraries import LibraryError
from tagsmith import service
from tagsmith.api.errors import ApiError, not_found


def rows(table: pl.DataFrame, drop: tuple[str, ...] = ()) -> list[dict]:
    table = table.drop([c for c in drop if c in table.columns])
    floats = [c for c, t in table.schema.items() if t.is_float()]
    if floats:
        table = table.with_columns(pl.col(floats).fill_nan(None))
    return table.to_dicts()


def ready(library: str) -> None:
    """The caller's library exists and has run; `not_found` / `not_ready` otherwise (the checks of
    `service.require_run`, told apart without reading its message)."""
    try:
        service.resources()["libraries"].config(library)
    except LibraryError:
        raise not_found(f"library {library!r}") from None
    if not service.has_run(library):
        raise ApiError("not_ready", f"library {library!r} has not run yet: its first run makes it searchable")
