"""Embedding fanned out on a local Ray: same vectors as in-process, failures reported, never recomputed;
one model per worker process; the resource's lifecycle under Dagster."""

import io
import os
from collections import defaultdict

import numpy as np
import polars as pl
import pytest
from dagster import build_resources
from PIL import Image

from ml.backbones import BackboneSpec, cached_backbone
from ml.embedding import EmbedItem, embed_chunk
from ml.media import sha256_bytes
from resources.ray_runner import InProcessRunner, RayRunner, placed


def _photos(folder, n):
    items = []
    for i in range(n):
        buf = io.BytesIO()
        # seeded noise (Image.effect_noise draws from C rand(), whose state depends on what ran before)
        pixels = np.random.default_rng(i).normal(128, 40 + i, (120, 160 + i)).clip(0, 255).astype(np.uint8)
        Image.fromarray(pixels).convert("RGB").save(buf, "JPEG")
        path = folder / f"p{i}.jpg"
        path.write_bytes(buf.getvalue())
        items.append(EmbedItem(sha256_bytes(buf.getvalue()), str(path)))
    return items


@pytest.fixture(scope="module")
def ray_runner():
    import ray

    assert not ray.is_initialized()
    runner = RayRunner(num_cpus=2)
    yield runner
    runner.disconnect()
    assert not ray.is_initialized()


def test_embedding_on_local_ray_matches_in_process(tmp_path, model_root, ray_runner):
    spec = BackboneSpec(cache_dir=str(model_root), batch_size=4)
    spec.build()  # export the ONNX file once before workers race for it
    items = _photos(tmp_path, 10)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff truncated")
    items.append(EmbedItem("0" * 64, str(bad)))
    calls = [
        (spec, items[:6], str(tmp_path / "out" / "a.parquet")),
        (spec, items[6:], str(tmp_path / "out" / "b.parquet")),
    ]
    progress = []
    results = ray_runner.map(embed_chunk, calls, on_result=lambda done, total: progress.append((done, total)))
    assert progress[-1] == (2, 2)
    assert sum(r.n_embedded for r in results) == 10
    assert [f["uri"] for r in results for f in r.failures] == [str(bad)]
    on_ray = pl.read_parquet(tmp_path / "out").sort("media_id")
    local = InProcessRunner().map(embed_chunk, [(spec, items[:10], str(tmp_path / "local.parquet"))])[0]
    assert local.n_embedded == 10
    in_process = pl.read_parquet(tmp_path / "local.parquet").sort("media_id")
    assert on_ray["media_id"].to_list() == in_process["media_id"].to_list()
    a = np.stack(on_ray["vector"].to_numpy())
    b = np.stack(in_process["vector"].to_numpy())
    assert np.allclose(a, b, atol=1e-5)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_a_failing_task_is_raised_not_swallowed(tmp_path, ray_runner):
    spec = BackboneSpec(name="no-such-backbone")
    item = EmbedItem("0" * 64, str(tmp_path / "x.jpg"))
    with pytest.raises(Exception, match="unknown backbone 'no-such-backbone'"):
        RayRunner(num_cpus=2, max_retries=0).map(embed_chunk, [(spec, [item], str(tmp_path / "o.parquet"))])


def test_each_worker_process_builds_its_model_once(model_root, ray_runner):
    def model_token(spec: BackboneSpec) -> str:
        """A token stamped on the backbone object the first time a task sees it: a rebuilt model has none."""
        import uuid

        backbone = cached_backbone(spec)
        if not hasattr(backbone, "probe_token"):
            backbone.probe_token = uuid.uuid4().hex
        return backbone.probe_token

    spec = BackboneSpec(cache_dir=str(model_root), batch_size=4)
    spec.build()
    tasks = ray_runner.map(placed, [(model_token, spec)] * 8)
    models_per_pid = defaultdict(set)
    for task in tasks:
        assert task.pid != os.getpid() and task.node_id != "local"  # ran in a Ray worker
        models_per_pid[task.pid].add(task.result)
    assert all(len(models) == 1 for models in models_per_pid.values()), models_per_pid
    assert len(models_per_pid) < len(tasks)  # workers ran several tasks each, on the model they built first


def test_a_ray_someone_else_started_outlives_the_resource(ray_runner):
    import ray

    ray_runner.connect()
    with build_resources({"runner": RayRunner(num_cpus=2, cpus_per_task=0.5, gpus_per_task=0)}) as resources:
        assert resources.runner.slots() == 4  # 2 CPUs / 0.5 per task
        assert resources.runner.map(placed, [(os.getenv, "HOME")])[0].pid != os.getpid()
    assert ray.is_initialized()  # not this resource's Ray: the fixture shuts it down
