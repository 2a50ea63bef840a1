"""Videos through the pipeline: frames on the task runner, segments from the promoted heads, bad videos quarantined."""

import polars as pl
from dagster import DagsterInstance, materialize

from assets_defs.partitions import library_partitions
from ml.search_text import search_terms

EVERY_FACET = {"facets": [], "lang": "", "offset": 0}  # sql/search.sql: any facet, names as cataloged, page 1


def test_video_segments_follow_what_is_on_screen(
    local_resources, small_demo, add_library, asset_metadata, pipeline_assets, media_with_video
):
    res = local_resources
    folder, photos = media_with_video
    (folder / "broken.mov").write_bytes((folder / "event.mp4").read_bytes()[:3000])
    name = add_library(res, small_demo, name="vids")
    res["libraries"].create(res["libraries"].config(name).model_copy(update={"media": str(folder)}), exist_ok=True)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(library_partitions.name, [name])
        assets = pipeline_assets
        result = materialize(assets, resources=res, partition_key=name, instance=instance)
        assert result.success
        again = materialize(assets, resources=res, partition_key=name, instance=instance)
        assert asset_metadata(again, "video_frames")["ranges_embedded"] == 0
    wh = res["warehouse"]
    media_table = wh.read(name, "media")
    video = media_table.filter(pl.col("uri").str.ends_with("event.mp4")).row(0, named=True)
    assert video["status"] == "ok" and abs(video["duration_s"] - 8.8) < 0.3
    assert media_table.filter(pl.col("uri").str.ends_with("broken.mov"))["status"].to_list() == ["quarantined"]

    frames = wh.read(name, "frames")
    assert frames.filter(pl.col("reason") == "interval").height == 9  # 0..8 s at 1 fps
    cut = frames.filter(pl.col("reason") == "scene-change")["ts"].to_list()
    assert len(cut) == 1 and 4.4 <= cut[0] <= 4.65  # the cut at 4.4 s, found to within 0.25 s

    # the product shown in each half is the product the photo head gives the same photo
    tags = wh.read(name, "tags").join(media_table.select("media_id", "uri"), on="media_id")
    expected = [
        tags.filter((pl.col("uri") == str((folder / p.name).resolve())) & (pl.col("facet") == "product"))["tag_id"][0]
        for p in photos[:2]
    ]
    segments = wh.read(name, "video_segments").filter(pl.col("facet") == "product").sort("start_s")
    assert set(segments["status"]) <= {"applied", "review"}
    at = lambda t: segments.filter((pl.col("start_s") <= t) & (pl.col("end_s") > t))["tag_id"].to_list()  # noqa: E731
    assert at(1.0) == [expected[0]] and at(6.5) == [expected[1]]
    first = segments.filter(pl.col("tag_id") == expected[0]).row(0, named=True)

    # search returns photos and video segments together, segments with their time range
    name_of = dict(wh.read(name, "catalog").select("tag_id", "name").iter_rows())
    from tagsmith.service import with_places

    terms = search_terms(name_of[expected[0]])  # folded as the catalog's search_text is
    params = {"terms": terms, "statuses": ["applied", "review"], "limit": 50, **EVERY_FACET}
    hits = with_places(wh.query(name, "search", params))
    video_hits = hits.filter(pl.col("kind") == "video")
    assert video_hits.height >= 1 and video_hits["start_s"][0] == 0.0
    assert video_hits["place"][0].startswith("event.mp4 00:00:00–00:00:0")
    assert hits.filter(pl.col("kind") == "image").height >= 1
    assert first["start_s"] == 0.0 and 4.4 <= first["end_s"] <= 4.65  # ends at the refined cut

    # every sampled frame has the heads' top tag per facet, and the analyst view exists
    frame_tags = wh.read(name, "frame_tags")
    assert frame_tags.height == frames.height * frame_tags["facet"].n_unique()
    product_at = dict(frame_tags.filter(pl.col("facet") == "product").select("ts", "tag_id").iter_rows())
    assert product_at[1.0] == expected[0] and product_at[6.0] == expected[1]

    # a contact sheet per video with pictures and the timeline, and an index; redrawn only on change
    sheets = wh.reports_dir(name) / "videos"
    (page,) = [p for p in sheets.glob("event-*.html")]
    text = page.read_text()
    assert text.count("data:image/jpeg;base64,") == frames.height  # 10 frames: all shown
    assert "scene change" in text and name_of[expected[0]] in text
    assert "event.mp4" in (sheets / "index.html").read_text()
    assert asset_metadata(again, "contact_sheets")["sheets_drawn"] == 0
