"""The incremental cache the per-photo stages share (assets_defs/photo_runs.py): which photos and examples are
still to do, and running them in chunks on the task runner. Small hand-made tables, no pipeline run."""

from __future__ import annotations

import logging

import pytest

from assets_defs.photo_runs import items_to_embed, missing, run_missing
from ml.embedding import EmbedItem
from resources.ray_runner import InProcessRunner
from resources.s3_media import StoreReader
from resources.tables import frame
from resources.warehouse import Warehouse


class Context:
    """What run_missing reads of a Dagster context: its log."""

    log = logging.getLogger("test_photo_runs")


@pytest.fixture
def wh(tmp_path) -> Warehouse:
    return Warehouse(root=str(tmp_path / "warehouse"), duckdb_path=str(tmp_path / "views.duckdb"))


def test_items_are_usable_photos_then_examples_once_each(wh):
    assert items_to_embed(wh, "shop") == []  # a library nothing was read for yet
    wh.write(
        "shop",
        "media",
        frame(
            "media",
            {
                "media_id": ["p1", "p2", "v1", "p3"],
                "uri": ["/m/p1.jpg", "/m/p2.jpg", "/m/v1.mp4", "/m/p3.jpg"],
                "status": ["ok", "quarantined", "ok", "ok"],
                "kind": ["image", "image", "video", "image"],
            }
        ),
    )
    wh.write("shop", "examples", frame("examples", {"media_id": ["e1", "p3"], "uri": ["/x/e1.jpg", "/x/p3.jpg"]}))
    assert items_to_embed(wh, "shop") == [
        EmbedItem("p1", "/m/p1.jpg"),
        EmbedItem("p3", "/m/p3.jpg"),  # the library's copy, not the example's
        EmbedItem("e1", "/x/e1.jpg"),
    ]


def test_missing_keeps_the_order_of_what_is_not_done():
    items = [EmbedItem(f"m{i}", f"/m/{i}.jpg") for i in range(5)]
    assert missing(items, {"m1", "m3", "gone"}) == [items[0], items[2], items[4]]
    assert missing(items, set()) == items


def test_run_missing_sends_chunks_of_id_and_uri_with_the_spec_and_reader():
    calls = []

    def task(spec, chunk, reader):
        calls.append((spec, chunk, reader))
        return len(chunk)

    todo = [EmbedItem(f"m{i}", f"/m/{i}.jpg") for i in range(5)]
    results = run_missing(Context(), InProcessRunner(), task, "spec-1", todo, 2, StoreReader("http://s3"), "test")
    assert results == [2, 2, 1]
    assert [c[1] for c in calls] == [
        [("m0", "/m/0.jpg"), ("m1", "/m/1.jpg")],
        [("m2", "/m/2.jpg"), ("m3", "/m/3.jpg")],
        [("m4", "/m/4.jpg")],
    ]
    assert {(c[0], c[2]) for c in calls} == {("spec-1", StoreReader("http://s3"))}
    assert run_missing(Context(), InProcessRunner(), task, "spec-1", [], 2, StoreReader(), "test") == []
