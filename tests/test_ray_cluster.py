"""A real two-node Ray cluster on this machine (`ray start --head`, then `ray start --address`, stopped by
process group): `RayRunner` joins it by address under Dagster's resource lifecycle, hands `runtime_env` to
the workers, and both nodes embed part of a library."""

import os
from collections import Counter

import dagster as dg
import polars as pl
import ray

from benchmarks.ray_nodes import LocalRayCluster, embed_on_cluster
from benchmarks.throughput import write_photos
from ml.backbones import BackboneSpec
from resources import PROJECT_ROOT
from resources.ray_runner import RayRunner


def test_two_nodes_each_embed_part_of_a_library(tmp_path, model_root):
    assert not ray.is_initialized()  # the runner must join the cluster, not a Ray left over in this process
    spec = BackboneSpec(cache_dir=str(model_root), threads=1, batch_size=4)
    spec.build()  # export the ONNX file once before the workers look for it
    (tmp_path / "photos").mkdir()
    items = write_photos(tmp_path / "photos", 48, 320, 240)
    runtime_env = {"env_vars": {"PYTHONPATH": str(PROJECT_ROOT), "TAGSMITH_RAY_PROBE": "from-runtime-env"}}
    cluster = LocalRayCluster(nodes=2, cpus_per_node=1)
    try:
        cluster.start()
        runner = RayRunner(address=cluster.address, runtime_env=runtime_env, cpus_per_task=1)
        with dg.build_resources({"runner": runner}) as resources:
            assert ray.is_initialized()  # setup_for_execution connected
            names = cluster.wait_for_nodes(ray)
            assert sorted(names.values()) == ["node_0", "node_1"]
            assert resources.runner.slots() == 2
            assert resources.runner.map(os.getenv, [("TAGSMITH_RAY_PROBE",)]) == ["from-runtime-env"]
            results, _ = embed_on_cluster(resources.runner, spec, items, 4, tmp_path / "parts")
        assert not ray.is_initialized()  # teardown_after_execution disconnected
    finally:
        cluster.stop()
    assert cluster.process_groups_alive() == []
    per_node = Counter()
    for task in results:
        assert task.pid != os.getpid() and not task.result.failures
        per_node[names[task.node_id]] += task.result.n_embedded
    assert set(per_node) == {"node_0", "node_1"} and all(n > 0 for n in per_node.values()), per_node
    assert sum(per_node.values()) == 48
    parts = pl.read_parquet(tmp_path / "parts")
    assert sorted(parts["media_id"].to_list()) == sorted(i.media_id for i in items)
