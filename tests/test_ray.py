"""Embedding fanned out on a local Ray: same vectors as in-process, failures reported, never recomputed."""

import io

import numpy as np
import polars as pl
import pytest
from PIL import Image

from ml.backbones import BackboneSpec
from ml.embedding import EmbedItem, embed_chunk
from ml.media import sha256_bytes
from resources.ray_runner import InProcessRunner, RayRunner


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

    runner = RayRunner(num_cpus=2)
    yield runner
    ray.shutdown()


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
