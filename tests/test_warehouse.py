"""The warehouse resource on its own (resources/warehouse.py): whole-table writes, the embeddings store, the
DuckDB views of a library, named queries with bound parameters. Small hand-made tables, no pipeline run."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.embedding import embeddings_schema, write_embeddings
from resources.tables import frame
from resources.warehouse import Warehouse

MODEL = "efficientnet-lite0@test"
DIM = 8


@pytest.fixture
def wh(tmp_path) -> Warehouse:
    return Warehouse(root=str(tmp_path / "warehouse"), duckdb_path=str(tmp_path / "views.duckdb"))


def unit_vectors(n: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def write_frames(path, media_id: str, stamps: list[float], vectors: np.ndarray) -> None:
    """One time range of a video's frame vectors, as the range task writes it (ts set, unlike photos)."""
    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    table = pa.table(
        {
            "media_id": pa.array([media_id] * len(stamps), pa.string()),
            "ts": pa.array(stamps, pa.float64()),
            "model": pa.array([MODEL] * len(stamps), pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(flat, DIM),
        },
        schema=embeddings_schema(DIM),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


# ----------------------------------------------------------------------------------------------- tables
def test_a_write_replaces_the_whole_table_and_a_failed_write_keeps_the_old_one(wh, monkeypatch):
    never = wh.read("shop", "media")  # never written: an empty frame of the declared columns, not an error
    assert never.height == 0 and never.schema == frame("media").schema and not wh.exists("shop", "media")
    first = frame("media", {"media_id": ["a", "b"], "status": ["ok", "ok"]})
    second = frame("media", {"media_id": ["c"], "status": ["quarantined"], "error": ["empty file"]})
    path = wh.write("shop", "media", first)
    assert path == wh.table_path("shop", "media") and wh.read("shop", "media").equals(first)
    wh.write("shop", "media", second)
    assert wh.read("shop", "media").equals(second)  # replaced, columns and all: never appended to
    assert sorted(p.name for p in wh.library_dir("shop").iterdir()) == ["media.parquet"]  # no temp file left

    def dies_half_way(self, file, *args, **kwargs):  # a writer killed after writing some bytes
        with open(file, "wb") as out:
            out.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", dies_half_way)
    with pytest.raises(OSError, match="disk full"):
        wh.write("shop", "media", first)
    assert wh.read("shop", "media").equals(second)  # readers still see the last whole table


def test_library_names_are_checked_before_they_touch_a_path(wh):
    for bad in ("../etc", "Shop", "a b", "x;DROP", ""):
        with pytest.raises(ValueError, match=r"\[a-z0-9_\]\+"):
            wh.read(bad, "media")
    with pytest.raises(ValueError):
        wh.register_views('x"; ATTACH')


# ------------------------------------------------------------------------------------------- embeddings
def test_embeddings_append_as_parts_and_read_back_in_the_order_asked(wh):
    a, b = unit_vectors(3, seed=1), unit_vectors(2, seed=2)
    out = wh.embeddings_dir("shop", MODEL)
    write_embeddings(str(out / "part-a.parquet"), ["m1", "m2", "m3"], MODEL, a)
    write_embeddings(str(out / "part-b.parquet"), ["m3", "m4"], MODEL, np.vstack([a[2], b[1]]))  # m3 again
    write_frames(wh.video_range_path("shop", MODEL, "v" * 64, 0.0), "v" * 64, [0.0, 1.0], unit_vectors(2, 3))
    assert wh.embedded_ids("shop", MODEL) == {"m1", "m2", "m3", "m4"}  # photos only: frames carry a ts

    ids, matrix = wh.read_embeddings("shop", MODEL, ["m4", "missing", "m1", "m3"])
    assert ids == ["m4", "m1", "m3"]  # the order asked, unknown ids left out, each id once
    assert matrix.dtype == np.float32 and matrix.shape == (3, DIM)
    np.testing.assert_allclose(matrix, np.vstack([b[1], a[0], a[2]]))
    every, all_vectors = wh.read_embeddings("shop", MODEL)
    assert sorted(every) == ["m1", "m2", "m3", "m4"] and all_vectors.shape == (4, DIM)

    other = "open_clip:ViT-B-32@abc/def"  # another backbone: its own folder, nothing shared
    assert wh.embeddings_dir("shop", other) != out and wh.embeddings_dir("shop", other).parent == out.parent
    assert wh.embedded_ids("shop", other) == set()
    ids, matrix = wh.read_embeddings("shop", other, ["m1"])
    assert ids == [] and matrix.shape == (0, 0)
    assert wh.embedded_ids("other_library", MODEL) == set()


def test_frame_embeddings_stream_range_by_range_in_time_order(wh):
    video, neighbour = "v" * 64, "w" * 64
    late, early = unit_vectors(2, seed=4), unit_vectors(3, seed=5)
    write_frames(wh.video_range_path("shop", MODEL, video, 600.0), video, [601.0, 600.0], late)  # unsorted rows
    write_frames(wh.video_range_path("shop", MODEL, video, 0.0), video, [0.0, 1.0, 2.5], early)
    write_frames(wh.video_range_path("shop", MODEL, neighbour, 0.0), neighbour, [0.0], unit_vectors(1, 6))
    ranges = list(wh.iter_frame_embeddings("shop", MODEL, video))
    assert [stamps for stamps, _ in ranges] == [[0.0, 1.0, 2.5], [600.0, 601.0]]
    np.testing.assert_allclose(ranges[0][1], early)
    np.testing.assert_allclose(ranges[1][1], late[::-1])  # sorted by time with their vectors
    assert [s for s, _ in wh.iter_frame_embeddings("shop", MODEL, neighbour)] == [[0.0]]
    assert list(wh.iter_frame_embeddings("shop", "no-such-model", video)) == []
    assert wh.embedded_ids("shop", MODEL) == set()  # frames are not photos


# ---------------------------------------------------------------------------------------------- views
def photo_library(wh: Warehouse, library: str, tags: list[tuple]) -> None:
    """The tables the analyst views join: media, catalog and tags, for photos only."""
    wh.write(library, "media", frame("media", {"media_id": ["m1", "m2"], "uri": ["/p/a.jpg", "/p/b.jpg"]}))
    catalog = pl.DataFrame(
        {
            "facet": ["product", "product"],
            "tag_id": ["aurora-shell", "hydra-500"],
            "name": ["Aurora Shell", "Hydra 500"],
            "aliases": [["Aurora Jacke"], []],
            "identifiers": [["AS-100"], ["H500"]],
        },
        schema={
            "facet": pl.String,
            "tag_id": pl.String,
            "name": pl.String,
            "aliases": pl.List(pl.String),
            "identifiers": pl.List(pl.String),
        },
    )
    wh.write(library, "catalog", frame("catalog", catalog))
    columns = ["media_id", "facet", "tag_id", "score", "status", "head_version"]
    wh.write(library, "tags", frame("tags", pl.DataFrame(tags, schema=columns, orient="row")))


def test_views_of_a_library_without_videos_are_there_and_empty(wh):
    photo_library(wh, "shop", [("m1", "product", "aurora-shell", 0.9, "applied", "v1")])
    write_embeddings(str(wh.embeddings_dir("shop", MODEL) / "part-a.parquet"), ["m1"], MODEL, unit_vectors(1, 7))
    created = wh.register_views("shop")
    assert {"media", "catalog", "tags", "embeddings", "tag_details", "review_queue", "coverage"} <= set(created)
    assert {"video_segments", "frames", "frame_tags", "ocr_text"} <= set(created)  # typed, empty
    assert "quarantine" not in created  # a table never written and with no empty form is simply absent
    with wh.connect() as con:
        for view in ("video_segments", "frames", "frame_tags", "ocr_text"):
            assert con.execute(f'SELECT count(*) FROM "shop".{view}').fetchone() == (0,), view
        columns = {name: kind for name, kind, *_ in con.execute("DESCRIBE shop.video_segments").fetchall()}
        assert columns["start_s"] == "DOUBLE" and columns["tag_id"] == "VARCHAR"
        assert con.execute("SELECT count(*) FROM shop.embeddings").fetchone() == (1,)
        row = con.execute("SELECT uri, name, identifiers FROM shop.tag_details").fetchone()
        assert row == ("/p/a.jpg", "Aurora Shell", ["AS-100"])
    # the segments query joins the empty video tables without a special case
    assert wh.query("shop", "video_segments", {"statuses": ["applied"], "video": ""}).height == 0


def test_ocr_text_view_unites_photo_and_frame_text(wh):
    photo_library(wh, "shop", [])
    schema = {"media_id": pl.String, "ts": pl.Float64, "text": pl.String, "confidence": pl.Float64}
    photo = pl.DataFrame([("m1", None, "AS-100", 0.9)], schema=schema, orient="row")
    wh.write("shop", "ocr_text", frame("ocr_text", photo))
    frame_text = pl.DataFrame([("v1", 3.0, "H500", 0.8)], schema=schema, orient="row")
    wh.write("shop", "frame_text", frame("frame_text", frame_text))
    wh.register_views("shop")
    with wh.connect() as con:
        rows = con.execute("SELECT media_id, ts, text FROM shop.ocr_text ORDER BY media_id").fetchall()
    assert rows == [("m1", None, "AS-100"), ("v1", 3.0, "H500")]


def test_named_queries_bind_parameters_and_see_one_library(wh):
    photo_library(
        wh,
        "shop",
        [("m1", "product", "aurora-shell", 0.9, "applied", "v1"), ("m2", "product", "hydra-500", 0.4, "review", "v1")],
    )
    photo_library(wh, "agency", [("m2", "product", "hydra-500", 0.8, "applied", "v9")])
    wh.register_views("shop")
    wh.register_views("agency")
    applied = wh.query("shop", "export_tags", {"statuses": ["applied"]})
    assert applied.select("uri", "tag_id", "status").rows() == [("/p/a.jpg", "aurora-shell", "applied")]
    both = wh.query("shop", "export_tags", {"statuses": ["applied", "review"]})
    assert both["tag_id"].to_list() == ["aurora-shell", "hydra-500"]
    # a status is a bound value, never SQL: this finds nothing rather than everything
    assert wh.query("shop", "export_tags", {"statuses": ["applied' OR '1'='1"]}).height == 0
    # the same query on the other library sees its rows only
    other = wh.query("agency", "export_tags", {"statuses": ["applied", "review"]})
    assert other.select("tag_id", "head_version").rows() == [("hydra-500", "v9")]
    with pytest.raises(ValueError):
        wh.query("Agency", "export_tags", {"statuses": ["applied"]})


def test_views_are_rebuilt_while_an_analyst_holds_the_shared_file_open(wh):
    """A DuckDB tool holding the shared file (here: a child process, read-only) never makes a run's
    `register_views` fail; the named queries never open that file at all."""
    import subprocess
    import sys

    photo_library(wh, "shop", [("m1", "product", "aurora-shell", 0.9, "applied", "v1")])
    wh.register_views("shop")
    hold = (
        "import sys, time, duckdb; con = duckdb.connect(sys.argv[1], read_only=True); "
        "print(con.sql('SELECT count(*) FROM shop.tags').fetchall()[0][0], flush=True); time.sleep(30)"
    )
    child = subprocess.Popen([sys.executable, "-c", hold, wh.duckdb_path], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "1"
        photo_library(wh, "shop", [("m1", "product", "aurora-shell", 0.9, "applied", "v1"),
                                    ("m2", "product", "hydra-500", 0.8, "applied", "v1")])
        assert "media" in wh.register_views("shop")  # the old file stays the child's; the new one is ours
        assert wh.query("shop", "export_tags", {"statuses": ["applied"]})["tag_id"].sort().to_list() == [
            "aurora-shell", "hydra-500"]
    finally:
        child.kill()
        child.wait()
    import duckdb

    with duckdb.connect(wh.duckdb_path, read_only=True) as con:
        assert con.sql("SELECT count(*) FROM shop.tags").fetchall()[0][0] == 2
