"""Head version rollback: the pin file, the promotion rule, which versions can be restored, the `retag` job, and
the README's "Versions and rollback" block run literally on a small library (in-process CLI)."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml
from dagster import AssetKey, DagsterInstance

from assets_defs.heads.evaluation import PinError, check_pins
from resources.libraries import ConfigError
from resources.model_store import ModelStore
from resources.pins import choose_promotions, pin, pins_path, read_pins, release
from resources.tables import frame
from tagsmith.versions import VersionError, resolve

README = Path(__file__).resolve().parents[1] / "README.md"
SUBSET = 8  # products of the small demo the end-to-end test's library learns (its bar: 0.05, so all pass)
UPLOADS = 6


def test_pins_round_trip_and_a_broken_file_is_one_error(tmp_path):
    assert read_pins(tmp_path) == {}
    pin(tmp_path, "product", "product-v1", replaced="product-v2")
    pin(tmp_path, "colorway", "colorway-v1")
    assert read_pins(tmp_path) == {"product": "product-v1", "colorway": "colorway-v1"}
    assert release(tmp_path, "product") == "product-v1" and release(tmp_path, "product") is None
    assert release(tmp_path, "colorway") == "colorway-v1" and not pins_path(tmp_path).exists()
    pins_path(tmp_path).write_text("product: [oops\n", "utf-8")
    with pytest.raises(ConfigError, match="pins.yaml: not valid YAML"):
        read_pins(tmp_path)
    pins_path(tmp_path).write_text("product: v1\n", "utf-8")
    with pytest.raises(ConfigError, match="product: should be a mapping with a `version`"):
        read_pins(tmp_path)


def test_a_pin_beats_the_candidate_and_a_retag_keeps_what_is_in_use():
    candidates = {"product": "product-v3", "colorway": "colorway-v2"}
    in_use = {"product": "product-v2", "colorway": "colorway-v1"}
    plain = choose_promotions(candidates, in_use, {})
    assert plain.chosen == candidates and plain.pinned == {} and plain.notes == []
    pinned = choose_promotions(candidates, in_use, {"product": "product-v1"})
    assert pinned.chosen == {"product": "product-v1", "colorway": "colorway-v2"}
    assert pinned.held_back == {"product": "product-v3"}
    assert pinned.notes == [
        "product: candidate product-v3 was trained but not promoted: the facet is pinned to product-v1 "
        "(`tagsmith rollback LIB product --release` lets the newest passing candidate in again)"
    ]
    retag = choose_promotions(candidates, in_use, {"product": "product-v1"}, keep_in_use=True)
    assert retag.chosen == {"product": "product-v1", "colorway": "colorway-v1"}  # colorway's candidate: no check ran
    gone = choose_promotions(candidates, in_use, {"sponsor": "sponsor-v1"})
    assert gone.chosen == candidates and gone.notes[0].startswith("sponsor: pinned to sponsor-v1, but the library")


def _heads(rows: list[tuple]) -> pl.DataFrame:
    """A facet's `heads` rows: (version, trained_at, promoted, promoted_at)."""
    return pl.DataFrame(
        [{"facet": "product", "version": v, "trained_at": t, "promoted": p, "promoted_at": a} for v, t, p, a in rows],
        schema={
            "facet": pl.String,
            "version": pl.String,
            "trained_at": pl.String,
            "promoted": pl.Boolean,
            "promoted_at": pl.String,
        },
    )


def test_only_a_version_that_passed_the_check_resolves_and_a_refusal_lists_the_restorable_ones():
    table = _heads(
        [
            ("product-v1", "2026-01-01", False, "2026-01-01"),
            ("product-v2", "2026-02-01", True, "2026-02-01"),
            ("product-bad", "2026-03-01", False, None),  # failed the blocking check: never promoted
        ]
    )
    assert resolve(table, "product", "previous") == "product-v1"
    assert resolve(table, "product", "product-v1") == "product-v1"
    listed = "restorable versions of product: product-v2 (in use), product-v1"
    with pytest.raises(VersionError) as refused:
        resolve(table, "product", "product-bad")
    assert str(refused.value) == f"product-bad never passed the blocking check, so it cannot be restored; {listed}"
    with pytest.raises(VersionError, match=f"product has no version 'product-v9'; {re.escape(listed)}$"):
        resolve(table, "product", "product-v9")
    with pytest.raises(VersionError, match="product has no version promoted before the one in use"):
        resolve(table.filter(pl.col("version") != "product-v1"), "product", "previous")


def test_a_pin_the_step_cannot_honour_fails_it_with_what_to_do(tmp_path):
    store = ModelStore(root=str(tmp_path))
    promotions = frame(
        "head_promotions",
        [
            {
                "facet": "product",
                "version": "product-v1",
                "promoted": False,
                "promoted_at": "2026-01-01",
                "pinned": False,
            },
        ],
    )
    with pytest.raises(PinError, match=r"product is pinned to product-v9, which never passed the blocking check"):
        check_pins("shop", {"product": "product-v9"}, promotions, store)
    with pytest.raises(PinError, match=r"its model file is missing .*`tagsmith rollback shop product --release`"):
        check_pins("shop", {"product": "product-v1"}, promotions, store)
    store.save_head("shop", "product", "product-v1", {"a": 1})
    assert check_pins("shop", {"product": "product-v1"}, promotions, store) is None


def test_the_retag_job_reruns_what_a_head_change_affects_and_embeds_nothing(tmp_path):
    from pipelines.definitions import build_definitions

    job = build_definitions({"TAGSMITH_HOME": str(tmp_path)}).resolve_job_def("retag")
    selected = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert selected == {
        "promoted_heads",
        "head_promotions",
        "tags",
        "detections",
        "video_segments",
        "frame_tags",
        "contact_sheets",
        "warehouse_views",
    }
    config = job.partitioned_config.get_run_config_for_partition_key("shoes")
    assert config["ops"]["promoted_heads"]["config"] == {"keep_in_use": True}  # no check in its run: no candidates


def readme_rollback_commands() -> list[list[str]]:
    """The README's "Versions and rollback" block: one command per line, comments left out, split as a shell
    would (each starts with `tagsmith`)."""
    text = README.read_text("utf-8")
    section = text[text.index("### Versions and rollback") :]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    lines = [re.sub(r"\s+#\s.*$", "", line).strip() for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line and not line.startswith("#")]


def _tags(home: Path) -> pl.DataFrame:
    return pl.read_parquet(home / "warehouse" / "shoes" / "tags.parquet").sort("media_id", "facet", "tag_id")


def _promotion(instance) -> tuple[str, dict]:
    """The job of the run behind the latest `promoted_heads` materialization of `shoes`, and its metadata."""
    event = instance.get_latest_materialization_event(AssetKey("promoted_heads"))
    metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    return instance.get_run_by_id(event.run_id).job_name, metadata


def test_readme_rollback_block_restores_pins_and_releases(cli, tmp_path, small_demo, model_root):
    commands = readme_rollback_commands()
    assert [c[:2] for c in commands] == [
        ["tagsmith", "heads"],
        ["tagsmith", "rollback"],
        ["tagsmith", "run"],
        ["tagsmith", "rollback"],
        ["tagsmith", "run"],
    ]
    facet = commands[1][3]
    home = tmp_path / "home"
    (model_root / "backbones").mkdir(exist_ok=True)
    (home / "models").mkdir(parents=True)  # the session's exported backbone, not an export of its own
    (home / "models" / "backbones").symlink_to(model_root / "backbones", target_is_directory=True)
    media = tmp_path / "media"  # a few uploads: the runs tag them, and the rollback re-tags them
    media.mkdir()
    for upload in sorted(small_demo.uploads_dir.glob("IMG_0*.jpg"))[:UPLOADS]:
        shutil.copy(upload, media / upload.name)
    assert cli("init", "shoes", "--media", media, "--min-accuracy", "0.05").exit_code == 0
    settings = home / "libraries" / "shoes" / "library.yaml"
    config = yaml.safe_load(settings.read_text("utf-8"))  # what keeps a pipeline test short (tests/conftest.py)
    config.update(
        head_strategies=["logreg", "prototype"], ocr="off", finetune={"budget_min": 0}, views=False, keypoints=False
    )
    settings.write_text(yaml.safe_dump(config, sort_keys=False), "utf-8")
    assert cli("catalog", "shoes", small_demo.catalog_path).exit_code == 0
    manifest = pl.read_csv(small_demo.examples_manifest).with_columns(
        path=pl.lit(str(small_demo.root) + "/") + pl.col("path")
    )
    products = manifest.filter(pl.col("facet") == "product")["tag_id"].unique().sort().to_list()[:SUBSET]
    kept = manifest.filter((pl.col("facet") == "product") & pl.col("tag_id").is_in(products))["path"]
    manifest = manifest.filter(pl.col("path").is_in(kept))  # a few products' photos: seconds, not minutes
    first = tmp_path / "v1" / "examples.csv"  # the same name: the second manifest replaces the first
    first.parent.mkdir()
    manifest.write_csv(first)
    assert cli("examples", "shoes", first).exit_code == 0
    assert cli("run", "shoes").exit_code == 0
    v1 = _tags(home)
    # the facet's second version: a few of its examples dropped; the other facets learn from what they had
    dropped = manifest.filter(pl.col("facet") == facet)["path"].to_list()[:8]
    second = tmp_path / "v2" / "examples.csv"
    second.parent.mkdir()
    manifest.filter(~((pl.col("facet") == facet) & pl.col("path").is_in(dropped))).write_csv(second)
    assert cli("examples", "shoes", second).exit_code == 0
    assert cli("run", "shoes").exit_code == 0
    v2 = _tags(home)
    old, new = (t.filter(pl.col("facet") == facet)["head_version"].unique().to_list() for t in (v1, v2))
    assert len(old) == len(new) == 1 and old != new
    others = v2.filter(pl.col("facet") != facet)

    listed = cli(*commands[0][1:])  # tagsmith heads shoes FACET: both versions, the new one in use
    assert listed.exit_code == 0 and old[0] in listed.output and new[0] in listed.output, listed.output
    restored = cli(*commands[1][1:])  # tagsmith rollback shoes FACET previous
    assert restored.exit_code == 0, restored.output
    assert f"{facet}: {old[0]} restored and pinned (was {new[0]})" in restored.output
    after = _tags(home)
    assert after.filter(pl.col("facet") == facet)["head_version"].unique().to_list() == old
    assert after.filter(pl.col("facet") == facet).equals(v1.filter(pl.col("facet") == facet))
    assert after.filter(pl.col("facet") != facet).equals(others)  # the other facets: untouched
    with DagsterInstance.get() as instance:
        job, metadata = _promotion(instance)
    assert job == "retag" and metadata["pinned"] == {facet: old[0]} and metadata["promoted"][facet] == old[0]
    assert metadata["kept_in_use"] is True  # the job's config: no check ran, the other facets keep their heads
    heads = pl.read_parquet(home / "warehouse" / "shoes" / "head_promotions.parquet")
    assert heads.filter(pl.col("pinned"))["version"].to_list() == old

    assert cli(*commands[2][1:]).exit_code == 0  # tagsmith run shoes: the pin holds
    assert _tags(home).filter(pl.col("facet") == facet)["head_version"].unique().to_list() == old
    with DagsterInstance.get() as instance:
        job, metadata = _promotion(instance)
    assert job == "tag_library" and metadata["not_promoted_pinned"] == {facet: new[0]}
    assert metadata["kept_in_use"] is False
    assert read_pins(home / "libraries" / "shoes") == {facet: old[0]}

    released = cli(*commands[3][1:])  # tagsmith rollback shoes FACET --release
    assert released.exit_code == 0 and f"{facet}: pin on {old[0]} released" in released.output
    assert cli(*commands[4][1:]).exit_code == 0  # tagsmith run shoes: the newest passing candidate is back
    assert _tags(home).filter(pl.col("facet") == facet)["head_version"].unique().to_list() == new

    refused = cli("rollback", "shoes", facet, f"{facet}-000000000000")
    assert refused.exit_code == 1 and refused.output.count("\n") == 1, refused.output
    assert f"restorable versions of {facet}: {new[0]} (in use), {old[0]}" in refused.output
    unpinned = cli("rollback", "shoes", facet, "--release")
    assert unpinned.exit_code == 1 and f"facet '{facet}' of library 'shoes' is not pinned" in unpinned.output
