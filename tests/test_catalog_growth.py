"""A catalog that grows and retires tags, through the assets: only the facet that changed retrains (the split
stays put: ml/sticky_splits.py), a retired tag is kept and recorded but neither trained on nor predicted, and
`catalog_changes` keeps the history. One library, three runs of the steps from the catalog to the tags (the
small demo at 128 px; keypoints, views, OCR and fine-tuning off: they are not what is tested here)."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
import yaml
from dagster import DagsterInstance

from assets_defs.embeddings.assets import embeddings
from assets_defs.heads.assets import heads
from assets_defs.heads.evaluation import promoted_heads
from assets_defs.media.assets import media
from assets_defs.tags.assets import tags
from assets_defs.training.assets import catalog, examples
from ml.catalog import RETIRE_HINT, ValidationError
from resources.sql_sandbox import run_sandboxed

README = Path(__file__).resolve().parents[1] / "README.md"
# the steps from the catalog to the tags, without the report (its check gates promotion; here every head passes)
STEPS = [catalog, media, examples, embeddings, heads, promoted_heads, tags]


def run(run_library, res, name, instance):
    result = run_library(STEPS, res, name, instance)
    logs = [e.user_message for e in instance.all_logs(result.run_id) if not e.is_dagster_event]
    (mat,) = [m for m in result.asset_materializations_for_node("heads") if m.asset_key.path == ["heads"]]
    return mat.metadata["candidates"].value, logs


def versions_in_tags(res, name: str) -> dict[str, set[str]]:
    table = res["warehouse"].read(name, "tags")
    return {f: set(table.filter(pl.col("facet") == f)["head_version"]) for f in table["facet"].unique()}


def test_a_growing_catalog_retrains_only_what_changed_and_keeps_retired_tags(
    local_resources, small_demo, add_library, run_library, tmp_path
):
    """Run once; add a product with examples of its own (four new photos, two shoots): only the product head
    retrains; then retire it: kept and recorded, left out of training and of the tags; then take it out of the
    file: refused, saying `retired: true`."""
    res = local_resources
    name = add_library(res, small_demo, name="grows", keypoints=False, views=False, head_strategies=["prototype"])
    with DagsterInstance.ephemeral() as instance:
        first, _ = run(run_library, res, name, instance)
        old = res["warehouse"].read(name, "examples").select("media_id", "facet", "tag_id", "split")
        tags_before = versions_in_tags(res, name)
        entries = yaml.safe_load(small_demo.catalog_path.read_text("utf-8"))["tags"]
        entries.append({"tag_id": "summit-pack", "facet": "product", "name": "Summit Pack"})
        new_catalog = tmp_path / "catalog.yaml"
        new_catalog.write_text(yaml.safe_dump({"tags": entries}, allow_unicode=True), "utf-8")
        res["libraries"].set_catalog(name, new_catalog)
        photos = sorted(small_demo.uploads_dir.glob("*.jpg"))[:4]
        manifest = tmp_path / "summit.csv"
        rows = "".join(f"{p},summit-pack,product,summit-{k % 2}\n" for k, p in enumerate(photos))
        manifest.write_text("path,tag_id,facet,group\n" + rows, "utf-8")
        res["libraries"].add_examples(name, manifest)
        second, logs = run(run_library, res, name, instance)

        assert set(first) == {"product", "colorway", "shot_type"}
        assert second["product"] != first["product"]
        for facet in ("colorway", "shot_type"):
            assert second[facet] == first[facet]
            assert f"{facet}: training set unchanged, reusing {first[facet]}" in logs
        assert not any(line.startswith("product: training set unchanged") for line in logs)
        # every earlier photo kept its side in every facet, so the other facets' rows are the same rows
        now = res["warehouse"].read(name, "examples")
        kept = now.join(old.select("media_id", "facet"), on=["media_id", "facet"]).select(old.columns)
        assert kept.sort("media_id", "facet").equals(old.sort("media_id", "facet"))
        summit = now.filter(pl.col("tag_id") == "summit-pack")
        assert summit.height == 4 and set(summit["split"]) == {"train", "holdout"}
        # the tags of the facets that did not change carry the same head version as before
        after = versions_in_tags(res, name)
        for facet in ("colorway", "shot_type"):
            assert after[facet] == tags_before[facet] == {first[facet]}
        assert after["product"] == {second["product"]}
        # re-tagged from cache: the unchanged facets' rows of the last run stand, only the product head scores
        n_photos = res["warehouse"].read(name, "tags").filter(pl.col("facet") == "colorway").height
        reused = f"{name}: {2 * n_photos} photo tags reused from the last run (same head versions), {n_photos} scored"
        assert reused in logs
        changes = res["warehouse"].read(name, "catalog_changes")
        assert changes.filter(pl.col("tag_id") == "summit-pack")["change"].to_list() == ["added"]
        assert changes.filter(pl.col("change") == "added").height == len(entries)  # the first run: every tag

        # retired: kept in the catalog, recorded, left out of training and of the tags
        entries = [dict(e, retired=True) if e["tag_id"] == "summit-pack" else e for e in entries]
        new_catalog.write_text(yaml.safe_dump({"tags": entries}, allow_unicode=True), "utf-8")
        res["libraries"].set_catalog(name, new_catalog)
        third, logs = run(run_library, res, name, instance)
    assert any("4 examples of retired tags left out of training: {'summit-pack': 4}" in line for line in logs)
    assert third["colorway"] == first["colorway"] and third["shot_type"] == first["shot_type"]
    assert res["warehouse"].read(name, "examples").filter(pl.col("tag_id") == "summit-pack").height == 0
    assert "summit-pack" not in set(res["warehouse"].read(name, "tags")["tag_id"])
    assert res["warehouse"].read(name, "catalog").filter(pl.col("retired"))["tag_id"].to_list() == ["summit-pack"]
    # the README's query, run literally in the `tagsmith sql` sandbox
    blocks = re.findall(r"```sql\n(.*?)```", README.read_text("utf-8"), flags=re.S)
    query = next(b for b in blocks if "catalog_changes" in b)
    history = run_sandboxed(res["warehouse"], name, query).table
    assert sorted(history.filter(pl.col("tag_id") == "summit-pack")["change"]) == ["added", "retired"]
    # taking it out of the file instead is refused, saying what to do
    gone = [e for e in entries if e["tag_id"] != "summit-pack"]
    new_catalog.write_text(yaml.safe_dump({"tags": gone}, allow_unicode=True), "utf-8")
    with pytest.raises(ValidationError, match="tag 'summit-pack' is not in the catalog but 4 stored example") as info:
        res["libraries"].set_catalog(name, new_catalog)
    assert RETIRE_HINT in str(info.value)
