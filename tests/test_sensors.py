import json
import os
import time
from datetime import UTC, datetime

from dagster import (
    AssetMaterialization,
    DagsterInstance,
    SensorResult,
    build_schedule_context,
    build_sensor_context,
)

from assets_defs.partitions import library_partitions
from pipelines.schedules import nightly_retag
from pipelines.sensors import library_sensor
from resources.libraries import LibraryConfig, LibraryStore
from resources.media_store import LocalMediaStore


def test_sensor_registers_libraries_and_runs_only_on_change(tmp_path):
    """First tick: the library becomes a partition, its listing's baseline is recorded and, never tagged, it runs;
    then nothing new: skipped; a file in a new folder and one copied with a month-old mtime: a run for those two
    (the tick's log and the run's tag say so); a new example manifest: a run; the nightly schedule runs all."""
    media = tmp_path / "media"
    (media / "2026-11").mkdir(parents=True)
    for i in range(20):
        (media / "2026-11" / f"{i}.jpg").write_bytes(b"x")
    libraries = LibraryStore(root=str(tmp_path / "libs"))
    libraries.create(LibraryConfig(name="shop", media=str(media)))
    resources = {"libraries": libraries, "media_store": LocalMediaStore()}
    (tmp_path / "dagster").mkdir()

    def tick(instance, cursor):
        result = library_sensor(build_sensor_context(instance=instance, resources=resources, cursor=cursor))
        assert isinstance(result, SensorResult)
        return result

    with DagsterInstance.local_temp(str(tmp_path / "dagster")) as instance:
        first = tick(instance, None)
        assert [(r.partition_key, r.tags["tagsmith/changed"]) for r in first.run_requests] == [("shop", "never tagged")]
        assert first.dynamic_partitions_requests[0].partition_keys == ["shop"]
        instance.add_dynamic_partitions(library_partitions.name, ["shop"])

        unchanged = tick(instance, first.cursor)
        assert unchanged.run_requests == []
        assert unchanged.skip_reason.skip_message == "no library changed (1 watched)"

        (media / "2026-12").mkdir()
        (media / "2026-12" / "new.jpg").write_bytes(b"y")
        copied = media / "2026-11" / "copied.jpg"
        copied.write_bytes(b"z")
        old = time.time() - 30 * 86400
        os.utime(copied, (old, old))  # `cp -p` keeps the old mtime; the ctime is the copy's
        changed = tick(instance, unchanged.cursor)
        assert [(r.partition_key, r.tags["tagsmith/changed"]) for r in changed.run_requests] == [
            ("shop", "2 new or changed files")
        ]
        assert changed.run_requests[0].run_key != first.run_requests[0].run_key
        assert set(json.loads(changed.cursor)["shop"]["listing"]["dirs"]) == {"", "2026-11", "2026-12"}
        assert tick(instance, changed.cursor).run_requests == []

        (libraries.dir("shop") / "examples").mkdir()
        (libraries.dir("shop") / "examples" / "more.csv").write_text("path,tag_id\n", "utf-8")
        edited = tick(instance, changed.cursor)
        assert [r.tags["tagsmith/changed"] for r in edited.run_requests] == ["examples/more.csv changed"]

        when = datetime(2026, 11, 30, 2, tzinfo=UTC)
        requests = list(nightly_retag(build_schedule_context(instance=instance, scheduled_execution_time=when)))
        assert [r.partition_key for r in requests] == ["shop"]


def test_sensor_reads_an_s3_prefix_after_its_last_key(tmp_path, s3_endpoint):
    import boto3

    from resources.media_store import S3MediaStore

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="brand")
    client.put_object(Bucket="brand", Key="in/2026-12-01/a.jpg", Body=b"x")
    libraries = LibraryStore(root=str(tmp_path / "libs"))
    libraries.create(LibraryConfig(name="cloud", media="s3://brand/in"))
    resources = {"libraries": libraries, "media_store": S3MediaStore(endpoint_url=s3_endpoint)}
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(library_partitions.name, ["cloud"])
        instance.report_runless_asset_event(AssetMaterialization("tags", partition="cloud"))  # tagged before
        first = library_sensor(build_sensor_context(instance=instance, resources=resources))
        assert first.run_requests == [] and first.skip_reason is not None  # a baseline; already tagged
        for i in range(10):
            client.put_object(Bucket="brand", Key=f"in/2026-12-02/{i}.jpg", Body=b"y")
        new = library_sensor(build_sensor_context(instance=instance, resources=resources, cursor=first.cursor))
        assert [r.tags["tagsmith/changed"] for r in new.run_requests] == ["10 new or changed files"]
        assert json.loads(new.cursor)["cloud"]["listing"]["start_after"] == "in/2026-12-02/9.jpg"


def test_event_sensor_registers_events_and_reports_once_the_upload_is_quiet_and_tagged(tmp_path):
    """`cup` (quiet_minutes 0) is reported once the library's tags are newer than its media listing, once per
    listing (run_key); `late` (10 quiet minutes) waits; a file added to `cup` makes it wait for new tags."""
    from dagster import MultiPartitionKey

    from assets_defs.partitions import event_partitions
    from pipelines.sensors import event_report_sensor

    media = tmp_path / "media"
    for folder in ("cup", "late"):
        (media / folder).mkdir(parents=True)
        (media / folder / "a.jpg").write_bytes(b"x")
    old = time.time() - 3600  # uploaded an hour ago
    os.utime(media / "cup" / "a.jpg", (old, old))
    libraries = LibraryStore(root=str(tmp_path / "libs"))
    events = {"cup": {"folder": "cup", "quiet_minutes": 0}, "late": {"folder": "late"}, "gone": {"folder": "gone"}}
    libraries.create(LibraryConfig(name="shop", media=str(media), events=events))
    resources = {"libraries": libraries, "media_store": LocalMediaStore()}
    (tmp_path / "dagster").mkdir()

    def tick(instance, cursor):
        result = event_report_sensor(build_sensor_context(instance=instance, resources=resources, cursor=cursor))
        assert isinstance(result, SensorResult)
        return result

    with DagsterInstance.local_temp(str(tmp_path / "dagster")) as instance:
        first = tick(instance, None)
        assert first.dynamic_partitions_requests[0].partition_keys == ["cup", "late", "gone"]
        assert first.run_requests == []  # the library is not a partition yet, and never tagged
        assert set(json.loads(first.cursor)) == {"shop|cup", "shop|late"}  # `gone` has no folder yet
        instance.add_dynamic_partitions(library_partitions.name, ["shop"])
        instance.add_dynamic_partitions(event_partitions.name, ["cup", "late", "gone"])

        untagged = tick(instance, first.cursor)
        assert (
            untagged.run_requests == [] and "shop|cup (tags older than its media)" in untagged.skip_reason.skip_message
        )

        instance.report_runless_asset_event(AssetMaterialization("tags", partition="shop"))
        tagged = tick(instance, untagged.cursor)
        assert [r.partition_key for r in tagged.run_requests] == [
            MultiPartitionKey({"library": "shop", "event": "cup"})
        ]
        run_key = tagged.run_requests[0].run_key
        assert run_key.startswith("shop|cup|")
        assert tick(instance, tagged.cursor).run_requests[0].run_key == run_key  # the same listing: Dagster skips it

        (media / "cup" / "b.jpg").write_bytes(b"y")  # more photos: wait for tags newer than them
        changed = tick(instance, tagged.cursor)
        assert changed.run_requests == []
        assert (
            json.loads(changed.cursor)["shop|cup"]["first_seen"] > json.loads(tagged.cursor)["shop|cup"]["first_seen"]
        )
        time.sleep(0.01)
        instance.report_runless_asset_event(AssetMaterialization("tags", partition="shop"))
        again = tick(instance, changed.cursor)
        assert [r.run_key for r in again.run_requests] != [run_key] and len(again.run_requests) == 1
