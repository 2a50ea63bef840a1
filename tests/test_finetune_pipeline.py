"""Fine-tuning as a pipeline strategy: the fine-tuned backbone is trained on the train split, embeds photos and
video frames beside the library's own, heads compare both per facet, tags and segments read the chosen one."""

import json

import numpy as np
import polars as pl
from dagster import DagsterInstance, materialize

from assets_defs.partitions import library_partitions
from ml.backbone_choice import ENSEMBLE_OF
from ml.backbones.concat import join
from resources.backbone_plan import training_rows


def test_finetuned_backbone_competes_and_is_used_where_chosen(
    local_resources, small_demo, tmp_path, add_library, asset_metadata, pipeline_assets, media_with_video
):
    res = local_resources
    libraries, wh = res["libraries"], res["warehouse"]
    folder, _ = media_with_video
    name = add_library(res, small_demo, name="tuned", views=False)  # two candidates: base and fine-tuned
    libraries.create(libraries.config(name).model_copy(update={"media": str(folder)}), exist_ok=True)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(library_partitions.name, [name])
        # first without fine-tuning: one backbone, nothing trained
        first = materialize(pipeline_assets, resources=res, partition_key=name, instance=instance)
        assert first.success and asset_metadata(first, "finetuned_backbone")["enabled"] is False
        base_model = wh.read(name, "heads")["model"][0]
        base_range = wh.video_range_path(name, base_model, wh.read(name, "video_ranges")["media_id"][0], 0.0)
        base_written = base_range.stat().st_mtime_ns

        # then on, with the colourway facet forced onto the fine-tuned backbone
        config = libraries.config(name)
        settings = {"budget_min": 0.5, "epochs": 2, "train_blocks": 1}
        libraries.create(config.model_copy(update={"finetune": config.finetune.model_copy(update=settings)}), True)
        catalog = tmp_path / "catalog.yaml"
        forced = "facets:\n  colorway: {backbone: finetuned}\n  shot_type: {backbone: base}\n"
        catalog.write_text(small_demo.catalog_path.read_text() + forced)
        libraries.set_catalog(name, catalog)
        second = materialize(pipeline_assets, resources=res, partition_key=name, instance=instance)
        assert second.success
        trained = asset_metadata(second, "finetuned_backbone")
        assert trained["reused"] is False and trained["epochs_done"] > 0
        # the frames already embedded are embedded again by the new backbone only (text and keypoints stay)
        assert asset_metadata(second, "video_frames")["ranges_embedded"] == 1
        assert base_range.stat().st_mtime_ns == base_written

        third = materialize(pipeline_assets, resources=res, partition_key=name, instance=instance)
        assert third.success and asset_metadata(third, "finetuned_backbone")["reused"] is True
        assert asset_metadata(third, "embeddings")["embedded_now"] == 0
        assert asset_metadata(third, "video_frames")["ranges_embedded"] == 0

    # trained on the photos that are in no facet's holdout
    record = wh.read(name, "finetuned_backbone")
    assert record.height == 1
    tuned = record["model"][0]
    assert tuned.startswith("efficientnet-lite0-ft@") and tuned != base_model
    examples = wh.read(name, "examples")
    assert record["n_images"][0] == training_rows(examples)["media_id"].n_unique()
    held = set(examples.filter(pl.col("split") == "holdout")["media_id"])
    assert held and not held & set(training_rows(examples)["media_id"])

    # every photo and example embedded by both backbones
    usable = wh.read(name, "media").filter((pl.col("status") == "ok") & (pl.col("kind") == "image"))
    wanted = set(usable["media_id"]) | set(examples["media_id"])
    assert wanted <= wh.embedded_ids(name, base_model) and wanted <= wh.embedded_ids(name, tuned)

    # heads compared both backbones; the forced facet reads the fine-tuned one, its tags and segments too
    promoted = wh.read(name, "heads").filter(pl.col("promoted"))
    model_of = dict(promoted.select("facet", "model").iter_rows())
    assert model_of["colorway"] == tuned
    forced = json.loads(promoted.filter(pl.col("facet") == "colorway")["metrics"][0])
    assert forced["backbone"] == "finetuned" and set(forced["backbones"]) == {"finetuned"}
    product = json.loads(promoted.filter(pl.col("facet") == "product")["metrics"][0])
    assert set(product["backbones"]) == {"base", "finetuned"}
    assert product["backbones"][product["backbone"]]["model"] == model_of["product"]
    tags = wh.read(name, "tags")
    assert set(tags.filter(pl.col("facet") == "colorway")["media_id"]) == set(usable["media_id"])
    ranges = wh.read(name, "video_ranges")
    assert set(ranges["model"]) == {base_model, tuned} and ranges.height == 2
    frames = wh.read(name, "frames")
    frame_tags = wh.read(name, "frame_tags").filter(pl.col("facet") == "colorway")
    assert frame_tags.height == frames.height

    # with views on, the fine-tuned backbone is also read on the views, the large backbone on the views is a
    # candidate, so is a colour histogram of the views, and the ensemble puts the last three side by side; the
    # catalog forces the ensemble on shot_type
    libraries.create(libraries.config(name).model_copy(update={"views": True}), exist_ok=True)
    ensemble = "facets:\n  colorway: {backbone: finetuned}\n  shot_type: {backbone: ensemble}\n"
    catalog.write_text(small_demo.catalog_path.read_text() + ensemble)
    libraries.set_catalog(name, catalog)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(library_partitions.name, [name])
        fourth = materialize(pipeline_assets, resources=res, partition_key=name, instance=instance)
    assert fourth.success and asset_metadata(fourth, "finetuned_backbone")["reused"] is True
    candidates = asset_metadata(fourth, "backbone_choice")["candidates"]
    assert set(candidates) == {"base", "views", "finetuned", "finetuned-views", "large-views", "colour", "ensemble"}
    assert candidates["finetuned-views"] == f"{tuned}:views/center+zoom+zoom60"
    assert candidates["ensemble"] == f"concat({'|'.join(candidates[r] for r in ENSEMBLE_OF)})"
    assert ENSEMBLE_OF == ("large-views", "finetuned-views", "colour")
    # the ensemble's vectors (examples and library photos) are its parts' joined, as the ensemble backbone
    # computes them: never embedded twice
    ids, joined = wh.read_embeddings(name, candidates["ensemble"])
    parts = [wh.read_embeddings(name, candidates[r], ids)[1] for r in ENSEMBLE_OF]
    assert set(ids) == set(examples["media_id"]) | set(usable["media_id"])
    assert np.allclose(joined, join(parts), atol=1e-6)
    assert set(examples["media_id"]) <= wh.embedded_ids(name, candidates["finetuned-views"])
    probes = json.loads(wh.read(name, "backbone_choice").filter(pl.col("facet") == "product")["probes"][0])
    assert set(probes) == set(candidates) - {"colour"}  # a part, judged inside the ensemble only
    chosen = set(wh.read(name, "backbone_choice")["model"])
    in_library = {m for m in candidates.values() if set(usable["media_id"]) <= wh.embedded_ids(name, m)}
    # a candidate no facet picked embedded the examples only; the chosen ensemble is embedded as its parts, joined
    assert candidates["ensemble"] in chosen
    parts = {candidates[r] for r in ENSEMBLE_OF}
    assert in_library == chosen | {base_model} | parts
