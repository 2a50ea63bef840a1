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
    from resources.table_io import TableIOManager
    from resources.vector_store import QdrantLocal
    from resources.warehouse import Warehouse

    warehouse = Warehouse(root=str(tmp_path / "warehouse"), duckdb_path=str(tmp_path / "t.duckdb"))
    return {
        "libraries": LibraryStore(root=str(tmp_path / "libraries")),
        "media_store": LocalMediaStore(root=str(tmp_path / "media")),
        "warehouse": warehouse,
        "tables": TableIOManager(warehouse=warehouse),
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

    def invoke(*args, input=None):
        return runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)

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


@pytest.fixture(scope="session")
def pipeline_assets() -> list:
    """Every library-partitioned asset of the Definitions the CLI and `dagster dev` load (what `tag_library`
    runs): a test that runs the whole pipeline takes this list, so an asset added to `build_definitions()` is in
    it without a test changing. Event reports (partitioned by library and event) have their own job."""
    from assets_defs.partitions import library_partitions
    from pipelines.definitions import build_definitions

    return [a for a in build_definitions().assets if a.partitions_def == library_partitions]


@pytest.fixture(scope="session")
def run_library():
    """run_library(assets, res, name, instance=None, raise_on_error=True): `assets` materialized for library `name`
    (added as a partition first), on an ephemeral instance unless one is given (a run that follows another)."""
    from dagster import DagsterInstance, materialize

    from assets_defs.partitions import library_partitions

    def run(assets, res, name, instance=None, raise_on_error=True):
        if instance is None:
            with DagsterInstance.ephemeral() as own:
                return run(assets, res, name, own, raise_on_error)
        instance.add_dynamic_partitions(library_partitions.name, [name])
        return materialize(assets, resources=res, partition_key=name, instance=instance, raise_on_error=raise_on_error)

    return run


@pytest.fixture(scope="session")
def add_library():
    """add_library(res, demo, name="shop", **settings): the small demo's catalog and examples as library `name`
    over its uploads, with the settings that keep a pipeline test short (overridable); returns the name."""
    from resources.libraries import LibraryConfig

    def add(res, demo, name="shop", **overrides):
        # fine-tuning (on by default) has its own test (test_finetune_pipeline.py); here it would only cost minutes
        settings = {
            "head_strategies": ["logreg", "prototype"],
            "min_holdout_accuracy": 0.2,
            "ocr": "off",
            "finetune": {"budget_min": 0},
            **overrides,
        }
        config = LibraryConfig(name=name, media=str(demo.uploads_dir), **settings)
        res["libraries"].create(config, exist_ok=True)
        res["libraries"].set_catalog(name, demo.catalog_path)
        res["libraries"].add_examples(name, demo.examples_manifest)
        return name

    return add


@pytest.fixture(scope="session")
def tagged_demo(small_demo, model_root, tmp_path_factory, pipeline_assets, run_library):
    """The small demo's examples and uploads as library `demo`, run through the whole pipeline once a session:
    the heads tag their own example photos too, so every product and colourway is on some photo. Its `env`
    (TAGSMITH_HOME), `res` (resources, the session's model store), `used_tags` (applied, review or manual)."""
    from types import SimpleNamespace

    import polars as pl

    from resources import build_resources
    from resources.libraries import LibraryConfig
    from resources.model_store import ModelStore

    home = tmp_path_factory.mktemp("search_home")
    env = {"TAGSMITH_HOME": str(home), "TAGSMITH_RUNNER": "inprocess"}
    res = {**build_resources(env), "model_store": ModelStore(root=str(model_root))}
    config = LibraryConfig(
        name="demo", media=str(small_demo.root), head_strategies=["logreg"], min_holdout_accuracy=0.0, ocr="off",
        keypoints=False, views=False, finetune={"budget_min": 0},
    )  # fmt: skip
    res["libraries"].create(config)
    res["libraries"].set_catalog("demo", small_demo.catalog_path)
    res["libraries"].add_examples("demo", small_demo.examples_manifest)
    result = run_library(pipeline_assets, res, "demo", raise_on_error=False)
    assert result.success
    tags = res["warehouse"].read("demo", "tags").filter(pl.col("status").is_in(["applied", "review", "manual"]))
    return SimpleNamespace(env=env, res=res, used_tags=tags)


@pytest.fixture(scope="session")
def same_as_run():
    """same_as_run(tagger, res, library, photos): each photo (media rows) tagged now by `tagger`
    (tagsmith/tag_now.py) has the rows the run's `tags` table holds for it: same media_id (sha256 of its bytes),
    facet, tag, status, head version and box, scores within 1e-4; returns how many rows were compared."""
    import polars as pl

    def compare(tagger, res, library: str, photos) -> int:
        table = res["warehouse"].read(library, "tags")
        key = ("media_id", "facet", "tag_id", "status", "head_version", "box")
        compared = 0
        for media_id, uri in photos.select("media_id", "uri").iter_rows():
            now = tagger.tagged(uri)
            assert now["media_id"] == media_id
            run = table.filter(pl.col("media_id") == media_id).sort("facet", "tag_id").to_dicts()
            rows = sorted(now["tags"], key=lambda r: (r["facet"], r["tag_id"]))
            assert [tuple(r[k] for k in key) for r in rows] == [tuple(r[k] for k in key) for r in run], uri
            for mine, theirs in zip(rows, run, strict=True):
                assert mine["score"] == pytest.approx(theirs["score"], abs=1e-4)
                assert mine["name"] and mine["threshold"] is not None
            compared += len(run)
        return compared

    return compare


@pytest.fixture(scope="session")
def asset_metadata():
    """asset_metadata(result, key): the metadata values of the asset's last materialization in a run, or None."""

    def metadata(result, key):
        mats = [m for m in result.asset_materializations_for_node(key) if m.asset_key.to_user_string() == key]
        return {k: v.value for k, v in mats[-1].metadata.items()} if mats else None

    return metadata


@pytest.fixture(scope="session")
def write_video():
    """write_video(path, photos, seconds_each=4.4, fps=5): an H.264 video showing each photo for `seconds_each`
    seconds (hard cuts between them, off the 1 s grid)."""
    import numpy as np
    from PIL import Image

    from ml.video import write_h264

    def write(path, photos, seconds_each=4.4, fps=5):
        frames = [np.asarray(Image.open(photo).convert("RGB").resize((320, 320))) for photo in photos]
        write_h264(str(path), (f for f in frames for _ in range(round(seconds_each * fps))), fps)

    return write


@pytest.fixture
def media_with_video(small_demo, tmp_path, write_video):
    """A media folder of six demo uploads and event.mp4 showing the first two: (folder, photos)."""
    import shutil

    folder = tmp_path / "media"
    folder.mkdir()
    photos = sorted(small_demo.uploads_dir.glob("IMG_00*.jpg"))[:6]
    for photo in photos:
        shutil.copy(photo, folder / photo.name)
    write_video(folder / "event.mp4", photos[:2])
    return folder, photos


@pytest.fixture(scope="session")
def read_csv():
    """read_csv(path) -> (header, rows as dicts): the truth and manifest files the demo generators write."""
    import csv

    def read(path):
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            return list(reader.fieldnames or []), list(reader)

    return read


@pytest.fixture(scope="session")
def tree_digest():
    """tree_digest(root): one hash over every file's relative path and bytes (equal: byte-identical trees)."""
    import hashlib

    def digest(root):
        h = hashlib.sha256()
        for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
            h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
        return h.hexdigest()

    return digest


API_NAMES = {
    "lifestyle": {"names": {"fr": "Mise en scène", "de": "Stimmungsbild", "ja": "ライフスタイル", "ar": "صُورَة حَيَاتِيَّة"}},
    "packshot": {"name_fr": "Photo détourée", "name_ja": "白背景写真"},
}


@pytest.fixture(scope="session")
def api_home(tmp_path_factory, small_demo):
    """Two libraries that ran through Dagster under one TAGSMITH_HOME, for the HTTP API's tests: `alpha` over the
    small demo's uploads, `beta` over the same file names holding other bytes (the photos mirrored) with the
    same catalog and tag ids, so any of alpha's media_ids in an answer to beta's token (or the reverse) is a leak.
    Settings keep the runs short (no fine-tuning, OCR, keypoints or crops). Yields the home's path; TAGSMITH_HOME
    and DAGSTER_HOME point at it until the session ends."""
    import shutil

    import yaml
    from PIL import Image, ImageOps

    from resources import build_resources
    from resources.libraries import LibraryConfig
    from tagsmith import service

    root = tmp_path_factory.mktemp("api")
    saved = {k: os.environ.get(k) for k in ("TAGSMITH_HOME", "DAGSTER_HOME", "TAGSMITH_RUNNER")}
    os.environ.update(TAGSMITH_HOME=str(root / "home"), DAGSTER_HOME=str(root / "home" / "dagster_home"),
                      TAGSMITH_RUNNER="inprocess")  # fmt: skip
    alpha, beta = root / "media" / "alpha", root / "media" / "beta"
    shutil.copytree(small_demo.uploads_dir, alpha)
    shutil.copytree(small_demo.uploads_dir, beta)
    for path in sorted(beta.glob("*.jpg")):
        try:
            with Image.open(path) as image:
                mirrored = ImageOps.mirror(image.convert("RGB"))
        except OSError:  # the demo's broken files stay broken in both
            continue
        mirrored.save(path, quality=92)
    res = build_resources()
    settings = {"head_strategies": ["logreg", "prototype"], "min_holdout_accuracy": 0.2, "ocr": "off",
                "keypoints": False, "views": False, "finetune": {"budget_min": 0}}  # fmt: skip
    # alpha names two tags in French, German, Japanese and Arabic (beta does not: its token must not find them)
    catalog = yaml.safe_load(small_demo.catalog_path.read_text("utf-8"))
    for tag in catalog["tags"]:
        tag.update(API_NAMES.get(tag["tag_id"], {}))
    alpha_catalog = root / "alpha_catalog.yaml"
    alpha_catalog.write_text(yaml.safe_dump(catalog, allow_unicode=True), "utf-8")
    for name, media in (("alpha", alpha), ("beta", beta)):
        res["libraries"].create(LibraryConfig(name=name, media=str(media), **settings))
        res["libraries"].set_catalog(name, alpha_catalog if name == "alpha" else small_demo.catalog_path)
        res["libraries"].add_examples(name, small_demo.examples_manifest)
        outcome = service.run_library(name)
        assert outcome.success, outcome.failures
    yield root / "home"
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
