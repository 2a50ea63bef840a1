from pathlib import Path

import yaml
from dagster import AssetCheckKey, AssetKey

from pipelines.definitions import build_definitions


def test_definitions_load_and_every_job_resolves(tmp_path):
    defs = build_definitions({"TAGSMITH_HOME": str(tmp_path)})
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {
        "media",
        "catalog",
        "examples",
        "embeddings",
        "heads",
        "promoted_heads",
        "tags",
        "vector_index",
        "warehouse_views",
    } <= keys
    for name in ("tag_library", "retrain_heads", "retag"):
        job = defs.resolve_job_def(name)
        assert job.partitions_def is not None
    assert defs.resolve_schedule_def("nightly_retag").cron_schedule == "0 2 * * *"
    assert defs.resolve_sensor_def("library_sensor")
    # the ML gate: a blocking check on the evaluation report, which promotion (and so tagging) waits for
    check = AssetCheckKey(AssetKey("evaluation_report"), "holdout_accuracy_bar")
    assert check in graph.asset_check_keys
    spec = graph.get_check_spec(check)
    assert spec.blocking and spec.asset_key == AssetKey("evaluation_report")
    assert AssetKey("evaluation_report") in graph.get(AssetKey("promoted_heads")).parent_keys
    assert AssetKey("promoted_heads") in graph.get(AssetKey("tags")).parent_keys


def test_workspace_points_at_the_definitions():
    workspace = yaml.safe_load((Path(__file__).parents[1] / "workspace.yaml").read_text())
    target = workspace["load_from"][0]["python_module"]
    assert (target["module_name"], target["attribute"]) == ("pipelines.definitions", "defs")


def test_ml_never_imports_dagster():
    root = Path(__file__).parents[1] / "ml"
    offenders = [str(p) for p in root.rglob("*.py") if "dagster" in p.read_text() or "import ray" in p.read_text()]
    assert offenders == []


def test_dagster_yaml_queues_one_run_per_library_and_monitors_runs(tmp_path):
    """Runs the daemon launches (sensor, schedule, UI, backfill) wait in the queue while their library runs."""
    import shutil

    from dagster import DagsterInstance

    shutil.copy(Path(__file__).parents[1] / "dagster.yaml", tmp_path / "dagster.yaml")
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        queue = instance.get_concurrency_config().run_queue_config
        assert {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in (
            queue.tag_concurrency_limits
        )
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_monitoring_enabled
