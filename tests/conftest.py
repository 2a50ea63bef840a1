import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory) -> "object":
    """A small generated demo library (128 px photos) shared by the pipeline tests."""
    from tagsmith.demo import generate_demo_library

    return generate_demo_library(
        tmp_path_factory.mktemp("demo") / "lib",
        seed=1,
        examples_per_product=4,
        uploads_per_product=1,
        image_size=128,
        videos=0,
    )


@pytest.fixture(scope="session")
def model_root(tmp_path_factory) -> Path:
    """One model store per session, so the ONNX export of the default backbone happens once."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture
def local_resources(tmp_path, model_root):
    """The embedded-default resources under a temporary home, with the in-process task runner."""
    from resources.libraries import LibraryStore
    from resources.media_store import LocalMediaStore
    from resources.model_store import ModelStore
    from resources.ray_runner import InProcessRunner
    from resources.vector_store import QdrantLocal
    from resources.warehouse import Warehouse

    return {
        "libraries": LibraryStore(root=str(tmp_path / "libraries")),
        "media_store": LocalMediaStore(root=str(tmp_path / "media")),
        "warehouse": Warehouse(root=str(tmp_path / "warehouse"), duckdb_path=str(tmp_path / "t.duckdb")),
        "vector_store": QdrantLocal(path=str(tmp_path / "qdrant")),
        "runner": InProcessRunner(),
        "model_store": ModelStore(root=str(model_root)),
    }


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """`tagsmith ...` in-process (typer's CliRunner) under a temporary home, with the in-process task runner."""
    from typer.testing import CliRunner

    from tagsmith.cli import app

    monkeypatch.setenv("TAGSMITH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster_home"))
    monkeypatch.setenv("TAGSMITH_RUNNER", "inprocess")
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture
def s3_endpoint(monkeypatch):
    """moto's server mode on 127.0.0.1 (real S3 over HTTP), emptied first: its buckets live in the process."""
    import logging

    import requests
    from moto.server import ThreadedMotoServer

    # the server thread's request log would go to whatever stream the CLI's logging was bound to
    monkeypatch.setattr(logging.getLogger("werkzeug"), "level", logging.ERROR)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    requests.post(f"{endpoint}/moto-api/reset", timeout=10)
    yield endpoint
    server.stop()
