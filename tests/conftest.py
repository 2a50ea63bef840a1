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
