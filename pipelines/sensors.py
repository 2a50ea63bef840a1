"""Sensors: register libraries as partitions and run a library when its media or training inputs change (at a cost
that follows the change: resources/media_changes.py); register events and run an event's sponsor report once its
upload is over and tagged."""

import hashlib
import json
import time
from datetime import datetime

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DefaultSensorStatus,
    MultiPartitionKey,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from assets_defs.partitions import event_partitions, library_partitions
from pipelines.jobs import sponsor_report_job, tag_library_job
from resources.events import event_location
from resources.libraries import ConfigError, LibraryConfig, LibraryError, LibraryStore
from resources.media_store import MediaStore


def library_inputs(libraries: LibraryStore, name: str) -> dict[str, str]:
    """mtime_ns and size of every file in the library's folder (library.yaml, the catalog, example manifests): a
    few small files, stat'ed each tick to see a changed catalog, new examples or new settings."""
    folder = libraries.dir(name)
    stamps = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            info = path.stat()
            stamps[str(path.relative_to(folder))] = f"{info.st_mtime_ns}:{info.st_size}"
    return stamps


def library_tick(context, libraries: LibraryStore, media_store: MediaStore, name: str, seen: dict | None):
    """(the library's state for the cursor, a RunRequest or None, what changed in words) for one library.

    The state is where its media listing stands (resources/media_changes.py: a folder's or prefix's changes since
    the last tick, never a full listing), which media location that listing is of, and its input files' stamps.
    With no state (a new library, or the sensor's first tick) or a new media location, this tick records the
    baseline and runs the library only if it was never tagged or its inputs changed."""
    config = libraries.config(name)
    inputs = library_inputs(libraries, name)
    baseline = seen is None or seen.get("media") != config.media
    changes = media_store.changes_since(config.media, None if baseline else seen["listing"])
    state = {"media": config.media, "listing": changes.cursor, "inputs": inputs}
    what = [changes.describe()] if changes.describe() else []
    if seen is not None:
        edited = sorted(k for k in {*inputs, *seen["inputs"]} if inputs.get(k) != seen["inputs"].get(k))
        what += [f"{', '.join(edited)} changed"] if edited else []
        what += ["media location changed"] if baseline else []
    elif tags_run_started(context.instance, name) is None:
        what.append("never tagged")
    if not what:
        return state, None, ""
    digest = hashlib.sha256(f"{changes.fingerprint()}|{json.dumps(inputs, sort_keys=True)}".encode()).hexdigest()
    reason = ", ".join(what)
    request = RunRequest(partition_key=name, run_key=f"{name}:{digest[:16]}", tags={"tagsmith/changed": reason})
    return state, request, reason


@sensor(job=tag_library_job, minimum_interval_seconds=60, default_status=DefaultSensorStatus.STOPPED)
def library_sensor(context: SensorEvaluationContext, libraries: LibraryStore, media_store: MediaStore):
    """New libraries become partitions; a library whose media or inputs changed since the last tick gets a run.

    A tick costs what changed, not the library's size: per library a stat of its known media folders, a scan of
    the folders that changed and a stat of its few input files (S3: a listing after the last key). The cursor is
    JSON, per library the state `library_tick` returns. What the listing cannot see (a file rewritten in place,
    an S3 key that sorts before the last) waits for `nightly_retag`, which lists everything."""
    cursor = json.loads(context.cursor) if context.cursor else {}
    known = set(context.instance.get_dynamic_partitions(library_partitions.name))
    names = libraries.names()
    new_partitions = [n for n in names if n not in known]
    requests = []
    state = {name: cursor[name] for name in names if name in cursor}  # a library that failed keeps its state
    for name in names:
        try:
            seen = cursor.get(name) if isinstance(cursor.get(name), dict) else None  # not an old fingerprint
            state[name], request, what = library_tick(context, libraries, media_store, name, seen)
        except (FileNotFoundError, LookupError, ValueError) as exc:  # no media folder yet, bad library.yaml
            context.log.warning(f"library {name}: {exc}")
            continue
        if request is not None:
            requests.append(request)
            context.log.info(f"{name}: {what}")
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[library_partitions.build_add_request(new_partitions)] if new_partitions else [],
        cursor=json.dumps(state),
        skip_reason=None if requests or new_partitions else f"no library changed ({len(names)} watched)",
    )


def event_listing(media_store: MediaStore, config: LibraryConfig, event: str) -> tuple[str, int, float | None]:
    """(fingerprint, count, latest modification time) of an event's media listing: its folder's (a tag event:
    the library's whole media). The latest time is None where the store gives no times (S3 gives ETags)."""
    location = event_location(config, event) or config.media
    objects = media_store.list_media(location)
    digest = hashlib.sha256(f"{len(objects)};".encode())
    times = []
    for obj in objects:
        digest.update(f"{obj.uri}|{obj.size}|{obj.modified};".encode())
        try:
            times.append(datetime.fromisoformat(obj.modified).timestamp())
        except ValueError:  # an ETag: no time to read
            times = [None]
    latest = max(times) if times and None not in times else None
    return digest.hexdigest(), len(objects), latest


def tags_run_started(instance, library: str) -> float | None:
    """When the run behind the library's latest `tags` materialization started (its timestamp for a runless
    one); None when the library was never tagged."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("tags"), asset_partitions=[library]), limit=1
    ).records
    if not records:
        return None
    run = instance.get_run_record_by_id(records[0].run_id) if records[0].run_id else None
    return run.start_time if run is not None and run.start_time else records[0].timestamp


@sensor(job=sponsor_report_job, minimum_interval_seconds=60, default_status=DefaultSensorStatus.STOPPED)
def event_report_sensor(context: SensorEvaluationContext, libraries: LibraryStore, media_store: MediaStore):
    """Every library's events (library.yaml `events:`) become `event` partitions; an event's sponsor report runs
    once its upload is over: its media listing unchanged for the event's `quiet_minutes`, and the library's
    `tags` from a run started after the listing last changed. The last change is the latest file time the
    listing shows, and never earlier than the last tick that saw another listing (files copied with their old
    times, deletions, S3's ETags). run_key = library|event|listing: a finished report is not rerun until the
    event's media change. The cursor keeps per `library|event` the listing's fingerprint, when this sensor first
    saw it, and the tick before (the last one that saw another listing)."""
    cursor = json.loads(context.cursor) if context.cursor else {}
    now = time.time()
    known_events = set(context.instance.get_dynamic_partitions(event_partitions.name))
    known_libraries = set(context.instance.get_dynamic_partitions(library_partitions.name))
    new_events: list[str] = []
    requests, state, waiting = [], {}, []
    for name in libraries.names():
        try:
            config = libraries.config(name)
        except (ConfigError, LibraryError) as exc:
            context.log.warning(f"library {name}: {exc}")
            continue
        for event, spec in config.events.items():
            if event not in known_events and event not in new_events:
                new_events.append(event)
            key = f"{name}|{event}"
            try:
                fingerprint, count, latest = event_listing(media_store, config, event)
            except (FileNotFoundError, LookupError) as exc:  # the event's folder is not there yet
                context.log.warning(f"event {key}: {exc}")
                continue
            seen = cursor.get(key)
            if seen and seen["fingerprint"] == fingerprint:
                state[key] = seen
            else:
                state[key] = {
                    "fingerprint": fingerprint,
                    "first_seen": now,
                    "changed_after": seen["last_tick"] if seen else None,
                }
            state[key]["last_tick"] = now
            first_seen = state[key]["first_seen"]
            bounds = [t for t in (latest, state[key]["changed_after"]) if t is not None]
            changed = min(max(bounds), first_seen) if bounds else first_seen
            tagged = tags_run_started(context.instance, name)
            if count == 0 or now - first_seen < spec.quiet_minutes * 60 or name not in known_libraries:
                waiting.append(f"{key} (uploading or not registered)")
            elif tagged is None or tagged <= changed:
                waiting.append(f"{key} (tags older than its media)")
            else:
                requests.append(
                    RunRequest(
                        partition_key=MultiPartitionKey({"library": name, "event": event}),
                        run_key=f"{name}|{event}|{fingerprint[:16]}",
                    )
                )
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[event_partitions.build_add_request(new_events)] if new_events else [],
        cursor=json.dumps(state),
        skip_reason=None if requests or new_events else ("waiting: " + ", ".join(waiting) if waiting else "no events"),
    )
