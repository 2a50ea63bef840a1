"""The vector store resource on its own (resources/vector_store.py), in Qdrant local mode: one collection per
library, upsert by stable ids, search, delete, a backbone switch, and libraries that never see each other."""

from __future__ import annotations

import numpy as np
import pytest

from resources.vector_store import QdrantLocal, collection_name, point_id


@pytest.fixture
def store(tmp_path) -> QdrantLocal:
    return QdrantLocal(path=str(tmp_path / "qdrant"))


def unit(rows: list[list[float]]) -> np.ndarray:
    vectors = np.asarray(rows, np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def payloads(ids: list[str], library: str) -> list[dict]:
    return [{"media_id": m, "uri": f"/{library}/{m}.jpg"} for m in ids]


AXES = unit([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]])


def test_point_ids_are_stable_uuids_apart_for_photos_and_frames():
    assert point_id("m1") == point_id("m1") != point_id("m2")
    assert point_id("m1", 3.0) not in (point_id("m1"), point_id("m1", 4.0))
    assert len(point_id("m1")) == 36  # a UUID, which Qdrant takes as a point id
    assert collection_name("shop") == "tagsmith_shop" != collection_name("agency")


def test_upsert_search_and_delete_within_one_library(store):
    ids = ["m1", "m2", "m3"]
    assert store.count("shop") == 0
    assert store.upsert("shop", ids, AXES, payloads(ids, "shop")) == 3
    assert store.count("shop") == 3
    hits = store.search("shop", unit([[0.1, 0.9, 0.2, 0]])[0], limit=2)
    assert [h["media_id"] for h in hits] == ["m2", "m3"]  # nearest first, by cosine
    assert hits[0]["uri"] == "/shop/m2.jpg" and hits[0]["score"] > hits[1]["score"]
    own = store.search("shop", AXES[0], limit=1)[0]
    assert own["media_id"] == "m1" and own["score"] == pytest.approx(1.0, abs=1e-5)

    # the same photos again (a rerun): replaced in place, never duplicated
    store.upsert("shop", ids, AXES, payloads(ids, "shop"))
    assert store.count("shop") == 3

    store.delete("shop", ["m1", "never-indexed"])
    assert store.count("shop") == 2
    assert "m1" not in {h["media_id"] for h in store.search("shop", AXES[0], limit=10)}
    store.delete("shop", [])  # nothing to remove: no error
    store.delete("agency", ["m2"])  # a library without a collection: no error
    assert store.count("shop") == 2


def test_libraries_never_see_each_others_vectors(store):
    store.upsert("shop", ["m1", "m2"], AXES[:2], payloads(["m1", "m2"], "shop"))
    store.upsert("agency", ["m1"], AXES[2:], payloads(["m1"], "agency"))  # the same media id elsewhere
    assert (store.count("shop"), store.count("agency")) == (2, 1)
    hits = store.search("agency", AXES[0], limit=10)
    assert [h["uri"] for h in hits] == ["/agency/m1.jpg"]  # the other library's nearer vector is not there
    store.delete("agency", ["m1"])
    assert (store.count("shop"), store.count("agency")) == (2, 0)
    store.drop("shop")
    assert store.count("shop") == 0
    with pytest.raises(LookupError, match="run the pipeline first"):
        store.search("shop", AXES[0])
    store.drop("shop")  # dropping what is gone: no error


def test_a_new_backbone_replaces_the_old_vectors_and_batches_are_cut(store):
    store.upsert("shop", ["m1", "m2", "m3"], AXES, payloads(["m1", "m2", "m3"], "shop"))
    wide = np.random.default_rng(0).normal(size=(1100, 6)).astype(np.float32)  # over two 512-point batches
    ids = [f"p{i}" for i in range(1100)]
    assert store.upsert("shop", ids, wide, payloads(ids, "shop")) == 1100
    assert store.count("shop") == 1100  # 4-d vectors cannot be compared with 6-d ones: they went
    hit = store.search("shop", wide[1099], limit=1)[0]
    assert hit["media_id"] == "p1099" and hit["score"] == pytest.approx(1.0, abs=1e-5)


def test_a_second_store_on_the_same_folder_sees_what_the_first_wrote(store, tmp_path):
    """Every call opens and closes its client: the next process (or resource) finds the points on disk."""
    store.upsert("shop", ["m1"], AXES[:1], payloads(["m1"], "shop"))
    again = QdrantLocal(path=str(tmp_path / "qdrant"))
    assert again.count("shop") == 1 and again.search("shop", AXES[0], limit=1)[0]["media_id"] == "m1"


def test_a_reader_holding_the_local_store_makes_the_writer_wait_not_fail(tmp_path):
    """Local mode opens a library's folder for one client at a time: another process's `similar` (here: a
    child process holding the folder 1.5 s) delays an upsert, which then goes through; past the wait, the
    error is one line naming the library."""
    import logging
    import subprocess
    import sys
    import time
    from pathlib import Path

    from resources.vector_store import VectorStoreBusy

    said: list[str] = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = lambda record: said.append(record.getMessage())
    logging.getLogger("resources.vector_store").addHandler(handler)

    store = QdrantLocal(path=str(tmp_path / "qdrant"), busy_wait_s=60)
    store.upsert("shop", ["m1"], AXES[:1], payloads(["m1"], "shop"))
    hold = (
        "import sys, time; from qdrant_client import QdrantClient; c = QdrantClient(path=sys.argv[1]); "
        "print('open', flush=True); time.sleep(float(sys.argv[2])); c.close()"
    )
    root = str(Path(__file__).resolve().parents[1])
    child = subprocess.Popen([sys.executable, "-c", hold, str(tmp_path / "qdrant" / "shop"), "1.5"],
                             stdout=subprocess.PIPE, text=True, cwd=root)
    assert child.stdout.readline().strip() == "open"
    try:
        assert store.upsert("shop", ["m2"], AXES[1:2], payloads(["m2"], "shop")) == 1
    finally:
        logging.getLogger("resources.vector_store").removeHandler(handler)
    child.wait(timeout=60)
    assert store.count("shop") == 2
    assert len([m for m in said if "open elsewhere" in m]) == 1  # said once, in one line

    child = subprocess.Popen([sys.executable, "-c", hold, str(tmp_path / "qdrant" / "shop"), "5"],
                             stdout=subprocess.PIPE, text=True, cwd=root)
    assert child.stdout.readline().strip() == "open"
    impatient = QdrantLocal(path=str(tmp_path / "qdrant"), busy_wait_s=0.5)
    started = time.monotonic()
    with pytest.raises(VectorStoreBusy, match="vector index of 'shop' stayed open elsewhere"):
        impatient.search("shop", AXES[0])
    child.wait(timeout=60)
    assert time.monotonic() - started >= 0.5
