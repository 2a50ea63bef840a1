"""Environments are chosen in one function, by configuration only."""

from resources import build_resources
from resources.media_store import LocalMediaStore, S3MediaStore
from resources.ray_runner import InProcessRunner, RayRunner
from resources.vector_store import QdrantLocal, QdrantServer


def test_embedded_defaults_live_under_the_home(tmp_path):
    res = build_resources({"TAGSMITH_HOME": str(tmp_path)})
    assert isinstance(res["media_store"], LocalMediaStore)
    assert isinstance(res["vector_store"], QdrantLocal) and res["vector_store"].path == str(tmp_path / "qdrant")
    assert isinstance(res["runner"], RayRunner) and res["runner"].address is None
    assert not res["runner"].show_progress
    assert res["warehouse"].duckdb_path == str(tmp_path / "tagsmith.duckdb")


def test_scale_out_by_environment_only(tmp_path):
    res = build_resources(
        {
            "TAGSMITH_HOME": str(tmp_path),
            "TAGSMITH_MEDIA_BACKEND": "s3",
            "TAGSMITH_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
            "TAGSMITH_QDRANT_URL": "http://qdrant:6333",
            "TAGSMITH_RAY_ADDRESS": "ray://head:10001",
            "TAGSMITH_PROGRESS": "1",
        }
    )
    assert isinstance(res["media_store"], S3MediaStore)
    assert res["media_store"].s3_endpoint_url() == "http://127.0.0.1:9000"
    assert isinstance(res["vector_store"], QdrantServer) and res["vector_store"].url == "http://qdrant:6333"
    assert res["runner"].address == "ray://head:10001" and res["runner"].show_progress
    inprocess = build_resources({"TAGSMITH_HOME": str(tmp_path), "TAGSMITH_RUNNER": "inprocess"})["runner"]
    assert isinstance(inprocess, InProcessRunner) and inprocess.slots() == 1
