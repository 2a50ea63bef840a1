"""The video assets on their own (assets_defs/video): `video_frames` samples and embeds a library's videos once and
quarantines a video it cannot decode with its reason; `video_segments` turns a promoted head's frame scores into
stretches with start and end seconds. A 4 s clip written by the test, no heads pipeline: the head is trained
here on photos of the two colours the clip shows."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from dagster import DagsterInstance, build_asset_context, materialize
from PIL import Image

from assets_defs.media.assets import media
from assets_defs.partitions import library_partitions
from assets_defs.video.assets import video_frames, video_segments
from ml.backbones import cached_backbone
from ml.heads import train_facet_head
from ml.video import write_h264
from resources.backbone_plan import BackbonePlan
from resources.libraries import LibraryConfig

FPS, CUT_S = 10, 2.4
RED, BLUE = (200, 30, 30), (30, 50, 200)


def colour_at(t: float) -> tuple[int, int, int]:
    return RED if t < CUT_S else BLUE


def metadata(result, key: str) -> dict:
    mats = [m for m in result.asset_materializations_for_node(key) if m.asset_key.to_user_string() == key]
    return {k: v.value for k, v in mats[-1].metadata.items()}


@pytest.fixture
def videos(local_resources, tmp_path):
    """A library whose media folder holds a 4 s clip (red, then blue from 2.4 s) and a truncated copy of it."""
    folder = tmp_path / "media"
    folder.mkdir()
    clip = folder / "event.mp4"
    write_h264(str(clip), (np.full((120, 160, 3), colour_at(i / FPS), np.uint8) for i in range(4 * FPS)), FPS)
    (folder / "broken.mov").write_bytes(clip.read_bytes()[:1500])
    config = LibraryConfig(
        name="vids", media=str(folder), ocr="off", keypoints=False, views=False, finetune={"budget_min": 0}
    )
    local_resources["libraries"].create(config)
    return "vids", clip


# a subset on purpose: the video assets on their own (see the module docstring)
def materialize_frames(res, library: str, instance, assets=(media, video_frames)):
    return materialize(list(assets), resources=res, partition_key=library, instance=instance)


def test_a_library_with_a_video_gets_its_frames_once(local_resources, videos):
    res, (library, _) = local_resources, videos
    wh = res["warehouse"]
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(library_partitions.name, [library])
        first = materialize_frames(res, library, instance)
        again = materialize_frames(res, library, instance)
    assert first.success and again.success

    table = wh.read(library, "media")
    status = dict(zip(table["uri"].str.split("/").list.last(), table["status"], strict=True))
    assert status == {"event.mp4": "ok", "broken.mov": "quarantined"}
    quarantine = wh.read(library, "quarantine")
    (row,) = quarantine.filter(pl.col("uri").str.ends_with("broken.mov")).to_dicts()
    (error,) = table.filter(pl.col("uri").str.ends_with("broken.mov"))["error"].to_list()
    assert row["stage"] == "media" and row["reason"] == error and "Traceback" not in error  # refused, one reason

    meta = metadata(first, "video_frames")
    assert (meta["videos"], meta["ranges_embedded"], meta["ranges_failed"]) == (1, 1, 0)
    frames = wh.read(library, "frames").sort("ts")
    interval = frames.filter(pl.col("reason") == "interval")["ts"].to_list()
    cuts = frames.filter(pl.col("reason") == "scene-change")["ts"].to_list()
    assert interval == pytest.approx([0.0, 1.0, 2.0, 3.0], abs=0.051)
    assert len(cuts) == 1 and CUT_S - 1e-6 <= cuts[0] <= CUT_S + 0.25
    assert meta["frames_new"] == frames.height == 5

    model = BackbonePlan(res["libraries"].config(library), res["model_store"], wh, library).library_model_id()
    ranges = wh.read(library, "video_ranges")
    assert ranges.select("start_s", "model", "frames", "error").rows() == [(0.0, model, 5, None)]
    (video_id,) = ranges["media_id"].to_list()
    ((stamps, vectors),) = list(wh.iter_frame_embeddings(library, model, video_id))
    assert stamps == frames["ts"].to_list() and vectors.shape == (5, 1280)

    # a second run has nothing to do, and the tables do not grow
    meta = metadata(again, "video_frames")
    assert (meta["ranges_embedded"], meta["frames_new"], meta["frames_total"]) == (0, 0, 5)
    assert wh.read(library, "frames").height == 5 and wh.read(library, "video_ranges").height == 1


def test_a_video_that_cannot_be_decoded_is_quarantined_with_its_reason(local_resources, videos):
    """The media table says the file is a good video, but its bytes went bad before its frames were read (a
    half-synced share, a disk error): the range task's error goes to `quarantine` at the video stage, the run
    goes on, and the range is not retried every night."""
    res, (library, clip) = local_resources, videos
    wh = res["warehouse"]
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(library_partitions.name, [library])
        assert materialize_frames(res, library, instance, assets=[media]).success
        clip.write_bytes(b"\x00" * 4096)  # after media inspected it
        result = materialize_frames(res, library, instance, assets=[video_frames])
        assert result.success
        assert metadata(result, "video_frames")["ranges_failed"] == 1
        again = materialize_frames(res, library, instance, assets=[video_frames])
        assert metadata(again, "video_frames")["ranges_embedded"] == 0  # the same bytes are not tried again
    rows = wh.read(library, "quarantine").filter(pl.col("stage") == "video").to_dicts()
    assert len(rows) == 1 and rows[0]["uri"] == str(clip.resolve())
    assert "(range 0-4 s)" in rows[0]["reason"] and len(rows[0]["reason"]) > len("(range 0-4 s)")
    assert wh.read(library, "frames").height == 0
    (error,) = wh.read(library, "video_ranges")["error"].to_list()
    assert error and error in rows[0]["reason"]


def colour_photos(colour: tuple[int, int, int], n: int, seed: int) -> list[Image.Image]:
    """Plain photos of one colour, each a little lighter or darker (flat, like the clip's frames: a frame unlike
    every example is "nothing recognised" and gets no segment)."""
    rng = np.random.default_rng(seed)
    shades = np.clip(np.array(colour) + rng.integers(-12, 13, (n, 3)), 0, 255)
    return [Image.new("RGB", (128, 96), tuple(int(v) for v in shade)) for shade in shades]


def test_segments_follow_the_promoted_head_on_the_frames(local_resources, videos):
    res, (library, _) = local_resources, videos
    wh, model_store = res["warehouse"], res["model_store"]
    config = res["libraries"].config(library)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(library_partitions.name, [library])
        assert materialize_frames(res, library, instance).success

        backbone = cached_backbone(BackbonePlan(config, model_store, wh, library).spec())
        X = backbone.embed(colour_photos(RED, 12, seed=1) + colour_photos(BLUE, 12, seed=2))
        y = np.array(["red"] * 12 + ["blue"] * 12)
        hold = np.arange(24) % 4 == 0
        head = train_facet_head("colour", X[~hold], y[~hold], X[hold], y[hold], strategies=("prototype",))
        head.model_id = backbone.model_id
        # six holdout photos vouch for no threshold (both are above 1): set them, to see that segments use them
        head.thresholds = {"red": 0.5, "blue": 1.01}
        model_store.save_head(library, "colour", "colour-test", head)

        with build_asset_context(partition_key=library, instance=instance) as context:
            result, *tables = video_segments(  # a multi_asset: its own result, then its side tables'
                context,
                promoted_heads={"colour": "colour-test"},
                libraries=res["libraries"],
                model_store=model_store,
                warehouse=wh,
            )
    assert result.metadata["videos"] == 1 and result.metadata["segments"] == 2
    assert [t.asset_key.path for t in tables] == [["frame_tags"]] and tables[0].metadata["rows"] > 0
    segments = wh.read(library, "video_segments").sort("start_s")
    assert segments["tag_id"].to_list() == ["red", "blue"]
    assert segments["status"].to_list() == ["applied", "review"]  # blue's score never reaches its threshold
    assert set(segments["head_version"]) == {"colour-test"} and segments["peak_score"].min() > 0.9
    red, blue = segments.to_dicts()
    assert red["start_s"] == 0.0 and red["end_s"] == blue["start_s"]  # the cut ends one and starts the next
    assert CUT_S - 1e-6 <= blue["start_s"] <= CUT_S + 0.25 and blue["end_s"] == pytest.approx(4.0, abs=0.11)
    assert (result.metadata["applied"], result.metadata["review"]) == (1, 1)

    frames = wh.read(library, "frames")
    frame_tags = wh.read(library, "frame_tags").sort("ts")
    assert frame_tags.height == frames.height and set(frame_tags["facet"]) == {"colour"}
    expected = ["red" if ts < CUT_S else "blue" for ts in frame_tags["ts"]]
    assert frame_tags["tag_id"].to_list() == expected and set(frame_tags["head_version"]) == {"colour-test"}

    # the same head again: the video's segments and frame tags are kept from the last run, not scored again
    with DagsterInstance.ephemeral() as instance, build_asset_context(partition_key=library, instance=instance) as ctx:
        again, *_ = video_segments(ctx, promoted_heads={"colour": "colour-test"}, libraries=res["libraries"],
                                   model_store=model_store, warehouse=wh)  # fmt: skip
    assert (result.metadata["kept_from_last_run"], again.metadata["kept_from_last_run"]) == (0, 1)
    assert wh.read(library, "video_segments").sort("start_s").drop("origin").equals(segments.drop("origin"))
    assert wh.read(library, "frame_tags").sort("ts").equals(frame_tags)
