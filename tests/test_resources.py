"""Resources: environments chosen in one function, by configuration only; the model and library stores."""

import pytest

from resources import build_resources
from resources.media_store import LocalMediaStore, S3MediaStore
from resources.ray_runner import InProcessRunner, RayRunner
from resources.s3_media import StoreReader
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
    assert res["media_store"].reader() == StoreReader("http://127.0.0.1:9000")
    assert isinstance(res["vector_store"], QdrantServer) and res["vector_store"].url == "http://qdrant:6333"
    assert res["runner"].address == "ray://head:10001" and res["runner"].show_progress
    inprocess = build_resources({"TAGSMITH_HOME": str(tmp_path), "TAGSMITH_RUNNER": "inprocess"})["runner"]
    assert isinstance(inprocess, InProcessRunner) and inprocess.slots() == 1


def test_secrets_come_in_as_env_vars_never_as_config(tmp_path, monkeypatch):
    from dagster import EnvVar
    from dagster import build_resources as open_resources

    monkeypatch.setenv("TAGSMITH_QDRANT_API_KEY", "s3cret-qdrant-key")
    env = {"TAGSMITH_HOME": str(tmp_path), "TAGSMITH_QDRANT_URL": "http://qdrant:6333"}
    store = build_resources({**env, "TAGSMITH_QDRANT_API_KEY": "s3cret-qdrant-key"})["vector_store"]
    assert isinstance(store.api_key, EnvVar) and store.api_key.env_var_name == "TAGSMITH_QDRANT_API_KEY"
    assert "s3cret-qdrant-key" not in repr(store.model_dump())  # what a run's config and the UI would show
    with open_resources({"vector_store": store}) as opened:  # resolved when the run starts
        assert opened.vector_store.api_key == "s3cret-qdrant-key"
    assert build_resources(env)["vector_store"].api_key is None  # no key set: none asked for


def test_ray_task_resources_and_runtime_env_by_environment(tmp_path):
    from resources.libraries import ConfigError  # the CLI says it in one line

    env = {"TAGSMITH_HOME": str(tmp_path), "TAGSMITH_RAY_NUM_CPUS": "2"}
    runner = build_resources(
        {
            **env,
            "TAGSMITH_RAY_TASK_CPUS": "2",
            "TAGSMITH_RAY_TASK_GPUS": "0.5",
            "TAGSMITH_RAY_RUNTIME_ENV": '{"env_vars": {"PYTHONPATH": "/srv/tagsmith"}}',
        }
    )["runner"]
    assert (runner.num_cpus, runner.cpus_per_task, runner.gpus_per_task) == (2, 2.0, 0.5)
    assert runner.runtime_env == {"env_vars": {"PYTHONPATH": "/srv/tagsmith"}}
    default = build_resources(env)["runner"]
    assert (default.cpus_per_task, default.gpus_per_task, default.runtime_env) == (1.0, 0.0, None)
    with pytest.raises(ConfigError, match="environment: TAGSMITH_RAY_TASK_GPUS must be a number, not 'one'"):
        build_resources({**env, "TAGSMITH_RAY_TASK_GPUS": "one"})
    with pytest.raises(ConfigError, match="TAGSMITH_RAY_RUNTIME_ENV is not JSON"):
        build_resources({**env, "TAGSMITH_RAY_RUNTIME_ENV": "{env_vars: 1}"})


def test_model_store_keeps_heads_per_library_and_version(tmp_path):
    from resources.model_store import ModelStore

    store = ModelStore(root=str(tmp_path))
    path = store.save_head("shop", "product", "product-abc", {"classes": ["a", "b"]})
    assert path == store.head_path("shop", "product", "product-abc") and path.exists()
    assert [p.name for p in path.parent.iterdir()] == ["product-abc.joblib"]  # written whole, no temp file left
    assert store.load_head("shop", "product", "product-abc") == {"classes": ["a", "b"]}
    store.save_head("shop", "product", "product-abc", {"classes": ["c"]})  # the same version again: replaced
    assert store.load_head("shop", "product", "product-abc") == {"classes": ["c"]}
    assert store.head_path("agency", "product", "product-abc") != path  # libraries never share heads
    with pytest.raises(FileNotFoundError, match="head product/product-abc of library 'agency'"):
        store.load_head("agency", "product", "product-abc")
    assert store.backbone_cache_dir() == str(tmp_path / "backbones")
    assert store.finetune_dir("shop", "k1") != store.finetune_dir("agency", "k1")


def test_library_store_creates_lists_and_refuses(tmp_path):
    from resources.libraries import LibraryConfig, LibraryStore

    store = LibraryStore(root=str(tmp_path / "libraries"))
    assert store.names() == []
    store.create(LibraryConfig(name="shop", media="/photos", min_holdout_accuracy=0.3))
    with pytest.raises(FileExistsError, match="'shop' already exists"):
        store.create(LibraryConfig(name="shop", media="/elsewhere"))
    assert store.config("shop").media == "/photos"  # the refused create changed nothing
    store.create(LibraryConfig(name="shop", media="/elsewhere"), exist_ok=True)
    assert store.config("shop").media == "/elsewhere" and store.config("shop").min_holdout_accuracy == 0.6
    (tmp_path / "libraries" / "stray").mkdir()  # a folder without library.yaml is not a library
    assert store.names() == ["shop"]
    with pytest.raises(LookupError, match="'agency'"):
        store.config("agency")
    with pytest.raises(LookupError, match="no catalog"):
        store.catalog_path("shop")
    for bad in ("../shop", "Shop", ""):
        with pytest.raises(ValueError):
            store.dir(bad)

    yaml_catalog, csv_catalog = tmp_path / "c.yaml", tmp_path / "c.csv"
    yaml_catalog.write_text("tags:\n  - {tag_id: a, facet: product}\n  - {tag_id: b, facet: product}\n")
    csv_catalog.write_text("tag_id,facet,name\nx,product,X\ny,product,Y\n")
    store.set_catalog("shop", yaml_catalog)
    store.set_catalog("shop", csv_catalog)  # replaces the YAML one: one catalog per library
    assert store.catalog_path("shop").name == "catalog.csv"
    assert [t.tag_id for t in store.catalog("shop").tags] == ["x", "y"]
    assert sorted(p.name for p in store.dir("shop").glob("catalog.*")) == ["catalog.csv"]
