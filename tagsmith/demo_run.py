"""`tagsmith demo`: generate the demo library, run the pipeline through Dagster, show what it found."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import polars as pl
import typer

from ml.segments import evaluate_segments
from resources import tagsmith_home
from resources.libraries import FinetuneSettings, LibraryConfig
from tagsmith import service
from tagsmith.demo import generate_demo_library
from tagsmith.demo_event_run import run_event_demo

log = logging.getLogger(__name__)
LIBRARY = "demo"
SECOND_SHOOT = 2  # photos per product of the second shoot (uploads/SHOOT2_*.jpg)


def uploads_accuracy(truth_path: Path, uploads_dir: Path) -> pl.DataFrame:
    """Tags on the new uploads against their known truth, per facet (measured, not assumed)."""
    truth = pl.read_csv(truth_path).with_columns(
        uri=pl.col("path").map_elements(lambda p: str((uploads_dir / p).resolve()), return_dtype=pl.String)
    )
    tags = service.run_sql(LIBRARY, "SELECT uri, facet, tag_id AS predicted, status FROM tag_details").table
    joined = truth.join(tags, on=["uri", "facet"], how="left")
    return (
        joined.group_by("facet")
        .agg(
            photos=pl.len(),
            top1_accuracy=(pl.col("predicted") == pl.col("tag_id")).mean().round(4),
            applied=(pl.col("status") == "applied").sum(),
            applied_precision=((pl.col("predicted") == pl.col("tag_id")) & (pl.col("status") == "applied")).sum()
            / (pl.col("status") == "applied").sum().clip(lower_bound=1),
        )
        .with_columns(pl.col("applied_precision").round(4))
        .sort("facet")
    )


def truth_table(root: Path) -> pl.DataFrame:
    """Per facet: the promise for a new shoot (group-aware holdout, its interval), the same-shoot figure (a
    random split, optimistic), and what the uploads of the same shoot and of a second shoot measure."""
    heads = service.named_query(LIBRARY, "head_metrics")
    measured = {
        shoot: uploads_accuracy(root / truth, root / "uploads")
        for shoot, truth in (("uploads", "truth.csv"), ("shoot2", "truth_shoot2.csv"))
    }
    rows = []
    for head in heads.iter_rows(named=True):
        facet = head["facet"]
        row = {
            "facet": facet,
            "backbone": head["backbone"],
            "strategy": head["strategy"],
            "promised_top1": head["new_shoot_top1"],
            "interval": head["new_shoot_top1_interval"],
            "holdout_top1": head["holdout_accuracy"],
            "visual_same_shoot_top1": head["same_shoot_top1"],
            "promised_applied_prec": head["new_shoot_applied_precision"],
            "promised_applied": head["new_shoot_share_applied"],
        }
        for shoot, table in measured.items():
            got = table.filter(pl.col("facet") == facet)
            row[f"{shoot}_top1"] = got["top1_accuracy"][0] if got.height else None
            row[f"{shoot}_applied_prec"] = got["applied_precision"][0] if got.height else None
            row[f"{shoot}_applied"] = round(got["applied"][0] / got["photos"][0], 4) if got.height else None
        rows.append(row)
    return pl.DataFrame(rows)


def video_accuracy(truth_path: Path) -> pl.DataFrame:
    """Segments against the videos' known truth, per facet: precision/recall of applied segments (temporal
    IoU >= 0.5), recall when review segments count too, and boundary error in seconds."""
    truth = pl.read_csv(truth_path).rename({"path": "media"})
    found = service.run_sql(
        LIBRARY,
        "SELECT m.uri, s.facet, s.tag_id, s.start_s, s.end_s, s.status "
        "FROM video_segments s JOIN media m USING (media_id)",
    ).table.with_columns(media=pl.col("uri").map_elements(lambda u: Path(u).name, return_dtype=pl.String))
    rows = []
    for facet in sorted(truth["facet"].unique()):
        true = truth.filter(pl.col("facet") == facet).to_dicts()
        mine = found.filter(pl.col("facet") == facet)
        applied = evaluate_segments(mine.filter(pl.col("status") == "applied").to_dicts(), true)
        any_status = evaluate_segments(mine.to_dicts(), true)
        rows.append(
            {
                "facet": facet,
                "true_segments": applied["true_segments"],
                "applied": applied["predicted"],
                "precision": applied["precision"],
                "recall": applied["recall"],
                "recall_with_review": any_status["recall"],
                "boundary_err_median_s": applied["boundary_error_median_s"],
                "boundary_err_p90_s": applied["boundary_error_p90_s"],
            }
        )
    return pl.DataFrame(rows)


def run_demo(root: Path | None = None, seed: int = 0) -> None:
    root = Path(root or tagsmith_home() / "demo").resolve()
    started = time.perf_counter()
    if not all((root / f).exists() for f in ("catalog.yaml", "video_truth.csv", "truth_shoot2.csv")):
        typer.echo(f"generating the demo library in {root} ...")
        summary = generate_demo_library(root, seed=seed, second_shoot_per_product=SECOND_SHOOT)
        typer.echo(
            f"  {summary.n_products} products, {summary.n_examples} example photos, "
            f"{summary.n_uploads} new uploads ({summary.n_corrupt} of them corrupt on purpose), "
            f"{summary.n_videos} videos and a phone video (3 broken video files)"
        )
    res = service.resources()
    # a shorter fine-tuning budget than a library's default 10 min (it finishes its 10 epochs in ~40 s anyway)
    config = LibraryConfig(
        name=LIBRARY,
        media=str(root / "uploads"),
        min_holdout_accuracy=0.5,
        finetune=FinetuneSettings(budget_min=3.0, epochs=10, train_blocks=3),
    )
    res["libraries"].create(config, exist_ok=True)
    res["libraries"].set_catalog(LIBRARY, root / "catalog.yaml")
    res["libraries"].add_examples(LIBRARY, root / "examples.csv")
    typer.echo(
        "running the pipeline through Dagster (catalog, media, examples, fine-tuned backbone, embeddings on Ray, "
        "OCR, keypoints, heads, evaluation, tags, video, vector index, views) ..."
    )
    outcome = service.run_library(LIBRARY)
    for note in outcome.info + outcome.checks + outcome.failures:
        typer.secho(note, fg=typer.colors.RED if note in outcome.failures else typer.colors.YELLOW, err=True)
    if outcome.failures and not service.has_run(LIBRARY, "head_versions"):
        raise typer.Exit(1)

    typer.secho("\n(a) what the promoted heads promise for a new shoot, and what the uploads measure", bold=True)
    table = truth_table(root)
    _show(table.select("facet", "backbone", "strategy", "promised_top1", "interval", "holdout_top1",
                       "visual_same_shoot_top1", "uploads_top1", "shoot2_top1"))
    typer.secho("    precision of applied tags and the share applied: promised, then measured", bold=True)
    _show(table.select("facet", "promised_applied_prec", "promised_applied", "uploads_applied_prec",
                       "uploads_applied", "shoot2_applied_prec", "shoot2_applied"))
    typer.secho("    video segments against the videos' known truth (IoU >= 0.5; boundary error in seconds)", bold=True)
    _show(video_accuracy(root / "video_truth.csv"))
    typer.secho("    quarantined input", bold=True)
    _show(service.named_query(LIBRARY, "quarantine").select("uri", "reason", "stage"))

    catalog = service.run_sql(LIBRARY, "SELECT name, facet FROM catalog ORDER BY tag_id").table
    product = catalog.filter(pl.col("facet") == "product")["name"][0]
    query = f"{product} packshot"
    typer.secho(f'\n(b) tagsmith search {LIBRARY} "{query}"', bold=True)
    _show(service.search(LIBRARY, query, limit=5).select("place", "score", "matched", "uri"))
    first = service.run_sql(
        LIBRARY,
        "SELECT uri FROM media WHERE status = 'ok' AND kind = 'image' AND uri LIKE '%/IMG_%' ORDER BY uri LIMIT 1",
    ).table["uri"][0]
    typer.secho(f"    tagsmith similar {LIBRARY} {first}", bold=True)
    _show(pl.DataFrame(service.similar(LIBRARY, first, limit=3)).select("score", "uri"))
    clip = service.segments(LIBRARY, "CLIP_0001")
    typer.secho(f"    tagsmith segments {LIBRARY} CLIP_0001  ({clip.height} segments, first 8)", bold=True)
    _show(clip.select("place", "facet", "name", "seconds", "peak_score", "status").head(8))

    home = tagsmith_home()
    typer.secho("\n(c) where things are", bold=True)
    typer.echo(f'  DuckDB file : {home / "tagsmith.duckdb"}  (schema "{LIBRARY}": tags, tag_details, media, ...)')
    typer.echo(f'  SQL         : tagsmith sql {LIBRARY} "SELECT * FROM coverage"')
    sheets = service.resources()["warehouse"].reports_dir(LIBRARY) / "videos" / "index.html"
    typer.echo(f"  videos      : {sheets}  (a contact sheet per video)")
    evaluation = service.resources()["warehouse"].reports_dir(LIBRARY) / "evaluation.html"
    typer.echo(f"  evaluation  : {evaluation}  (strategy per facet and why, per-tag precision/recall, confusions)")
    typer.echo(f"  segments    : tagsmith segments {LIBRARY}")
    typer.echo(f"  Dagster UI  : DAGSTER_HOME={home / 'dagster_home'} .venv/bin/dagster dev -w workspace.yaml")
    event_ok = run_event_demo(root.parent / "demo-event", seed=seed)
    ok = outcome.ok and event_ok
    typer.echo(f"done in {time.perf_counter() - started:.0f} s" + ("" if ok else " (with problems above)"))
    if not ok:
        raise typer.Exit(1)


def _show(df: pl.DataFrame) -> None:
    with pl.Config(tbl_rows=40, fmt_str_lengths=70, tbl_width_chars=180, tbl_hide_dataframe_shape=True):
        typer.echo(df)
