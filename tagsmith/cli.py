"""The `tagsmith` command: thin over tagsmith.service and the Dagster definitions."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import polars as pl
import typer
from typer.core import TyperGroup

from ml.catalog import ValidationError
from tagsmith.api_cli import serve, token_app
from tagsmith.review_cli import review


class _OneLineErrors(TyperGroup):
    """A user's mistake (no such library, an invalid library.yaml or catalog, a library that never ran) ends the
    command with the error's own lines and exit code 1, never a traceback; anything else is a bug and raises."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Exception as exc:
            from resources.libraries import ConfigError, LibraryError
            from resources.run_lock import LibraryBusy
            from resources.tokens import TokenError
            from resources.vector_store import VectorStoreBusy

            mistakes = (ConfigError, LibraryError, LibraryBusy, TokenError, ValidationError, VectorStoreBusy)
            if not isinstance(exc, mistakes):
                raise
            _fail(str(exc))


JOBS = ("tag_library", "retrain_heads", "retag")
app = typer.Typer(help="Custom AI tagging for product photo libraries.", no_args_is_help=True,
                  pretty_exceptions_enable=False, cls=_OneLineErrors)


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
def ingest(
    library: str,
    paths: list[Path],
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be copied, renamed or skipped."),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace a file (or S3 key) of the same name holding other bytes; by default both are kept, the new "
        "one under a distinct name.",
    ),
) -> None:
    """Copy photos and videos (files, or folders with their sub-folders) into the library's media; never
    replaces a file, never copies bytes the library already holds."""
    from tqdm import tqdm

    from resources.ingest import apply_ingest, destination_for, gather_sources, plan_ingest, report_lines
    from tagsmith import service

    res = service.resources()
    quiet = os.environ.get("TAGSMITH_PROGRESS") != "1"
    try:
        config = res["libraries"].config(library)
        sources, skipped = gather_sources(paths)
        destination = destination_for(config.media, res["media_store"])
        with tqdm(total=len(sources), desc="reading", unit="file", disable=quiet) as bar:
            steps = plan_ingest(sources, destination, overwrite, on_file=lambda _: bar.update())
        if not dry_run:
            with tqdm(total=len(steps), desc="copying", unit="file", disable=quiet) as bar:
                steps = apply_ingest(steps, destination, on_file=lambda _: bar.update())
    except (LookupError, OSError, ValueError) as exc:
        _fail(str(exc))
    lines, summary = report_lines(skipped + steps, destination, dry_run)
    for line in lines:  # on a dry run the list is the answer; otherwise notes beside the summary
        typer.echo(line, err=not dry_run)
    typer.echo(summary)
    if any(step.action == "failed" for step in steps):
        raise typer.Exit(1)


@app.command()
def run(
    library: str,
    job: str = typer.Option("tag_library", help="tag_library (everything), retrain_heads (everything but new "
                            "media: after catalog or example edits), or retag (the heads in use and pins, from cache)"),
) -> None:
    """Materialise the library through Dagster: only new media and changed training sets cost work."""
    from datetime import UTC, datetime

    from tagsmith import service

    if job not in JOBS:
        _fail(f"--job {job!r} is not a job: one of {', '.join(JOBS)}")
    started = datetime.now(UTC).isoformat(timespec="seconds")
    outcome = service.run_library(library, job)
    for note in outcome.info:
        typer.secho(note, fg=typer.colors.YELLOW, err=True)
    for line in service.quarantine_summary(library, since=started):  # one line per reason, first file names
        typer.secho(line, fg=typer.colors.YELLOW, err=True)
    if outcome.failures and not service.has_run(library, "head_versions"):
        for note in outcome.failures:  # nothing to show: the failure is the last thing said
            typer.secho(note, fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    metrics = service.named_query(library, "head_metrics")
    # what each head promises for a new shoot (group-aware holdout, 95 % interval), then the optimistic figure
    _show(metrics.select("facet", "backbone", "strategy", "new_shoot_top1", "new_shoot_top1_interval",
                         "holdout_accuracy", "new_shoot_applied_precision", "new_shoot_share_applied",
                         "same_shoot_top1", "n_train", "n_holdout", "bar", "version"))
    for note in outcome.checks:
        typer.secho(note, fg=typer.colors.YELLOW, err=True)
    if outcome.failures:  # a failed step changes no head: the table shows the heads still in use; failure last
        typer.secho("this run failed: the heads above are the ones from earlier runs, still in use",
                    fg=typer.colors.RED, err=True)
        for note in outcome.failures:
            typer.secho(note, fg=typer.colors.RED, err=True)
    if not outcome.ok:
        raise typer.Exit(1)


@app.command()
def report(library: str, event: str) -> None:
    """Materialise an event's sponsor report (library.yaml `events:`) and print its index.html: per sponsor its
    photos, screen time and share of voice, photo-set zips beside it."""
    from tagsmith import service

    outcome, index = service.sponsor_report(library, event)
    if not outcome.ok:
        for note in outcome.failures + outcome.checks:
            typer.secho(note, fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    typer.echo(str(index))


@app.command()
def search(
    library: str,
    text: str,
    limit: int = typer.Option(20, min=1),
    offset: int = typer.Option(0, min=0, help="Skip this many hits: --offset 20 with --limit 20 is page 2."),
    facet: list[str] = typer.Option([], "--facet", help="Match only tags of this facet (repeat for several)."),
    lang: str = typer.Option("", help="Show matched tags by their names in this language (fr, de, ja, pt-br)."),
    include_review: bool = typer.Option(False, help="Also match predictions waiting for review."),
) -> None:
    """Photos whose tags match every word (names, aliases, identifiers; any facet, any language)."""
    from tagsmith import service

    try:
        hits = service.search(library, text, limit=limit, offset=offset, facets=facet, lang=lang or None,
                              include_review=include_review)
    except ValueError as exc:  # a language code that is not one
        _fail(str(exc))
    _show(hits.select("place", "score", "matched", "uri"), rows=limit)


@app.command()
def heads(library: str, facet: str = typer.Argument("", help="One facet; every facet when left out.")) -> None:
    """Every head version trained (newest first per facet): holdout and new-shoot figures, the one in use, the
    pinned one."""
    _show(_versions_table(library, facet), rows=200)


@app.command()
def rollback(
    library: str,
    facet: str,
    version: str = typer.Argument("", help="A version `tagsmith heads` lists, or `previous`."),
    release: bool = typer.Option(False, "--release", help="Remove the facet's pin: the next run promotes the "
                                 "newest candidate that passes the check again."),
) -> None:
    """Restore a head version that passed the blocking check before, pinned so later runs keep it, and re-tag the
    library from cache (one Dagster run, job `retag`)."""
    from tagsmith import versions

    if release:
        pinned = versions.release(library, facet)
        typer.echo(f"{facet}: pin on {pinned} released; it stays in use until the next `tagsmith run {library}`")
        return
    done = versions.rollback(library, facet, version)
    for note in done.outcome.failures + done.outcome.checks:
        typer.secho(note, fg=typer.colors.RED, err=True)
    if not done.outcome.ok:
        _fail(f"{facet}: pinned to {done.version}, but the re-tag failed; the next run applies the pin")
    typer.echo(f"{facet}: {done.version} restored and pinned (was {done.replaced}); re-tagged from cache in run "
               f"{done.outcome.run_id[:8]} (Dagster UI, job retag)")
    _show(_versions_table(library, facet), rows=200)


def _versions_table(library: str, facet: str = "") -> pl.DataFrame:
    from tagsmith import service

    return service.head_versions(library, facet).drop("model")


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
def sql(
    library: str,
    statement: str,
    limit: int = typer.Option(200, help="Rows shown at most (the query stops there)."),
    timeout: float = typer.Option(30.0, help="Seconds before the query is stopped."),
) -> None:
    """Run one read-only SELECT over the library's views, e.g. "SELECT * FROM coverage" (sandboxed: this
    library's tables only, no files, no network)."""
    from tagsmith import service

    try:
        result = service.run_sql(library, statement, max_rows=limit, timeout_s=timeout)
    except ValueError as exc:  # refused by the sandbox, an SQL error, a bad library name
        _fail(str(exc))
    _show(result.table, rows=limit)
    if result.truncated:
        typer.secho(f"(first {limit} rows; --limit to see more)", fg=typer.colors.YELLOW, err=True)


@app.command()
def export(library: str, out: Path, include_review: bool = False) -> None:
    """Export tags to a .csv or .parquet file."""
    from tagsmith import service

    if out.suffix.lower() not in (".csv", ".parquet"):
        _fail(f"export to a .csv or .parquet file, not {out.name!r}")
    n = service.export_tags(library, out, include_review=include_review)
    typer.echo(f"{n} tag rows written to {out}")


app.command()(review)
app.command()(serve)
app.add_typer(token_app, name="token")


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
