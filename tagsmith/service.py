"""What the CLI (and later the HTTP API) does, as plain functions over the same resources as the pipeline."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import duckdb
import polars as pl

from ml.backbones import cached_backbone
from ml.catalog_names import requested_language
from ml.media import decode_image
from ml.search_text import search_terms
from ml.sniff import HEAD_BYTES, sniff
from resources import build_resources, tagsmith_home
from resources.backbone_plan import BackbonePlan
from resources.libraries import LibraryError, LibraryStore
from resources.sql_sandbox import DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT_S, SqlResult, run_sandboxed
from resources.warehouse import Warehouse
from tagsmith.runs import (  # noqa: F401 - the verbs' one place: re-exported for the CLI, the API and the demo
    RunOutcome,
    _execute,
    check_library,
    ensure_dagster_home,
    fail_dead_runs,
    register_partition,
    run_library,
)

log = logging.getLogger(__name__)
DEFAULT_STATUSES = ("applied", "manual")


class SearchError(ValueError):
    """A search asked for something that cannot be (a negative offset): one line for the CLI and the API."""


def has_run(name: str, table: str = "media") -> bool:
    """Whether a run has written the library's `table` (`media`: the first thing a run writes)."""
    return resources()["warehouse"].exists(name, table)


def require_run(name: str) -> None:
    """Verbs that read a library's tables say so in one line when it never ran."""

    resources()["libraries"].config(name)
    if not has_run(name):
        raise LibraryError(f"library {name!r} has not run yet: `tagsmith run {name}` first")


def sponsor_report(library: str, event: str, env=None, log_level: str | None = None) -> tuple[RunOutcome, Path]:
    """Materialise the (library, event) sponsor report through Dagster (the `sponsor_report` job) and return the
    outcome and where its index.html is. An event the library.yaml does not name, or a library that never ran,
    is a LibraryError (one line) before any run. A report takes no library lock (it writes only its event's
    files; resources/warehouse.py), so it runs beside a retag."""
    from dagster import MultiPartitionKey

    res = resources()
    res["libraries"].config(library).event(event)
    require_run(library)
    register_partition(library)
    register_partition(event, "event")
    outcome = _execute("sponsor_report", MultiPartitionKey({"library": library, "event": event}), env, log_level)
    return outcome, res["warehouse"].reports_dir(library) / "events" / event / "index.html"


def resources():
    return build_resources()


def with_places(hits: pl.DataFrame) -> pl.DataFrame:
    """A `place` column people read: the file name, plus `00:38:12–00:38:19` for a video segment."""
    from ml.segments import format_timestamp

    def place(row: dict) -> str:
        name = row["uri"].rsplit("/", 1)[-1]
        if row["start_s"] is None:
            return name
        return f"{name} {format_timestamp(row['start_s'])}–{format_timestamp(row['end_s'])}"

    return hits.with_columns(pl.struct(hits.columns).map_elements(place, return_dtype=pl.String).alias("place"))


def search(
    library: str,
    text: str,
    limit: int = 20,
    offset: int = 0,
    facets: Sequence[str] = (),
    lang: str | None = None,
    include_review: bool = False,
) -> pl.DataFrame:
    """Photos and video segments whose tags match every typed word (sql/search.sql), folded like the catalog.

    `offset` pages through the hits (their order is total, so pages never overlap); `facets` limits the tags a
    word may match to those facets; `lang` (a code like `fr`, `pt-br`) names the matched tags in that language
    where the catalog gives one (`matched`), while `tag_ids` stays the same in every language. Safe to call from
    many threads: each call reads through its own cursor of the library's warm connection
    (resources/library_readers.py), which a run's new files replace."""
    if limit < 1 or offset < 0:
        raise SearchError(f"limit must be 1 or more and offset 0 or more (got limit={limit}, offset={offset})")
    code = requested_language(lang)
    wanted = sorted({f.strip() for f in facets if f.strip()})
    warehouse = _searchable(library)
    statuses = list(DEFAULT_STATUSES) + (["review"] if include_review else [])
    params = {"terms": search_terms(text), "statuses": statuses, "facets": wanted, "lang": code}
    hits = _catalog_query(warehouse, library, "search", {**params, "limit": limit, "offset": offset})
    if wanted and hits.height == 0:
        known = set(_catalog_query(warehouse, library, "catalog_display", {"lang": ""})["facet"])
        if unknown := [f for f in wanted if f not in known]:
            raise LibraryError(f"library {library!r} has no facet {', '.join(map(repr, unknown))} "
                               f"(its facets: {', '.join(sorted(known))})")
    columns = ("place", "score", "matched", "kind", "start_s", "end_s", "media_id", "uri", "tag_ids")
    return with_places(hits).select(columns)


def catalog_table(library: str, lang: str | None = None) -> pl.DataFrame:
    """The library's catalog as its last run wrote it, with each tag's `name` in `lang` (else its base language,
    else the catalog's name, kept as `default_name`): sql/catalog_display.sql, the fallback search uses."""
    code = requested_language(lang)
    return _catalog_query(_searchable(library), library, "catalog_display", {"lang": code})


@functools.lru_cache(maxsize=8)
def _serving(home: Path) -> tuple[LibraryStore, Warehouse]:
    """The library store and warehouse of one home, built once per process: the API calls search on every
    request, and building every resource (Dagster validates each one's config) cost ~5 ms a time."""
    res = build_resources({"TAGSMITH_HOME": str(home)})
    return res["libraries"], res["warehouse"]


def _searchable(library: str) -> Warehouse:
    """`require_run`'s checks at the cost of two file checks when they pass (library.yaml is not parsed: search
    reads only tables); when one fails, `require_run` itself, for its one-line message."""
    libraries, warehouse = _serving(tagsmith_home())
    if not (libraries.dir(library) / "library.yaml").is_file() or not warehouse.exists(library, "media"):
        require_run(library)
    return warehouse


def _catalog_query(warehouse: Warehouse, library: str, name: str, params: dict) -> pl.DataFrame:
    """A named query over the catalog table; a table written before its search columns existed (`search_text`,
    `names`) is one line saying that a run rewrites it (the `catalog` asset writes the table on every run of
    tag_library and retrain_heads)."""
    try:
        return warehouse.query(library, name, params)
    except duckdb.BinderException as exc:
        if not any(f'"{column}"' in str(exc) for column in ("search_text", "names")):
            raise
        raise LibraryError(
            f"library {library!r}: its catalog table predates multilingual search text; `tagsmith run {library}` "
            "rewrites it"
        ) from None


def similar(library: str, query: str, limit: int = 10) -> list[dict]:
    """Photos most like `query` (a file path, an s3:// uri, or a media_id already in the library)."""
    require_run(library)
    res = resources()
    config = res["libraries"].config(library)
    warehouse = res["warehouse"]
    backbone = cached_backbone(BackbonePlan(config, res["model_store"], warehouse, library).spec())
    if len(query) == 64 and not Path(query).exists():
        _, vectors = warehouse.read_embeddings(library, backbone.model_id, [query])
        if len(vectors) == 0:
            raise LookupError(f"no embedding for media_id {query} in library {library!r}")
        vector = vectors[0]
    else:
        reader = res["media_store"].reader()
        with reader.open(query) as stream:  # by its bytes, as `media` does
            if sniff(stream.read(HEAD_BYTES)).kind == "video":
                raise ValueError(f"{query} is a video: `similar` takes a photo (use `segments` or `search` for videos)")
        data = reader.read(query)
        vector = backbone.embed([decode_image(data, max_pixels=config.max_pixels)])[0]
    return res["vector_store"].search(library, vector, limit=limit)


_TAGGERS: dict = {}  # {(tagsmith home, library): PhotoTagger}, process-wide: each library's heads load once
_TAGGER_LOCKS: dict = {}  # {same key: the lock its first build holds}
_TAGGERS_LOCK = threading.Lock()  # guards _TAGGER_LOCKS


def tag_photo(library: str, path: str | Path) -> dict:
    """{library, media_id, tags} of the photo file at `path`, tagged now with the library's heads in use: the
    rows a run would write for it (tagsmith/tag_now.py). The library's tagger is built on the first call and kept
    warm (it reloads by itself after a run or a rollback); NotAPhoto (a ValueError) for a file that is no photo."""
    from tagsmith.tag_now import PhotoTagger

    require_run(library)
    key = (str(tagsmith_home()), library)
    with _TAGGERS_LOCK:
        building = _TAGGER_LOCKS.setdefault(key, threading.Lock())
    with building:  # the first call per library builds it; calls beside it wait rather than build it twice
        tagger = _TAGGERS.get(key)
        if tagger is None:
            tagger = _TAGGERS[key] = PhotoTagger(library, resources())
    return {"library": library, **tagger.tagged(path)}


def run_sql(
    library: str, statement: str, max_rows: int = DEFAULT_MAX_ROWS, timeout_s: float = DEFAULT_TIMEOUT_S
) -> SqlResult:
    """Someone's own SQL: one SELECT over the library's views only, in the sandbox (resources/sql_sandbox.py):
    read-only, no file or network access, no other library, at most `max_rows` rows and `timeout_s` seconds.
    Raises SandboxError (one line) for whatever it refuses; the CLI and the HTTP API both come through here."""
    require_run(library)
    res = resources()
    return run_sandboxed(res["warehouse"], library, statement, max_rows=max_rows, timeout_s=timeout_s)


def named_query(library: str, name: str, params: dict | None = None) -> pl.DataFrame:
    return resources()["warehouse"].query(library, name, params)


def head_versions(library: str, facet: str = "") -> pl.DataFrame:
    """Every head version of the library (sql/head_versions.sql), newest first per facet, the one in use and the
    pinned one (resources/pins.py) marked."""
    from resources.pins import read_pins

    require_run(library)
    pinned = sorted(read_pins(resources()["libraries"].dir(library)).values())
    table = named_query(library, "head_versions", {"facet": facet, "pinned": pinned})
    if facet and table.height == 0:
        raise LibraryError(f"library {library!r} has no head of facet {facet!r}")
    return table


def segments(library: str, video: str = "", include_review: bool = False) -> pl.DataFrame:
    """Video segments, each with its `place` (file 00:38:12–00:38:19), in file and time order."""
    require_run(library)
    statuses = list(DEFAULT_STATUSES) + (["review"] if include_review else [])
    table = named_query(library, "video_segments", {"statuses": statuses, "video": video})
    return with_places(table).select("place", "facet", "name", "seconds", "peak_score", "status", "tag_id", "uri")


def tag_table(library: str, include_review: bool = False) -> pl.DataFrame:
    """The tags people export (sql/export_tags.sql): applied and manual, and those in review when asked."""
    require_run(library)
    statuses = list(DEFAULT_STATUSES) + (["review"] if include_review else [])
    return named_query(library, "export_tags", {"statuses": statuses})


def media_tags(library: str, media_id: str) -> tuple[list[str], pl.DataFrame, pl.DataFrame] | None:
    """One media's names in the library, its tags (every status, with the tag's name) and video segments; None
    when the library holds no such media."""
    require_run(library)
    warehouse = resources()["warehouse"]
    media = warehouse.read(library, "media").filter(pl.col("media_id") == media_id)
    if media.height == 0:
        return None
    names = warehouse.read(library, "catalog").select("facet", "tag_id", "name")
    tags = warehouse.read(library, "tags").filter(pl.col("media_id") == media_id)
    tags = tags.join(names, on=["facet", "tag_id"], how="left")
    segments = warehouse.read(library, "video_segments").filter(pl.col("media_id") == media_id)
    return sorted(media["uri"].unique().to_list()), tags, segments


def export_tags(library: str, out: Path, include_review: bool = False) -> int:
    table = tag_table(library, include_review)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        table.write_parquet(out)
    elif out.suffix.lower() == ".csv":
        table.write_csv(out)
    else:
        raise ValueError("export to a .csv or .parquet file")
    return table.height


def quarantine_summary(library: str, since: str | None = None, first: int = 3) -> list[str]:
    """One line per kind of reason in the library's quarantine (every stage): how many files, how many were
    first seen at or after `since` (ISO time: the run's start), and the first file names. [] when empty."""
    from ml.media import count_reasons

    table = resources()["warehouse"].read(library, "quarantine")
    if table.height == 0:
        return []
    rows = table.to_dicts()
    new = count_reasons([r for r in rows if since and r["seen_at"] >= since], first)
    lines = []
    for kind, entry in count_reasons(rows, first).items():
        more = ", ..." if entry["files"] > len(entry["first"]) else ""
        fresh = f", {new[kind]['files']} new" if kind in new else ""
        lines.append(f"quarantined, {kind}: {entry['files']} file(s){fresh}: {', '.join(entry['first'])}{more}")
    return lines
