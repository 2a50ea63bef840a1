"""The whole photo pipeline through Dagster on a small generated library, with local resources."""

import numpy as np
import polars as pl
import pytest
from dagster import DagsterInstance

from assets_defs.embeddings.assets import embeddings
from assets_defs.media.assets import media
from assets_defs.search.assets import vector_index
from assets_defs.training.assets import catalog, examples
from ml.search_text import search_terms
from resources.libraries import LibraryConfig
from resources.tables import TABLES

EVERY_FACET = {"facets": [], "lang": "", "offset": 0}  # sql/search.sql: any facet, names as cataloged, page 1


@pytest.fixture
def run_all(pipeline_assets, run_library):
    """run_all(res, name, instance): every asset of the Definitions on library `name`, failures kept in the result."""

    def run(res, name, instance):
        return run_library(pipeline_assets, res, name, instance, raise_on_error=False)

    return run


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def test_photo_pipeline_end_to_end(local_resources, small_demo, instance, add_library, asset_metadata, run_all):
    res = local_resources
    name = add_library(res, small_demo)
    result = run_all(res, name, instance)
    assert result.success
    wh = res["warehouse"]

    # every Parquet file the run wrote belongs to a table declared in resources/tables.py
    base = wh.library_dir(name)
    globs = [g for t in TABLES.values() for g in t.globs()]
    stray = [p.name for p in base.rglob("*.parquet") if not any(p.match(str(base / g)) for g in globs)]
    assert not stray

    # bad input quarantined with reasons; every other upload tagged
    quarantine = wh.read(name, "quarantine")
    reasons = dict(zip(quarantine["uri"].str.split("/").list.last(), quarantine["reason"], strict=True))
    assert "empty file" in reasons["IMG_9001.jpg"]
    assert "truncated" in reasons["IMG_9002.jpg"]
    assert "not an image" in reasons["IMG_9003.jpg"]
    media_table = wh.read(name, "media")
    good = media_table.filter(pl.col("status") == "ok")
    assert good.height == small_demo.n_uploads
    tag_table = wh.read(name, "tags")
    assert set(tag_table["media_id"]) == set(good["media_id"])
    assert set(tag_table["facet"]) == {"product", "colorway", "shot_type"}
    assert set(tag_table["status"]) <= {"applied", "review"}

    # predictions under the tag's threshold are never applied
    heads_table = wh.read(name, "heads").filter(pl.col("promoted"))
    assert heads_table.height == 3
    import json

    for row in heads_table.iter_rows(named=True):
        # every facet compared the picture alone with the picture plus keypoint matches (OCR is off here)
        evaluated = json.loads(row["metrics"])["strategies"]
        assert {"logreg", "prototype"} <= set(evaluated) and any("+keypoints" in s for s in evaluated)
        thresholds = json.loads(row["thresholds"])
        facet_tags = tag_table.filter(pl.col("facet") == row["facet"])
        for t in facet_tags.iter_rows(named=True):
            assert (t["status"] == "applied") == (t["score"] >= thresholds[t["tag_id"]])

    # the examples' groups: one shoot folder, numbered as one run, so every tag has a single shoot; photos of one
    # group are on one side of the split, and the heads say what they promise and that it is optimistic
    examples_table = wh.read(name, "examples")
    assert set(examples_table["tag_groups"]) == {1} and examples_table["group"].null_count() == 0
    sides = examples_table.group_by("group").agg(pl.col("split").n_unique())
    assert sides["split"].max() == 1
    for row in heads_table.iter_rows(named=True):
        metrics = json.loads(row["metrics"])
        assert metrics["single_group_tags"] and metrics["new_shoot"]["n_holdout"] == row["n_holdout"]
        assert metrics["new_shoot"]["top1"] == pytest.approx(row["accuracy"], abs=1e-4)
        assert metrics["new_shoot"]["top1_low"] <= row["accuracy"] <= metrics["new_shoot"]["top1_projected_high"]
    report = asset_metadata(result, "evaluation_report")
    assert {f"new_shoot_top1/{f}" for f in ("product", "colorway", "shot_type")} <= set(report)

    # measured against the known truth: shot type is easy, products are well above chance (1/24)
    truth = pl.read_csv(small_demo.truth_path).with_columns(
        uri=pl.col("path").map_elements(lambda p: str((small_demo.uploads_dir / p).resolve()), return_dtype=pl.String)
    )
    joined = truth.join(media_table.select("uri", "media_id"), on="uri").join(
        tag_table.select("media_id", "facet", pl.col("tag_id").alias("predicted")), on=["media_id", "facet"]
    )
    accuracy = dict(joined.group_by("facet").agg((pl.col("predicted") == pl.col("tag_id")).mean()).iter_rows())
    assert accuracy["shot_type"] >= 0.9
    assert accuracy["product"] >= 0.25

    # SQL views and search: all terms must match, ranked by score
    with wh.connect() as con:
        con.execute(f'SET schema = "{name}"')
        assert con.execute("SELECT count(*) FROM tag_details").fetchone()[0] == tag_table.height
    applied = wh.query(name, "export_tags", {"statuses": ["applied", "review"]})
    sample = applied.filter(pl.col("facet") == "product").row(0, named=True)
    terms = search_terms(sample["name"])  # folded as the catalog's search_text is (ml/search_text.py)
    hits = wh.query(name, "search", {"terms": terms, "statuses": ["applied", "review"], "limit": 50, **EVERY_FACET})
    assert sample["media_id"] in hits["media_id"].to_list()
    assert hits["score"].to_list() == sorted(hits["score"].to_list(), reverse=True)
    none = wh.query(
        name, "search", {"terms": [*terms, "zzzz no such word"], "statuses": ["applied"], "limit": 50, **EVERY_FACET}
    )
    assert none.height == 0

    # similar: a photo's nearest neighbour is itself
    first = good.row(0, named=True)
    _, vectors = wh.read_embeddings(name, asset_metadata(result, "embeddings")["model"], [first["media_id"]])
    hits = res["vector_store"].search(name, vectors[0], limit=3)
    assert hits[0]["media_id"] == first["media_id"] and hits[0]["score"] > 0.99

    # a second run with nothing new computes no embedding and trains no head
    again = run_all(res, name, instance)
    assert again.success
    assert asset_metadata(again, "embeddings")["embedded_now"] == 0
    assert asset_metadata(again, "vector_index")["upserted"] == 0
    assert wh.read(name, "heads").height == wh.read(name, "heads").unique("version").height == 3


def test_blocking_check_stops_promotion(local_resources, small_demo, instance, add_library, run_all):
    res = local_resources
    name = add_library(res, small_demo, name="strict", min_holdout_accuracy=1.0, facet_min_accuracy={"shot_type": 0.5})
    result = run_all(res, name, instance)
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 1 and not evaluations[0].passed
    assert "product" in evaluations[0].description
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"heads", "evaluation_report"} <= materialized  # the report is there when a person needs it
    assert "promoted_heads" not in materialized and "tags" not in materialized
    report = (res["warehouse"].reports_dir(name) / "evaluation.html").read_text()
    assert "FAILS" in report and "Confusions that matter most" in report
    assert not res["warehouse"].read(name, "heads")["promoted"].any()


def test_vector_index_follows_the_media_folder(
    local_resources, small_demo, instance, tmp_path, add_library, asset_metadata, run_library
):
    import shutil

    res = local_resources
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in sorted(small_demo.uploads_dir.glob("IMG_000*.jpg"))[:4]:
        shutil.copy(path, folder / path.name)
    name = add_library(res, small_demo, name="moving")
    res["libraries"].create(res["libraries"].config(name).model_copy(update={"media": str(folder)}), exist_ok=True)
    # a subset on purpose: only what the vector index reads, so that removing a photo is the one change it sees
    selection = [catalog, media, examples, embeddings, vector_index]
    first = run_library(selection, res, name, instance)
    assert asset_metadata(first, "vector_index")["points"] == 4
    removed = sorted(folder.iterdir())[0]
    removed.unlink()
    second = run_library(selection, res, name, instance)
    meta = asset_metadata(second, "vector_index")
    assert (meta["upserted"], meta["removed"], meta["points"]) == (0, 1, 3)
    uris = {h["uri"] for h in res["vector_store"].search(name, np.ones(1280, np.float32), limit=10)}
    assert str(removed.resolve()) not in uris and len(uris) == 3


def test_no_trainable_facet_fails_the_check_with_the_report(local_resources, small_demo, instance, tmp_path, run_all):
    res = local_resources
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("tags:\n  - {tag_id: only-one, facet: product}\n  - {tag_id: never-shown, facet: product}\n")
    photos = sorted(small_demo.uploads_dir.glob("IMG_00*.jpg"))[:4]
    manifest = tmp_path / "examples.csv"
    manifest.write_text("path,tag_id\n" + "".join(f"{p},only-one\n" for p in photos))
    # fine-tuning off: it has its own test, and the whole pipeline runs here only to reach the check
    config = LibraryConfig(name="single", media=str(tmp_path / "none"), ocr="off", finetune={"budget_min": 0})
    (tmp_path / "none").mkdir()
    res["libraries"].create(config)
    res["libraries"].set_catalog("single", catalog)
    res["libraries"].add_examples("single", manifest)
    result = run_all(res, "single", instance)
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and "product: no head could be trained" in check.description
    assert (res["warehouse"].reports_dir("single") / "evaluation.html").exists()
