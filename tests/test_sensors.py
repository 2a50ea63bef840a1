from datetime import UTC, datetime

from dagster import DagsterInstance, SkipReason, build_schedule_context, build_sensor_context

from assets_defs.partitions import library_partitions
from pipelines.schedules import nightly_retag
from pipelines.sensors import library_sensor
from resources.libraries import LibraryConfig, LibraryStore
from resources.media_store import LocalMediaStore


def test_sensor_registers_libraries_and_runs_only_on_change(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    (media / "a.jpg").write_bytes(b"x")
    libraries = LibraryStore(root=str(tmp_path / "libs"))
    libraries.create(LibraryConfig(name="shop", media=str(media)))
    resources = {"libraries": libraries, "media_store": LocalMediaStore()}
    (tmp_path / "dagster").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "dagster")) as instance:
        first = library_sensor(build_sensor_context(instance=instance, resources=resources))
        assert [r.partition_key for r in first.run_requests] == ["shop"]
        assert first.dynamic_partitions_requests[0].partition_keys == ["shop"]
        instance.add_dynamic_partitions(library_partitions.name, ["shop"])

        unchanged = library_sensor(build_sensor_context(instance=instance, resources=resources, cursor=first.cursor))
        assert isinstance(unchanged, SkipReason)

        (media / "b.jpg").write_bytes(b"y")
        changed = library_sensor(build_sensor_context(instance=instance, resources=resources, cursor=first.cursor))
        assert [r.partition_key for r in changed.run_requests] == ["shop"]
        assert changed.run_requests[0].run_key != first.run_requests[0].run_key

        when = datetime(2026, 11, 30, 2, tzinfo=UTC)
        requests = list(nightly_retag(build_schedule_context(instance=instance, scheduled_execution_time=when)))
        assert [r.partition_key for r in requests] == ["shop"]
