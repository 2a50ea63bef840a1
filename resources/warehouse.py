"""Tables analysts query: Parquet files per library, registered as DuckDB views (schema = library).

Which tables exist, their columns and writers: resources/tables.py (the registry); `write` checks a frame
against it and `read` returns an empty frame of the declared columns for a table no run has written; the views
are built from it (resources/table_views.py). Writers replace a table atomically (temp file + rename), so a
reader never sees half a table. Embeddings
are append-only part files (one per Ray task), keyed by (media_id, ts, model): a vector is never computed
twice, and adding media adds files instead of rewriting the store.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import duckdb
import numpy as np
import polars as pl
from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from resources.libraries import LibraryError
from resources.library_readers import READERS
from resources.run_lock import RunLock
from resources.sql_files import load_sql
from resources.table_views import create_views, table_files
from resources.tables import TABLES, table_of

SAFE = re.compile(r"^[a-z0-9_]+$")


def _model_dir_name(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model)


class Warehouse(ConfigurableResource):
    """The library's tables. In a Dagster run of one library (partition) the warehouse is that library's only
    writer: it takes the library's run lock when the run starts and drops it when the run ends
    (`resources/run_lock.py`); a second run waits `run_lock_wait_s` seconds, then stops with one line naming
    the run that holds the library. Readers (search, sql, export) never take the lock."""

    root: str
    duckdb_path: str
    run_lock_wait_s: float = 0.0
    _run_lock: RunLock | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        run = context.run
        library = run.tags.get("dagster/partition") if run is not None else None
        if run is not None and any(tag.startswith("dagster/partition/") for tag in run.tags):
            # a run of one (library, event) sponsor report (a multi-partition): it writes only its event's own
            # files, beside whatever run holds the library, and reads tables that are replaced atomically. It
            # takes no library lock, so a report never fails or waits because the library is being retagged.
            library = None
        if library:
            lock = RunLock(self.library_dir(library), library)
            lock.acquire(run.run_id, self.run_lock_wait_s, on_wait=lambda m: context.log.warning(f"{m}: waiting"))
            self._run_lock = lock

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._run_lock is not None:
            self._run_lock.release()
            self._run_lock = None

    def run_lock(self, library: str) -> RunLock:
        """The library's run lock (to ask who holds it; runs take it through setup_for_execution)."""
        return RunLock(self.library_dir(library), library)

    def library_dir(self, library: str) -> Path:
        if not SAFE.match(library):
            raise ValueError(f"library name {library!r} must match [a-z0-9_]+")
        return Path(self.root) / library

    def reports_dir(self, library: str) -> Path:
        """HTML and pictures for people (contact sheets, evaluation), next to the library's tables."""
        return self.library_dir(library) / "reports"

    def table_path(self, library: str, table: str) -> Path:
        """The file of a table or of one part of a table (resources/tables.py)."""
        return self.library_dir(library) / f"{table}.parquet"

    def exists(self, library: str, table: str) -> bool:
        """Whether a run has written `table` (a table with parts: any part), as opposed to it being empty."""
        return bool(self.files(library, table))

    def files(self, library: str, table: str) -> list[str]:
        """The Parquet files `table` (or one part of it) is read from now, sorted."""
        spec = table_of(table)
        if table in (spec.parts or {}):
            path = self.table_path(library, table)
            return [str(path)] if path.exists() else []
        if spec.sql:
            return []
        return table_files(self.library_dir(library), spec)

    def read(self, library: str, table: str) -> pl.DataFrame:
        """The table (or one part of it) with its declared columns; empty, typed, when no run has written it."""
        spec = table_of(table)
        if spec.sql:
            with self.reader(library) as con:
                has = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
                if spec.name not in has:
                    return spec.empty()
                return spec.conform(con.sql(f"SELECT * FROM {spec.name}").pl(), table)
        files = self.files(library, table)
        if not files:
            return spec.empty()
        return spec.conform(pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed"), table, True)

    def write(self, library: str, table: str, df: pl.DataFrame, file: str | None = None) -> Path:
        """Replace `table` (or one part of it) by `df` atomically, in the declared columns and types. `file`: one
        of the files of a table stored as many (its path under the library folder, matching one of the table's
        `files` globs: an event's sponsor tables)."""
        spec = table_of(table)
        if spec.sql or (spec.parts and table not in spec.parts):
            raise ValueError(f"table {table!r} is read from other files; write {sorted(spec.parts or [])} instead")
        df = spec.conform(df, table)
        path = self.table_path(library, table) if file is None else self._table_file(library, spec, file)
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f"{path.stem}.tmp-*"):  # left by a writer killed mid-write (one writer a run)
            stale.unlink(missing_ok=True)
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        df.write_parquet(tmp)
        os.replace(tmp, path)
        return path

    def _table_file(self, library: str, spec, file: str) -> Path:
        parts = PurePosixPath(file).parts
        if not spec.files or PurePosixPath(file).is_absolute() or ".." in parts:
            raise ValueError(f"table {spec.name!r} is not stored as files under the library folder: {file!r}")
        if not any(fnmatch.fnmatchcase(file, g) and len(PurePosixPath(g).parts) == len(parts) for g in spec.files):
            raise ValueError(f"{file!r} is not a file of table {spec.name!r} (its files: {', '.join(spec.files)})")
        return self.library_dir(library).joinpath(*parts)

    def upsert(self, library: str, table: str, new: pl.DataFrame, key: list[str]) -> pl.DataFrame:
        """Add `new` to `table`, replacing the old rows of every key `new` holds (nulls match nulls): the append
        of ocr_text, keypoints and frames, which a rerun or a forced double run cannot duplicate. Returns the
        table as written."""
        old = self.read(library, table)
        if old.height == 0:
            merged = new
        else:
            stale = new.select(key).unique()
            merged = pl.concat([old.join(stale, on=key, how="anti", nulls_equal=True), new], how="vertical_relaxed")
        self.write(library, table, merged)
        return merged

    # embeddings -------------------------------------------------------------------------------------------
    def embeddings_dir(self, library: str, model: str) -> Path:
        return self.library_dir(library) / "embeddings" / _model_dir_name(model)

    def embedded_ids(self, library: str, model: str) -> set[str]:
        files = self._embedding_files(library, model)
        if not files:
            return set()
        photos = pl.scan_parquet(files).filter(pl.col("ts").is_null()).select("media_id")
        return set(photos.collect()["media_id"].to_list())

    def read_embeddings(self, library: str, model: str, media_ids=None) -> tuple[list[str], np.ndarray]:
        """(ids, matrix) for `media_ids` (all when None), in the order given; missing ids are left out."""
        files = self._embedding_files(library, model)
        if not files:
            return [], np.zeros((0, 0), np.float32)
        lf = (
            pl.scan_parquet(files)
            .filter(pl.col("ts").is_null())  # photos; video frames are read per video (read_frame_embeddings)
            .select("media_id", "vector")
            .unique("media_id", keep="first")
        )
        if media_ids is not None:
            order = pl.DataFrame({"media_id": list(media_ids)}, schema={"media_id": pl.String}).with_row_index("_order")
            lf = order.lazy().join(lf, on="media_id", how="inner").sort("_order").drop("_order")
        df = lf.collect()
        if df.height == 0:
            return [], np.zeros((0, 0), np.float32)
        matrix = np.asarray(df["vector"].to_numpy(), dtype=np.float32)
        if matrix.ndim == 1:  # older polars returns an object array of arrays
            matrix = np.stack(matrix)
        return df["media_id"].to_list(), matrix

    def video_range_path(self, library: str, model: str, media_id: str, start_s: float) -> Path:
        """Where one time range of one video's frame embeddings goes (the zero-padded start sorts by time)."""
        return self.embeddings_dir(library, model) / f"video-{media_id[:16]}-{int(start_s):07d}.parquet"

    def frame_keypoints_path(self, library: str, model: str, media_id: str, start_s: float) -> Path:
        """ORB features of one time range of one video (written by the range task, read range by range)."""
        base = self.library_dir(library) / "frame_keypoints" / _model_dir_name(model)
        return base / f"video-{media_id[:16]}-{int(start_s):07d}.parquet"

    def read_frame_keypoints(self, library: str, model: str, media_id: str, start_s: float) -> dict:
        """{ts rounded to 4 places: (xy bytes, desc bytes)} of one range ({} when it has none)."""
        path = self.frame_keypoints_path(library, model, media_id, start_s)
        if not path.exists():
            return {}
        table = pl.read_parquet(path)
        return {round(ts, 4): (xy, desc) for ts, xy, desc in table.select("ts", "xy", "desc").iter_rows()}

    def iter_frame_embeddings(
        self, library: str, model: str, media_id: str
    ) -> Iterator[tuple[list[float], np.ndarray]]:
        """(timestamps, matrix) of one video's embedded frames, one time range at a time, in time order.

        Memory holds one range (600 frames at 1 fps), whatever the video's length.
        """
        base = self.embeddings_dir(library, model)
        for path in sorted(base.glob(f"video-{media_id[:16]}-*.parquet")) if base.exists() else []:
            df = pl.read_parquet(path).filter(pl.col("media_id") == media_id).sort("ts")
            if df.height:
                yield df["ts"].to_list(), np.stack(df["vector"].to_numpy()).astype(np.float32)

    def _embedding_files(self, library: str, model: str) -> list[str]:
        base = self.embeddings_dir(library, model)
        return sorted(str(p) for p in base.glob("*.parquet")) if base.exists() else []

    # DuckDB -------------------------------------------------------------------------------------------------
    def connect(self, read_only: bool = True) -> duckdb.DuckDBPyConnection:
        """The shared DuckDB file analysts' tools open (every library's schema of views)."""
        Path(self.duckdb_path).parent.mkdir(parents=True, exist_ok=True)
        if read_only and not Path(self.duckdb_path).exists():
            duckdb.connect(self.duckdb_path).close()
        return duckdb.connect(self.duckdb_path, read_only=read_only)

    def reader(self, library: str) -> duckdb.DuckDBPyConnection:
        """An in-memory connection holding `library`'s views, for the named queries (search, segments, export,
        head_metrics). It never opens the shared file, so a run writing that file and a reader never wait for
        or fail on each other, and it works before the first run's `warehouse_views`."""
        con = duckdb.connect(":memory:")
        create_views(con, self.view_sources(library))
        return con

    def view_sources(self, library: str, exact: bool = True) -> dict[str, list[str]]:
        """Per stored table that has files, what its view reads: the files themselves (`exact`: the per-call
        SQL sandbox, resources/sql_sandbox.py, which must allow exactly these files and no others), or the
        table's globs (the shared DuckDB file, whose views then see parts added after they were made)."""
        base = self.library_dir(library)  # validates the name
        sources: dict[str, list[str]] = {}
        for name, spec in TABLES.items():
            if not spec.view or spec.sql:
                continue
            if exact:
                files = table_files(base, spec)
            else:  # the globs that match something now (DuckDB refuses one that matches nothing)
                files = [str(base / g) for g in spec.globs() if any(p.is_file() for p in base.glob(g))]
            if files:
                sources[name] = files
        return sources

    def register_views(self, library: str) -> list[str]:
        """Rewrite the shared DuckDB file with every library's schema of views (sql/views.sql) and return
        `library`'s views. The file is built aside and renamed over the old one: an analyst's tool holding the
        old file open (DuckDB locks it) never makes a run fail, and sees the new views when it reopens."""
        self.library_dir(library)  # validates the name: it becomes an SQL identifier below
        target = Path(self.duckdb_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        tmp.unlink(missing_ok=True)
        names = {library} | {p.name for p in Path(self.root).iterdir() if SAFE.match(p.name) and p.is_dir()}
        created: list[str] = []
        with duckdb.connect(str(tmp)) as con:
            for name in sorted(names):
                sources = self.view_sources(name, exact=False)
                if not sources:
                    continue
                con.execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"')
                con.execute(f'SET schema = "{name}"')
                views = create_views(con, sources)
                if name == library:
                    created = views
        os.replace(tmp, target)
        return created

    def query(self, library: str, name: str, params: dict | None = None) -> pl.DataFrame:
        """Run a named query from sql/ against the library's views, with bound parameters: on a cursor of the
        library's warm connection (resources/library_readers.py: thread-safe, rebuilt when a run changes the
        library's files), the views `reader` would build."""
        sources = self.view_sources(library)
        with READERS.cursor(self.library_dir(library), sources) as con:
            try:
                return pl.from_arrow(con.sql(load_sql(name), params=params or {}).to_arrow_table())
            except duckdb.CatalogException as exc:  # a table the library's runs have not written yet
                first = str(exc).strip().splitlines()[0]
                raise LibraryError(
                    f"library {library!r} has no such table yet ({first}): its runs have not got that far; "
                    f"see `tagsmith run {library}`"
                ) from None
