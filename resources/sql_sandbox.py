"""SQL that a person (CLI `tagsmith sql`) or another system (the HTTP API) sends: run in a sandbox.

Each call gets a fresh in-memory DuckDB connection that holds one library's views and nothing else: no other
library's schema (the shared DuckDB file is never opened, so there is nothing to `ATTACH`, `USE` or list in
`information_schema`), and a writer holding that file's lock cannot make the call fail. Before the user's SQL
runs, the connection is locked down by DuckDB's own settings:

- `allowed_paths` = exactly the library's Parquet files (`Warehouse.view_sources`, listed when the call starts;
  the shared DuckDB file's views read globs instead, so they see parts added later): the views read them; any
  other path (`/etc/passwd`, another library's `tags.parquet`, `../other/...`, a glob, a URL) is refused.
  Exact files rather than `allowed_directories`: a directory prefix would also admit the library's reports and
  whatever lands beside its tables, and exact strings leave no `..` or prefix (`shoes` / `shoes_old`) to reason
  about;
- `enable_external_access = false`: no other file, no network, no extension install or load, no replacement
  scans of the caller's Python variables; `temp_directory = ''`, so DuckDB's spill folder (which it would
  otherwise allow) is not a writable place either; extension auto-install and auto-load off;
- `memory_limit`, then `lock_configuration = true`: the SQL cannot `SET` any of this back.

On top of DuckDB's checks the statement itself is parsed first (DuckDB's own parser, `extract_statements`):
exactly one statement, and of type SELECT (which covers `WITH`, `FROM`-first, `VALUES`, `DESCRIBE`, `SHOW`,
`SUMMARIZE`). `COPY`, `ATTACH`, `INSTALL`/`LOAD`, `SET`, `PRAGMA`, `CREATE`/`DROP`, `EXPORT`, `CALL` and
`EXPLAIN` (whose `ANALYZE` would run any statement) never reach execution: the library's tables cannot be
written through the sandbox even where DuckDB would allow the path. The result is cut at `max_rows` (the
query is wrapped in a LIMIT, so DuckDB stops early) and the query is interrupted after `timeout_s`
(`DuckDBPyConnection.interrupt` from a timer).

Every refusal and every SQL error is a `SandboxError` whose message is one line, for the CLI to print as is.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import duckdb
import polars as pl

from resources.warehouse import Warehouse, create_views

DEFAULT_MAX_ROWS = 10_000
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MEMORY_LIMIT = "2GB"


class SandboxError(ValueError):
    """A statement the sandbox refuses, or one that failed in it; the message is one line."""


@dataclass(frozen=True)
class SqlResult:
    table: pl.DataFrame
    truncated: bool  # more rows than max_rows: `table` holds the first max_rows
    seconds: float


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def check_statement(statement: str) -> str:
    """The one SELECT statement in `statement` (parsed by DuckDB), or SandboxError saying why not."""
    try:
        parsed = duckdb.extract_statements(statement)
    except duckdb.Error as exc:
        raise SandboxError(f"SQL does not parse: {_one_line(exc)}") from None
    if not parsed:
        raise SandboxError("no SQL statement given")
    if len(parsed) > 1:
        kinds = ", ".join(s.type.name for s in parsed)
        raise SandboxError(f"one statement at a time: got {len(parsed)} ({kinds})")
    if parsed[0].type != duckdb.StatementType.SELECT:
        raise SandboxError(f"only SELECT queries run here (read-only): {parsed[0].type.name} refused")
    return parsed[0].query


def sandbox_connection(
    warehouse: Warehouse, library: str, memory_limit: str = DEFAULT_MEMORY_LIMIT
) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory connection with `library`'s views, locked down (see the module's docstring)."""
    sources = warehouse.view_sources(library)
    if not sources:
        raise SandboxError(f"library {library!r} has no tables yet: run `tagsmith run {library}` first")
    con = duckdb.connect(
        ":memory:",
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    try:
        allowed = [path for files in sources.values() for path in files]
        con.execute("SET allowed_paths = $paths", {"paths": allowed})
        con.execute("SET temp_directory = ''")
        con.execute("SET enable_external_access = false")
        con.execute("SET allow_community_extensions = false")
        con.execute("SET memory_limit = $limit", {"limit": memory_limit})
        con.execute("SET lock_configuration = true")
        create_views(con, sources)
    except BaseException:
        con.close()
        raise
    return con


def run_sandboxed(
    warehouse: Warehouse,
    library: str,
    statement: str,
    max_rows: int = DEFAULT_MAX_ROWS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> SqlResult:
    """Run one read-only SELECT against `library`'s views only; at most `max_rows` rows, at most `timeout_s`."""
    if max_rows < 1:
        raise SandboxError(f"the row limit must be at least 1, not {max_rows}")
    if not timeout_s > 0:
        raise SandboxError(f"the time-out must be above 0 seconds, not {timeout_s}")
    query = check_statement(statement)
    start = time.perf_counter()
    con = sandbox_connection(warehouse, library, memory_limit)
    try:
        arrow = _fetch(con, library, query, max_rows + 1, timeout_s)
    finally:
        con.close()
    table = pl.from_arrow(arrow)
    return SqlResult(table.head(max_rows), table.height > max_rows, time.perf_counter() - start)


def _tabular(rel: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """`rel` as a table polars (and JSON) can hold: INTERVAL and UNION values as text (polars cannot import
    them, and panics on nested intervals), repeated column names numbered (`SELECT *` over a join repeats
    `media_id`). Unchanged when nothing needs it."""
    used: set[str] = set()
    exprs, changed = [], False
    for i, (name, dtype) in enumerate(zip(rel.columns, rel.types, strict=True), start=1):
        out, n = name, 1
        while out in used:
            n += 1
            out = f"{name}_{n}"
        used.add(out)
        cast = "INTERVAL" in str(dtype) or "UNION" in str(dtype)
        changed = changed or cast or out != name
        expr = f"CAST(#{i} AS VARCHAR)" if cast else f"#{i}"
        exprs.append(f'{expr} AS "{out.replace(chr(34), chr(34) * 2)}"')
    return rel.project(", ".join(exprs)) if changed else rel


def _fetch(con: duckdb.DuckDBPyConnection, library: str, query: str, rows: int, timeout_s: float):
    """At most `rows` rows of `query` as Arrow, interrupted after `timeout_s`; DuckDB errors as SandboxError."""
    timer = threading.Timer(timeout_s, con.interrupt)
    timer.daemon = True
    timer.start()
    try:
        return _tabular(con.sql(query)).limit(rows).to_arrow_table()
    except duckdb.InterruptException:
        raise SandboxError(f"stopped after the time-out of {timeout_s:g} s") from None
    except duckdb.PermissionException as exc:
        raise SandboxError(f"refused: only library {library!r}'s tables can be read here ({_one_line(exc)})") from None
    except duckdb.CatalogException as exc:
        names = sorted(r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall())
        raise SandboxError(f"{_one_line(exc)} (library {library!r} has: {', '.join(names)})") from None
    except duckdb.Error as exc:
        raise SandboxError(_one_line(exc)) from None
    finally:
        timer.cancel()
