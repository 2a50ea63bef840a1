"""Sensors: register libraries as partitions and run a library when its media or training inputs change."""

import hashlib
import json

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from assets_defs.partitions import library_partitions
from pipelines.jobs import tag_library_job
from resources.libraries import LibraryStore
from resources.media_store import MediaStore


def library_fingerprint(libraries: LibraryStore, media_store: MediaStore, name: str) -> str:
    """Changes when a media file is added/changed/removed or the library's config, catalog or examples do."""
    digest = hashlib.sha256()
    config = libraries.config(name)
    for obj in media_store.list_media(config.media):
        digest.update(f"{obj.uri}|{obj.size}|{obj.modified};".encode())
    for path in sorted(libraries.dir(name).rglob("*")):
        if path.is_file():
            digest.update(f"{path.name}|{path.stat().st_mtime_ns};".encode())
    return digest.hexdigest()


@sensor(job=tag_library_job, minimum_interval_seconds=60, default_status=DefaultSensorStatus.STOPPED)
def library_sensor(context: SensorEvaluationContext, libraries: LibraryStore, media_store: MediaStore):
    """New libraries become partitions; a library whose inputs changed since the last tick gets a run."""
    cursor = json.loads(context.cursor) if context.cursor else {}
    known = set(context.instance.get_dynamic_partitions(library_partitions.name))
    names = libraries.names()
    new_partitions = [n for n in names if n not in known]
    requests, fingerprints = [], {}
    for name in names:
        try:
            fingerprints[name] = library_fingerprint(libraries, media_store, name)
        except (FileNotFoundError, LookupError) as exc:
            context.log.warning(f"library {name}: {exc}")
            continue
        if cursor.get(name) != fingerprints[name]:
            requests.append(RunRequest(partition_key=name, run_key=f"{name}:{fingerprints[name][:16]}"))
    if not requests and not new_partitions:
        return SkipReason("no library changed")
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[library_partitions.build_add_request(new_partitions)] if new_partitions else [],
        cursor=json.dumps({**cursor, **fingerprints}),
    )
