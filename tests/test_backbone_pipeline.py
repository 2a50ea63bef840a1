"""The backbone each facet reads, chosen on the group-aware holdout: every candidate embeds the examples; the
library's photos and video frames are embedded only by the backbones some facet reads."""

import json
import shutil

import polars as pl
from dagster import DagsterInstance, materialize

from assets_defs.partitions import library_partitions
from ml.backbone_choice import large_views_backbone, views_backbone
from ml.backbones import BackboneSpec, cached_backbone
from resources.backbone_plan import BackbonePlan


def _model(res, name):
    return cached_backbone(BackboneSpec(name=name, cache_dir=res["model_store"].backbone_cache_dir())).model_id


def test_views_compete_per_facet_and_only_a_chosen_backbone_embeds_the_library(
    local_resources, small_demo, tmp_path, add_library, asset_metadata, pipeline_assets, media_with_video
):
    res = local_resources
    libraries, wh = res["libraries"], res["warehouse"]
    folder, _ = media_with_video
    name = add_library(res, small_demo, name="views")
    config = libraries.config(name)
    assert config.views is True  # on by default
    libraries.create(config.model_copy(update={"media": str(folder)}), exist_ok=True)
    base, views = _model(res, "efficientnet-lite0"), _model(res, views_backbone("efficientnet-lite0"))
    large = _model(res, large_views_backbone("efficientnet-lite0"))
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(small_demo.catalog_path.read_text() + "facets:\n  colorway: {backbone: views}\n")
    libraries.set_catalog(name, catalog)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(library_partitions.name, [name])
        run = materialize(pipeline_assets, resources=res, partition_key=name, instance=instance)
        assert run.success
        meta = asset_metadata(run, "backbone_choice")
        assert meta["backbone/colorway"] == "views"
        assert set(meta["candidates"]) == {"base", "views", "large-views", "colour"}

        chosen = {r["facet"]: r for r in wh.read(name, "backbone_choice").iter_rows(named=True)}
        assert set(chosen) == {"product", "colorway", "shot_type"} and chosen["colorway"]["forced"]
        product = json.loads(chosen["product"]["probes"])
        # an unforced facet probes every candidate but the colour part, which only the ensemble reads
        assert set(product) == {"base", "views", "large-views"}
        assert all(0 <= p["balanced"] <= 1 and p["n_holdout"] > 0 for p in product.values())

        examples = set(wh.read(name, "examples")["media_id"])
        usable = wh.read(name, "media").filter((pl.col("status") == "ok") & (pl.col("kind") == "image"))
        photos_ = set(usable["media_id"])
        assert examples <= wh.embedded_ids(name, views) and examples <= wh.embedded_ids(name, base)
        assert examples <= wh.embedded_ids(name, large)
        # a facet reads views: the library's photos and the video's frames are embedded by it too
        assert photos_ <= wh.embedded_ids(name, views) and photos_ <= wh.embedded_ids(name, base)
        # the video's frames are embedded by exactly the backbones the facets read
        assert set(wh.read(name, "video_ranges")["model"]) == {r["model"] for r in chosen.values()} >= {views}
        promoted = wh.read(name, "heads").filter(pl.col("promoted"))
        model_of = dict(promoted.select("facet", "model").iter_rows())
        assert model_of["colorway"] == views
        assert json.loads(promoted.filter(pl.col("facet") == "colorway")["metrics"][0])["backbone"] == "views"
        frame_tags = wh.read(name, "frame_tags").filter(pl.col("facet") == "colorway")
        assert frame_tags.height == wh.read(name, "frames").height

        # no facet reads views any more (all forced onto base): a new photo is not embedded by it
        forced = "facets:\n" + "".join(f"  {f}: {{backbone: base}}\n" for f in ("product", "colorway", "shot_type"))
        catalog.write_text(small_demo.catalog_path.read_text() + forced)
        libraries.set_catalog(name, catalog)
        shutil.copy(sorted(small_demo.uploads_dir.glob("IMG_00*.jpg"))[6], folder / "new.jpg")
        again = materialize(pipeline_assets, resources=res, partition_key=name, instance=instance)
        assert again.success
        assert set(wh.read(name, "backbone_choice")["role"]) == {"base"}
        in_use = BackbonePlan(libraries.config(name), res["model_store"], wh, name).in_use()
        assert {model for _, model in in_use.values()} == {base}
        new_id = wh.read(name, "media").filter(pl.col("uri").str.ends_with("new.jpg"))["media_id"][0]
        assert new_id in wh.embedded_ids(name, base) and new_id not in wh.embedded_ids(name, views)
        assert new_id not in wh.embedded_ids(name, large)
        assert set(wh.read(name, "heads").filter(pl.col("promoted"))["model"]) == {base}
