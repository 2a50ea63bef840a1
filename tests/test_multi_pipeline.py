"""A multi facet through the whole pipeline: the generated sponsor event (tagsmith/demo_event.py) as a library,
its sponsors found where they are on photos and video frames, with calibrated thresholds."""

import re
from pathlib import Path

import polars as pl
import pytest

from ml.regions import box_iou
from resources.libraries import LibraryConfig
from resources.sql_sandbox import run_sandboxed
from tagsmith.demo_event import write_demo_event


@pytest.fixture(scope="module")
def event(tmp_path_factory):
    truth = write_demo_event(
        tmp_path_factory.mktemp("event"), seed=3, photos=16, examples_per_sponsor=5, none_examples=5,
        video_seconds=16.0,
    )
    # few examples per sponsor: a 0.95 target cannot be shown on 35 photos (its lower bound), 0.8 can
    catalog = truth.catalog_path.read_text(encoding="utf-8") + "facets:\n  sponsor: {target_precision: 0.8}\n"
    truth.catalog_path.write_text(catalog, encoding="utf-8")
    return truth


def test_sponsors_are_found_where_they_are_on_photos_and_frames(local_resources, event, run_library, asset_metadata):
    res = local_resources
    config = LibraryConfig(
        name="expo", media=str(event.event_dir), head_strategies=["logreg"], ocr="off", keypoints=False,
        views=False, finetune={"budget_min": 0},
    )
    res["libraries"].create(config)
    res["libraries"].set_catalog("expo", event.catalog_path)
    res["libraries"].add_examples("expo", event.examples_manifest)
    from pipelines.definitions import build_definitions

    result = run_library(list(build_definitions().assets), res, "expo")
    wh = res["warehouse"]
    media = wh.read("expo", "media").select("media_id", "uri")
    name_of = {m: u.rsplit("/", 1)[-1] for m, u in media.iter_rows()}

    versions = wh.read("expo", "head_versions")
    assert versions["strategy"].to_list() == ["regions"]  # whole photos cannot see a logo at 1-5 % of the frame
    detected = wh.read("expo", "detections")
    photos = detected.filter(pl.col("ts").is_null())
    assert photos["media_id"].n_unique() == len(event.photos)  # every photo searched, found or not
    assert detected.filter(pl.col("ts").is_not_null())["media_id"].n_unique() == 1  # the video's frames

    tags = wh.read("expo", "tags")
    assert tags.height == tags.unique(["media_id", "facet", "tag_id"]).height
    applied = tags.filter(pl.col("status") == "applied")
    right = wrong = 0
    for media_id, tag_id, box in applied.select("media_id", "tag_id", "box").iter_rows():
        truth = [b for b in event.photos[name_of[media_id]] if b.tag_id == tag_id]
        hit = any(box_iou(tuple(box), (b.x, b.y, b.w, b.h)) >= 0.3 for b in truth)
        right, wrong = right + hit, wrong + (not hit)
    shown = sum(len({b.tag_id for b in boxes}) for boxes in event.photos.values())
    assert wrong <= 1 and right >= 0.6 * shown, (right, wrong, shown)
    empty = {f for f, boxes in event.photos.items() if not boxes}
    assert empty and not set(applied["media_id"].replace_strict(name_of).to_list()) & empty

    segments = wh.read("expo", "video_segments").filter(pl.col("status") == "applied")
    assert segments.height
    for tag_id, start, end in segments.select("tag_id", "start_s", "end_s").iter_rows():
        on = [s for s in event.video if s.tag_id == tag_id and s.start_s < end and start < s.end_s]
        assert on, (tag_id, start, end)  # every applied segment overlaps a stretch of that sponsor on screen
    # the README's query of sponsor boxes, as shown, in the analysts' sandbox
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    query = next(b for b in re.findall(r"```sql\n(.*?)```", readme, flags=re.S) if "facet = 'sponsor'" in b)
    listed = run_sandboxed(wh, "expo", query.strip()).table
    assert listed.height == applied.height and all(len(b) == 4 for b in listed["box"].to_list())
    report = (wh.reports_dir("expo") / "evaluation.html").read_text(encoding="utf-8")
    assert "sponsor (multi): regions" in report
    assert asset_metadata(result, "detections")["searched_now"] == len(event.photos) + detected.filter(
        pl.col("ts").is_not_null()
    ).select("ts").n_unique()
