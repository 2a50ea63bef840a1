"""The DuckDB views of a library, derived from the table registry (resources/tables.py).

One view per table over its files, read with `union_by_name` so a column added to a table later does not break
a view over older parts; a typed empty view for a video table no run has written (queries join a library's
video tables without a special case); the registry's derived views (`heads`); and the analyst views of
sql/views.sql once media, catalog and tags exist.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from resources.sql_files import load_sql
from resources.tables import TABLES, Table

ANALYST_VIEWS = ("tag_details", "review_queue", "coverage")  # sql/views.sql


def table_files(library_dir: Path, spec: Table) -> list[str]:
    """The files a stored table's globs match now (parts of several writers together), sorted."""
    found = {str(p) for g in spec.globs() for p in library_dir.glob(g) if p.is_file()}
    return sorted(found)


def _quoted(paths: list[str]) -> str:
    # DDL cannot take bound parameters: the table names are the registry's and the paths are ours (quoted),
    # never user text.
    return ", ".join("'" + s.replace("'", "''") + "'" for s in paths)


def create_views(con: duckdb.DuckDBPyConnection, sources: dict[str, list[str]]) -> list[str]:
    """Create a library's views in `con`'s current schema. `sources`: per stored table, the files or globs its
    view reads (`Warehouse.view_sources`). Returns the views' names."""
    created = []
    for name, spec in TABLES.items():
        if not spec.view or spec.sql:
            continue
        if name in sources:
            con.execute(
                f"CREATE OR REPLACE VIEW {name} AS "
                f"SELECT * FROM read_parquet([{_quoted(sources[name])}], union_by_name = true)"
            )
        elif spec.empty_view:
            con.execute(f"CREATE OR REPLACE VIEW {name} AS {spec.empty_sql()}")
        else:
            continue
        created.append(name)
    for name, spec in TABLES.items():
        if spec.sql and spec.view:
            needs = [t for t in TABLES if t != name and t in spec.sql.split()]
            if all(t in created for t in needs):
                con.execute(f"CREATE OR REPLACE VIEW {name} AS {spec.sql}")
                created.append(name)
    if {"media", "catalog", "tags"} <= set(created):
        con.execute(load_sql("views"))
        created.extend(ANALYST_VIEWS)
    return created
