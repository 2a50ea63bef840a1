"""Warm readers of a library's views, shared by the threads of one process (the HTTP API's workers, the CLI).

Building a library's views for each call (a DuckDB connection, one view per table, each view's Parquet files
opened to bind it) cost ~35 ms of CPU a call on a 1,000,000-tag library, where the search itself costs ~70 ms
(benchmarks/search_latency.py). So each library keeps one in-memory connection with its views, and every call
gets its own `cursor()` of it: a cursor is a connection of its own to the same database (safe to use from its
thread while others use theirs), and sees the same views.

Never stale: the views name files, so what a view reads changes when a run writes a new file or replaces one
(writers replace a table by renaming a new file over it: resources/warehouse.py). Each call lists the library's
table files (`Warehouse.view_sources`, the globs a run writes) and stats them: the (path, inode, mtime, size) of
every file is the connection's signature, and a different signature (a file added, removed or replaced, even
within one clock tick, since a rename brings a new inode) builds a new connection. The old one is dropped, not
closed: a cursor a thread still reads from keeps its database alive until it is done (closing the parent would
break that cursor mid-query).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

import duckdb

from resources.table_views import create_views

Signature = tuple[tuple[str, int, int, int], ...]


def files_signature(sources: dict[str, list[str]]) -> Signature:
    """What the views' files are now: (path, inode, mtime_ns, size) of each, in a stable order; a file gone
    since it was listed reads (path, -1, -1, -1), so the next call (which no longer lists it) differs again."""
    out = []
    for path in sorted({p for files in sources.values() for p in files}):
        try:
            st = os.stat(path)
        except FileNotFoundError:  # replaced or removed between listing and stat: recorded as gone, not hidden
            out.append((path, -1, -1, -1))
            continue
        out.append((path, st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(out)


class LibraryReaders:
    """One warm connection per library (the `max_libraries` most recently used), handed out as cursors."""

    def __init__(self, max_libraries: int = 32):
        self.max_libraries = max_libraries
        self._lock = threading.Lock()
        self._connections: OrderedDict[Path, tuple[Signature, duckdb.DuckDBPyConnection]] = OrderedDict()
        self.builds = 0  # connections built so far (tests and the benchmark read it)

    def cursor(self, library_dir: Path, sources: dict[str, list[str]]) -> duckdb.DuckDBPyConnection:
        """A cursor over the views of the library at `library_dir` reading `sources` (per table, its files).
        The caller closes it (`with readers.cursor(...) as con:`)."""
        signature = files_signature(sources)
        with self._lock:
            entry = self._connections.get(library_dir)
            if entry is None or entry[0] != signature:
                con = duckdb.connect(":memory:")
                create_views(con, sources)
                entry = (signature, con)
                self._connections[library_dir] = entry
                self.builds += 1
            self._connections.move_to_end(library_dir)
            while len(self._connections) > self.max_libraries:
                self._connections.popitem(last=False)
            return entry[1].cursor()

    def clear(self) -> None:
        with self._lock:
            self._connections.clear()


READERS = LibraryReaders()  # the process's: every Warehouse of one root shares a library's connection
