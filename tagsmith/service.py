"""What the CLI (and later the HTTP API) does, as plain functions over the same resources as the pipeline."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import polars as pl

from ml.backbones import BackboneSpec, cached_backbone
from ml.media import decode_image, media_kind, read_uri
from resources import PROJECT_ROOT, build_resources, tagsmith_home

log = logging.getLogger(__name__)
DEFAULT_STATUSES = ("applied", "manual")


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME inside the project's home unless set; the project's dagster.yaml goes there."""
    home = Path(os.environ.get("DAGSTER_HOME") or tagsmith_home() / "dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def register_partition(name: str) -> None:
    from dagster import DagsterInstance

    from assets_defs.partitions import library_partitions

    ensure_dagster_home()
    with DagsterInstance.get() as instance:
        if not instance.has_dynamic_partition(library_partitions.name, name):
            instance.add_dynamic_partitions(library_partitions.name, [name])


def run_library(name: str, job: str = "tag_library", env=None, log_level: str | None = None) -> tuple[bool, list[str]]:
    """Materialise the library's partition through Dagster (runs show in the UI). Returns (success, notes)."""
    from dagster import DagsterEventType, DagsterInstance

    from pipelines.definitions import build_definitions

    ensure_dagster_home()
    register_partition(name)
    defs = build_definitions(env)
    if log_level is None:  # with progress bars on a terminal, Dagster's console shows warnings only
        log_level = "WARNING" if os.environ.get("TAGSMITH_PROGRESS") == "1" else "INFO"
    with DagsterInstance.get() as instance:
        result = defs.resolve_job_def(job).execute_in_process(
            partition_key=name,
            instance=instance,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        )
    notes = []
    for event in result.all_events:
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            data = event.event_specific_data
            if not data.passed:
                notes.append(f"check {data.check_name} failed: {data.description}")
        elif event.event_type == DagsterEventType.STEP_FAILURE:
            notes.append(f"step {event.step_key} failed: {event.event_specific_data.error.message.strip()}")
    return result.success and not notes, notes


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


def search(library: str, text: str, limit: int = 20, include_review: bool = False) -> pl.DataFrame:
    terms = [t for t in text.replace(",", " ").split() if t]
    statuses = list(DEFAULT_STATUSES) + (["review"] if include_review else [])
    params = {"terms": terms, "statuses": statuses, "limit": limit}
    hits = resources()["warehouse"].query(library, "search", params)
    return with_places(hits).select("place", "score", "matched", "kind", "start_s", "end_s", "media_id", "uri")


def similar(library: str, query: str, limit: int = 10) -> list[dict]:
    """Photos most like `query` (a file path, an s3:// uri, or a media_id already in the library)."""
    res = resources()
    config = res["libraries"].config(library)
    warehouse = res["warehouse"]
    spec = BackboneSpec(name=config.backbone, cache_dir=res["model_store"].backbone_cache_dir())
    backbone = cached_backbone(spec)
    if len(query) == 64 and not Path(query).exists():
        _, vectors = warehouse.read_embeddings(library, backbone.model_id, [query])
        if len(vectors) == 0:
            raise LookupError(f"no embedding for media_id {query} in library {library!r}")
        vector = vectors[0]
    elif media_kind(query) == "video":
        raise ValueError(f"{query} is a video: `similar` takes a photo (use `segments` or `search` for videos)")
    else:
        data = read_uri(query, res["media_store"].s3_endpoint_url())
        vector = backbone.embed([decode_image(data, max_pixels=config.max_pixels)])[0]
    return res["vector_store"].search(library, vector, limit=limit)


def run_sql(library: str, statement: str) -> pl.DataFrame:
    """An analyst's own read-only SQL, with the library's schema as the current schema."""
    warehouse = resources()["warehouse"]
    warehouse.library_dir(library)
    with warehouse.connect(read_only=True) as con:
        con.execute(f'SET schema = "{library}"')
        return pl.from_arrow(con.sql(statement).to_arrow_table())


def named_query(library: str, name: str, params: dict | None = None) -> pl.DataFrame:
    return resources()["warehouse"].query(library, name, params)


def segments(library: str, video: str = "", include_review: bool = False) -> pl.DataFrame:
    """Video segments, each with its `place` (file 00:38:12–00:38:19), in file and time order."""
    statuses = list(DEFAULT_STATUSES) + (["review"] if include_review else [])
    table = named_query(library, "video_segments", {"statuses": statuses, "video": video})
    return with_places(table).select("place", "facet", "name", "seconds", "peak_score", "status", "tag_id", "uri")


def export_tags(library: str, out: Path, include_review: bool = False) -> int:
    statuses = list(DEFAULT_STATUSES) + (["review"] if include_review else [])
    table = named_query(library, "export_tags", {"statuses": statuses})
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
    if table is None or table.height == 0:
        return []
    rows = table.to_dicts()
    new = count_reasons([r for r in rows if since and r["seen_at"] >= since], first)
    lines = []
    for kind, entry in count_reasons(rows, first).items():
        more = ", ..." if entry["files"] > len(entry["first"]) else ""
        fresh = f", {new[kind]['files']} new" if kind in new else ""
        lines.append(f"quarantined, {kind}: {entry['files']} file(s){fresh}: {', '.join(entry['first'])}{more}")
    return lines
