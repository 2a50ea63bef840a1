"""What the CLI (and later the HTTP API) does, as plain functions over the same resources as the pipeline."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from ml.backbones import cached_backbone
from ml.catalog_names import requested_language
from ml.media import decode_image
from ml.search_text import search_terms
from ml.sniff import HEAD_BYTES, sniff
from resources import PROJECT_ROOT, build_resources, tagsmith_home
from resources.backbone_plan import BackbonePlan
from resources.libraries import LibraryError, LibraryStore
from resources.sql_sandbox import DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT_S, SqlResult, run_sandboxed
from resources.warehouse import Warehouse

log = logging.getLogger(__name__)
DEFAULT_STATUSES = ("applied", "manual")


class SearchError(ValueError):
    """A search asked for something that cannot be (a negative offset): one line for the CLI and the API."""


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME inside the project's home unless set; the project's dagster.yaml goes there."""
    home = Path(os.environ.get("DAGSTER_HOME") or tagsmith_home() / "dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def register_partition(name: str, kind: str = "library") -> None:
    """Add `name` to the dynamic partitions `kind` (library, or event) unless it is there."""
    from dagster import DagsterInstance

    ensure_dagster_home()
    with DagsterInstance.get() as instance:
        if not instance.has_dynamic_partition(kind, name):
            instance.add_dynamic_partitions(kind, [name])


def check_library(name: str) -> None:
    """What a run needs, checked before any step: the library, a valid library.yaml and catalog, its media
    location. Raises LibraryError / ConfigError / ValidationError with one line per problem."""

    res = resources()
    config = res["libraries"].config(name)
    res["libraries"].catalog(name)
    if not config.media.startswith("s3://") and not Path(config.media).is_dir():
        raise LibraryError(f"library {name!r}: media folder not found: {config.media} (library.yaml: media)")


def has_run(name: str, table: str = "media") -> bool:
    """Whether a run has written the library's `table` (`media`: the first thing a run writes)."""
    return resources()["warehouse"].exists(name, table)


def require_run(name: str) -> None:
    """Verbs that read a library's tables say so in one line when it never ran."""

    resources()["libraries"].config(name)
    if not has_run(name):
        raise LibraryError(f"library {name!r} has not run yet: `tagsmith run {name}` first")


def _innermost(error) -> str:
    """The user's exception of a Dagster step failure, one line: "ValueError: ..."."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    lines = [line for line in error.message.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else error.cls_name or "unknown error"


@dataclass
class RunOutcome:
    """What `run_library` tells a person: each failed step or refusal and each failed check in one sentence,
    and what was found and fixed before the run (a dead run marked failed)."""

    success: bool
    failures: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    info: list[str] = field(default_factory=list)
    run_id: str = ""

    @property
    def ok(self) -> bool:
        return self.success and not self.failures and not self.checks


def run_library(
    name: str, job: str = "tag_library", env=None, log_level: str | None = None, run_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> RunOutcome:
    """Materialise the library's partition through Dagster (runs show in the UI), after checking what it needs
    and that no other run holds the library. `run_id` and `tags`: the Dagster run's (the HTTP API's jobs)."""
    from dagster import DagsterInstance

    check_library(name)
    ensure_dagster_home()
    register_partition(name)
    lock = resources()["warehouse"].run_lock(name)
    with DagsterInstance.get() as instance:
        dead = fail_dead_runs(instance, name, lock)
    lock.acquire("starting")  # LibraryBusy (one line) when another run holds it; the run's warehouse nests
    try:
        outcome = _execute(job, name, env, log_level, run_id, tags)
    finally:
        lock.release()
    outcome.info = [f"run {d[:8]} had died without finishing (its process is gone): marked failed" for d in dead]
    return outcome


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


def _execute(
    job: str, partition_key, env=None, log_level: str | None = None, run_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> RunOutcome:
    """Run `job` for one partition in this process, on the instance of DAGSTER_HOME; each failed step, refused
    run and failed check as one sentence."""
    from dagster import DagsterEventType, DagsterInstance

    from pipelines.definitions import build_definitions

    defs = build_definitions(env)
    if log_level is None:  # with progress bars on a terminal, Dagster's console shows warnings only
        log_level = "WARNING" if os.environ.get("TAGSMITH_PROGRESS") == "1" else "INFO"
    job_def = defs.resolve_job_def(job)
    # the job's own config for the partition (`retag`'s), which Dagster drops when a run_config is given
    loggers = {"console": {"config": {"log_level": log_level}}}
    run_config = {**job_def.get_run_config_for_partition_key(partition_key), "loggers": loggers}
    with DagsterInstance.get() as instance:
        result = job_def.execute_in_process(
            partition_key=partition_key, instance=instance, raise_on_error=False, run_config=run_config,
            run_id=run_id, tags=tags,
        )
    outcome = RunOutcome(success=result.success, run_id=result.run_id)
    for event in result.all_events:
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            data = event.event_specific_data
            if not data.passed:
                outcome.checks.append(f"check {data.check_name} failed: {data.description}")
        elif event.event_type == DagsterEventType.STEP_FAILURE:
            outcome.failures.append(f"step {event.step_key} failed: {_innermost(event.event_specific_data.error)}")
        elif event.event_type == DagsterEventType.RESOURCE_INIT_FAILURE and event.event_specific_data.error:
            outcome.failures.append(f"run refused: {_innermost(event.event_specific_data.error)}")
    if not result.success and not outcome.failures:
        outcome.failures.append(f"run {result.run_id[:8]} failed (see `make ui`, Runs)")
    return outcome


def fail_dead_runs(instance, library: str, lock, grace_s: float = 60.0) -> list[str]:
    """Runs of `library` still marked STARTED while no process holds the library's run lock died hard
    (SIGKILL, a lost machine): mark them failed, so none stays STARTED for good. The run the lock file names
    took the lock, so it is dead at any age; another STARTED run younger than `grace_s` may not have reached
    the lock yet and is left alone. Returns the run ids marked."""
    import time

    from dagster import DagsterRunStatus, RunsFilter

    if lock.is_held():
        return []
    last_holder = lock.holder().get("run_id")
    records = instance.get_run_records(
        RunsFilter(statuses=[DagsterRunStatus.STARTED], tags={"dagster/partition": library})
    )
    dead = [
        r
        for r in records
        if r.dagster_run.run_id == last_holder or r.start_time is None or time.time() - r.start_time > grace_s
    ]
    for record in dead:
        instance.report_run_failed(record.dagster_run, message="the run's process died (the library's lock is free)")
    return [r.dagster_run.run_id for r in dead]


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
