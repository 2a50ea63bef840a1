"""The `tagsmith` command: thin over tagsmith.service and the Dagster definitions."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

import polars as pl
import typer

from ml.catalog import ValidationError

app = typer.Typer(help="Custom AI tagging for product photo libraries.", no_args_is_help=True,
                  pretty_exceptions_enable=False)


def _fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _show(df: pl.DataFrame, rows: int = 50) -> None:
    with pl.Config(tbl_rows=rows, fmt_str_lengths=80, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
        typer.echo(df)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v")) -> None:
    os.environ.setdefault("TAGSMITH_PROGRESS", "1" if sys.stderr.isatty() else "0")
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(message)s")


@app.command()
def init(
    library: str,
    media: str = typer.Option(..., help="Folder (or s3://bucket/prefix) holding the media to tag."),
    backbone: str = typer.Option("efficientnet-lite0", help="Backbone name (see README, Models)."),
    min_accuracy: float = typer.Option(0.6, help="Holdout accuracy a head needs to be promoted."),
) -> None:
    """Create a library (a tenant: its own catalog, examples, heads, tables and vectors)."""
    from resources.libraries import LibraryConfig
    from tagsmith import service

    if not media.startswith("s3://"):
        media = str(Path(media).resolve())
    config = LibraryConfig(name=library, media=media, backbone=backbone, min_holdout_accuracy=min_accuracy)
    path = service.resources()["libraries"].create(config, exist_ok=True)
    service.register_partition(library)
    typer.echo(f"library {library} at {path} (media: {media})")


@app.command()
def catalog(library: str, file: Path) -> None:
    """Set the library's catalog (YAML or CSV); refused with every problem listed by line."""
    from tagsmith import service

    try:
        parsed = service.resources()["libraries"].set_catalog(library, file)
    except ValidationError as exc:
        _fail(str(exc))
    typer.echo(f"catalog: {len(parsed.tags)} tags in facets {', '.join(parsed.facets())}")


@app.command()
def examples(library: str, source: Path) -> None:
    """Add labelled examples: a `path,tag_id[,facet]` CSV manifest, or a folder with a sub-folder per tag."""
    from tagsmith import service

    try:
        added = service.resources()["libraries"].add_examples(library, source)
    except ValidationError as exc:
        _fail(str(exc))
    typer.echo(f"{len(added)} example labels added from {source}")


@app.command()
def ingest(library: str, paths: list[Path]) -> None:
    """Copy photos (files or folders) into the library's media folder."""
    from ml.media import media_kind
    from tagsmith import service

    config = service.resources()["libraries"].config(library)
    if config.media.startswith("s3://"):
        _fail("this library's media is in S3: upload there (aws s3 cp / sync); `tagsmith run` picks it up")
    target = Path(config.media)
    target.mkdir(parents=True, exist_ok=True)
    copied = 0
    for path in paths:
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        for file in files:
            if media_kind(file.name) is None:
                typer.echo(f"skipped {file}: not a photo or video extension", err=True)
                continue
            shutil.copy2(file, target / file.name)
            copied += 1
    typer.echo(f"{copied} files copied into {target}")


@app.command()
def run(library: str, job: str = typer.Option("tag_library", help="tag_library or retrain_heads")) -> None:
    """Materialise the library through Dagster: only new media and changed training sets cost work."""
    from datetime import UTC, datetime

    from tagsmith import service

    started = datetime.now(UTC).isoformat(timespec="seconds")
    ok, notes = service.run_library(library, job)
    for note in notes:
        typer.secho(note, fg=typer.colors.YELLOW, err=True)
    for line in service.quarantine_summary(library, since=started):  # one line per reason, first file names
        typer.secho(line, fg=typer.colors.YELLOW, err=True)
    metrics = service.named_query(library, "head_metrics")
    # what each head promises for a new shoot (group-aware holdout, 95 % interval), then the optimistic figure
    _show(metrics.select("facet", "backbone", "strategy", "new_shoot_top1", "new_shoot_top1_interval",
                         "holdout_accuracy", "new_shoot_applied_precision", "new_shoot_share_applied",
                         "same_shoot_top1", "n_train", "n_holdout", "bar", "version"))
    if not ok:
        raise typer.Exit(1)


@app.command()
def search(
    library: str,
    text: str,
    limit: int = 20,
    include_review: bool = typer.Option(False, help="Also match predictions waiting for review."),
) -> None:
    """Photos whose tags match every word (names, aliases, identifiers; any facet, any language)."""
    from tagsmith import service

    hits = service.search(library, text, limit=limit, include_review=include_review)
    _show(hits.select("place", "score", "matched", "uri"), rows=limit)


@app.command()
def segments(
    library: str,
    video: str = typer.Argument("", help="Part of a video's file name; every video when left out."),
    include_review: bool = typer.Option(False, help="Also list segments waiting for review."),
    limit: int = 200,
) -> None:
    """Where each tag is on screen in the library's videos, e.g. `event.mp4 00:38:12–00:38:19`."""
    from tagsmith import service

    _show(service.segments(library, video, include_review=include_review).head(limit), rows=limit)


@app.command()
def similar(library: str, query: str, limit: int = 10) -> None:
    """Photos most like an image file (or a media_id of the library)."""
    from tagsmith import service

    try:
        found = service.similar(library, query, limit=limit)
    except (ValueError, LookupError, OSError) as exc:  # a video, an unknown media_id, a file that is not a photo
        _fail(str(exc))
    _show(pl.DataFrame(found), rows=limit)


@app.command()
def sql(library: str, statement: str) -> None:
    """Run read-only SQL with the library's schema current, e.g. "SELECT * FROM coverage"."""
    from tagsmith import service

    _show(service.run_sql(library, statement), rows=200)


@app.command()
def export(library: str, out: Path, include_review: bool = False) -> None:
    """Export tags to a .csv or .parquet file."""
    from tagsmith import service

    n = service.export_tags(library, out, include_review=include_review)
    typer.echo(f"{n} tag rows written to {out}")


@app.command()
def demo(
    root: Path = typer.Option(None, help="Where to generate the demo (default: $TAGSMITH_HOME/demo)."),
    seed: int = 0,
) -> None:
    """Generate the demo library, run the whole pipeline on it, and show what it found."""
    from tagsmith.demo_run import run_demo

    run_demo(root, seed=seed)


if __name__ == "__main__":
    app()
