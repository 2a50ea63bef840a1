"""The demo's event: a generated sponsor event as its own library, its sponsors found on photos and video,
the sponsor report, and what the event's known truth says about them (`tagsmith demo` runs it after the
product library)."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import polars as pl
import typer

from ml.sponsor_eval import evaluate_sponsors
from resources.libraries import LibraryConfig
from tagsmith import service
from tagsmith.demo_event import write_demo_event

LIBRARY = "event"
EVENT = "expo-2026"
EVENT_DIR = f"media/{EVENT}"  # under the demo event's folder; the library's media is its parent


def truth_of(event_dir: Path) -> tuple[dict, list]:
    """The event's truth from its CSVs: {photo: [(tag, box)]} ([] = no logo) and [(tag, start_s, end_s)]."""
    photos: dict[str, list] = {}
    with (event_dir / "truth_photos.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            logos = photos.setdefault(row["file"], [])
            if row["tag_id"]:
                logos.append((row["tag_id"], tuple(float(row[k]) for k in ("x", "y", "w", "h"))))
    with (event_dir / "truth_video.csv").open(encoding="utf-8") as f:
        video = [(r["tag_id"], float(r["start_s"]), float(r["end_s"])) for r in csv.DictReader(f)]
    return photos, video


def run_event_demo(root: Path, seed: int = 0) -> bool:
    """Generate (once) and run the event library, write its sponsor report, print the figures; True when ok."""
    started = time.perf_counter()
    event_dir = root / EVENT_DIR
    if not (event_dir / "truth_video.csv").exists():
        typer.echo(f"generating the demo event in {root} ...")
        truth = write_demo_event(root, seed=seed, photos=40, video_seconds=24.0, event_dir=EVENT_DIR)
        typer.echo(f"  7 sponsors, {truth.n_examples} example photos, {len(truth.photos)} event photos "
                   f"(logos at 1-5 % of the frame), a {truth.video_duration_s:.0f} s video")
    res = service.resources()
    # the sponsor heads read regions (keypoints of the logos), not printed text: OCR would only cost time
    config = LibraryConfig(
        name=LIBRARY, media=str(root / "media"), ocr="off", events={EVENT: {"folder": EVENT, "quiet_minutes": 0}}
    )
    res["libraries"].create(config, exist_ok=True)
    res["libraries"].set_catalog(LIBRARY, root / "sponsors.yaml")
    res["libraries"].add_examples(LIBRARY, root / "examples" / "manifest.csv")
    typer.echo("running the event library (sponsor regions on photos and video frames) and its sponsor report ...")
    outcome = service.run_library(LIBRARY)
    reported, index = service.sponsor_report(LIBRARY, EVENT) if outcome.ok else (outcome, None)
    for note in outcome.info + outcome.checks + outcome.failures + (reported.failures if reported else []):
        typer.secho(note, fg=typer.colors.YELLOW, err=True)
    if not (outcome.ok and reported.ok):
        return False

    wh = res["warehouse"]
    name_of = {m: Path(u).name for m, u in wh.read(LIBRARY, "media").select("media_id", "uri").iter_rows()}
    applied = wh.read(LIBRARY, "tags").filter((pl.col("facet") == "sponsor") & (pl.col("status") == "applied"))
    segments = wh.read(LIBRARY, "video_segments").filter(
        (pl.col("facet") == "sponsor") & (pl.col("status") == "applied")
    )
    sponsors = wh.read(LIBRARY, "catalog").filter(pl.col("facet") == "sponsor")["tag_id"].sort().to_list()
    photos, video = truth_of(event_dir)
    figures = evaluate_sponsors(
        sponsors,
        [(name_of[m], t, box) for m, t, box in applied.select("media_id", "tag_id", "box").iter_rows()],
        segments.select("tag_id", "start_s", "end_s").iter_rows(),
        photos,
        video,
    )
    typer.secho(f"\n(d) the event {EVENT}: sponsors found against the event's known truth", bold=True)
    per = pl.DataFrame([{"sponsor": t, **v} for t, v in figures["per_sponsor"].items()])
    with pl.Config(tbl_rows=20, tbl_width_chars=180, tbl_hide_dataframe_shape=True):
        typer.echo(per)
    typer.echo(
        f"  photo sets: precision {figures['photo_set_precision']}, recall {figures['photo_set_recall']}; "
        f"no-logo photos given a sponsor: {figures['no_logo_photos_given_a_sponsor']} of "
        f"{figures['no_logo_photos']}; boxes: mean IoU {figures['mean_box_iou']}; screen time error "
        f"{figures['screen_time_abs_error_s_mean']} s per sponsor"
    )
    typer.echo(f"  sponsor report: {index}")
    typer.echo(f"  SQL          : tagsmith sql {LIBRARY} \"SELECT * FROM sponsor_summary\"")
    typer.echo(f"  event done in {time.perf_counter() - started:.0f} s")
    return True
