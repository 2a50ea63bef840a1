"""The table registry (resources/tables.py) and what is derived from it: the checked writes, the typed empty
reads, the views by glob, the SQL reference, and the asset graph's one spec per table."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey

from pipelines.definitions import build_definitions
from resources.tables import TABLES, asset_path, frame, markdown, table_of, writers
from resources.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def wh(tmp_path) -> Warehouse:
    return Warehouse(root=str(tmp_path / "warehouse"), duckdb_path=str(tmp_path / "views.duckdb"))


def test_the_sql_reference_is_generated_from_the_registry():
    on_disk = (ROOT / "sql" / "TABLES.md").read_text(encoding="utf-8")
    assert on_disk == markdown(), "sql/TABLES.md is stale: run `python -m resources.tables`"
    for name, spec in TABLES.items():
        assert (f"## {name}\n" in on_disk) == spec.view


def test_every_table_is_an_asset_of_the_step_that_writes_it():
    graph = build_definitions().get_repository_def().asset_graph
    keys = graph.get_all_asset_keys()
    for step, parts in writers().items():
        step_def = graph.assets_def_for_key(AssetKey(step))
        for part in parts:
            key = AssetKey(asset_path(part))
            assert key in keys, f"{part}: no asset {key.to_user_string()}"
            assert key in step_def.keys, f"{part} is not written by the step {step}"
    # quarantine's parts sit under one folder of the asset catalog, one per stage, each with its writer
    quarantine = {k.path[1] for k in keys if k.path[0] == "quarantine"}
    assert quarantine == {"media", "examples", "embeddings", "video"}
    # the views depend on every table they read, so the UI shows who reads `quarantine` and `heads`
    views = graph.get(AssetKey("warehouse_views")).parent_keys
    assert {AssetKey(["quarantine", "video"]), AssetKey("head_versions"), AssetKey("head_promotions")} <= views


def test_writes_are_checked_against_the_declared_columns(wh):
    with pytest.raises(ValueError, match=r"not declared \['colour'\]"):
        wh.write("shop", "tags", frame("tags").with_columns(colour=pl.lit("red")))
    with pytest.raises(ValueError, match=r"missing \['score'"):
        wh.write("shop", "tags", frame("tags").drop("score"))
    with pytest.raises(KeyError, match="no table 'tag' is declared"):
        wh.write("shop", "tag", frame("tags"))
    with pytest.raises(ValueError, match="read from other files"):
        wh.write("shop", "quarantine", frame("quarantine"))  # a stage writes its part, never the union
    written = frame("tags", {"media_id": ["m1"], "score": [1]})  # an int where a float is declared: cast
    wh.write("shop", "tags", written)
    assert wh.read("shop", "tags").schema == table_of("tags").columns


def test_tables_no_run_wrote_read_as_empty_typed_frames(wh):
    for name, spec in TABLES.items():
        empty = wh.read("shop", name)
        assert empty.height == 0 and dict(empty.schema) == spec.columns, name
        assert not wh.exists("shop", name)


def test_heads_is_the_versions_with_their_promotions(wh):
    versions = frame("head_versions", {"facet": ["product", "product"], "version": ["v1", "v2"],
                                       "accuracy": [0.8, 0.9]})
    wh.write("shop", "head_versions", versions)
    heads = wh.read("shop", "heads").sort("version")
    assert heads["promoted"].to_list() == [False, False] and heads["promoted_at"].null_count() == 2
    wh.write("shop", "head_promotions", frame("head_promotions", {"facet": ["product"], "version": ["v2"],
                                                                  "promoted": [True], "promoted_at": ["t1"]}))
    heads = wh.read("shop", "heads").sort("version")
    assert heads.select("version", "promoted", "promoted_at").rows() == [("v1", False, None), ("v2", True, "t1")]
    assert heads.schema == frame("heads").schema


def test_the_shared_views_read_parts_by_glob_and_see_a_part_added_later(wh):
    def part(stage: str, uri: str) -> None:
        rows = {"uri": [uri], "reason": ["empty file"], "stage": [stage], "seen_at": ["t"]}
        wh.write("lib", f"quarantine_{stage}", frame(f"quarantine_{stage}", rows))

    part("media", "/m/a.jpg")
    wh.write("lib", "ocr_text", frame("ocr_text", {"media_id": ["m1"], "text": ["AS-100"]}))  # no frame_text part
    assert {"quarantine", "ocr_text"} <= set(wh.register_views("lib"))
    part("video", "/m/v.mp4")  # a stage that ran after the views were made
    with wh.connect() as con:
        uris = [u for (u,) in con.execute("SELECT uri FROM lib.quarantine ORDER BY uri").fetchall()]
        ddl = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'quarantine'").fetchone()[0]
    assert uris == ["/m/a.jpg", "/m/v.mp4"]
    assert "quarantine_*.parquet" in ddl and "union_by_name" in ddl.lower()
    # the per-call sandbox lists exact files instead (its allowed_paths): both parts, nothing else
    assert [Path(f).name for f in wh.view_sources("lib")["quarantine"]] == [
        "quarantine_media.parquet", "quarantine_video.parquet"
    ]


def test_a_file_written_before_a_column_was_declared_reads_with_it_null(wh):
    older = frame("tags", {"media_id": ["m1"], "facet": ["product"], "tag_id": ["a"]}).drop("box")
    path = wh.table_path("shop", "tags")
    path.parent.mkdir(parents=True)
    older.write_parquet(path)  # as a run before `box` existed left it
    read = wh.read("shop", "tags")
    assert read.schema == frame("tags").schema and read["box"].to_list() == [None]
    with pytest.raises(ValueError, match=r"missing \['box'\]"):
        wh.write("shop", "tags", older)  # writers must give every declared column
