"""Runs of a library's Dagster jobs, in this process: what `tagsmith run`, `rollback`, `report`, the demo and the
HTTP API's jobs start. Each failed step, refused run and failed check comes back as one sentence."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from resources import PROJECT_ROOT, build_resources, tagsmith_home
from resources.libraries import LibraryError


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME inside the project's home unless set; the project's dagster.yaml goes there."""
    home = Path(os.environ.get("DAGSTER_HOME") or tagsmith_home() / "dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def register_partition(name: str, kind: str = "library") -> None:
    """Add `name` to the dynamic partitions `kind` (library, or event) unless it is there."""
    from dagster import DagsterInstance

    ensure_dagster_home()
    with DagsterInstance.get() as instance:
        if not instance.has_dynamic_partition(kind, name):
            instance.add_dynamic_partitions(kind, [name])


def check_library(name: str) -> None:
    """What a run needs, checked before any step: the library, a valid library.yaml and catalog, its media
    location. Raises LibraryError / ConfigError / ValidationError with one line per problem."""

    res = build_resources()
    config = res["libraries"].config(name)
    res["libraries"].catalog(name)
    if not config.media.startswith("s3://") and not Path(config.media).is_dir():
        raise LibraryError(f"library {name!r}: media folder not found: {config.media} (library.yaml: media)")


def _innermost(error) -> str:
    """The user's exception of a Dagster step failure, one line: "ValueError: ..."."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    lines = [line for line in error.message.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else error.cls_name or "unknown error"


@dataclass
class RunOutcome:
    """What `run_library` tells a person: each failed step or refusal and each failed check in one sentence,
    and what was found and fixed before the run (a dead run marked failed)."""

    success: bool
    failures: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    info: list[str] = field(default_factory=list)
    run_id: str = ""

    @property
    def ok(self) -> bool:
        return self.success and not self.failures and not self.checks


def run_library(
    name: str, job: str = "tag_library", env=None, log_level: str | None = None, run_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> RunOutcome:
    """Materialise the library's partition through Dagster (runs show in the UI), after checking what it needs
    and that no other run holds the library. `run_id` and `tags`: the Dagster run's (the HTTP API's jobs)."""
    from dagster import DagsterInstance

    check_library(name)
    ensure_dagster_home()
    register_partition(name)
    lock = build_resources()["warehouse"].run_lock(name)
    with DagsterInstance.get() as instance:
        dead = fail_dead_runs(instance, name, lock)
    lock.acquire("starting")  # LibraryBusy (one line) when another run holds it; the run's warehouse nests
    try:
        outcome = _execute(job, name, env, log_level, run_id, tags)
    finally:
        lock.release()
    outcome.info = [f"run {d[:8]} had died without finishing (its process is gone): marked failed" for d in dead]
    return outcome


def _execute(
    job: str, partition_key, env=None, log_level: str | None = None, run_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> RunOutcome:
    """Run `job` for one partition in this process, on the instance of DAGSTER_HOME; each failed step, refused
    run and failed check as one sentence."""
    from dagster import DagsterEventType, DagsterInstance

    from pipelines.definitions import build_definitions

    defs = build_definitions(env)
    if log_level is None:  # with progress bars on a terminal, Dagster's console shows warnings only
        log_level = "WARNING" if os.environ.get("TAGSMITH_PROGRESS") == "1" else "INFO"
    job_def = defs.resolve_job_def(job)
    # the job's own config for the partition (`retag`'s), which Dagster drops when a run_config is given
    loggers = {"console": {"config": {"log_level": log_level}}}
    run_config = {**job_def.get_run_config_for_partition_key(partition_key), "loggers": loggers}
    with DagsterInstance.get() as instance:
        result = job_def.execute_in_process(
            partition_key=partition_key, instance=instance, raise_on_error=False, run_config=run_config,
            run_id=run_id, tags=tags,
        )
    outcome = RunOutcome(success=result.success, run_id=result.run_id)
    for event in result.all_events:
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            data = event.event_specific_data
            if not data.passed:
                outcome.checks.append(f"check {data.check_name} failed: {data.description}")
        elif event.event_type == DagsterEventType.STEP_FAILURE:
            outcome.failures.append(f"step {event.step_key} failed: {_innermost(event.event_specific_data.error)}")
        elif event.event_type == DagsterEventType.RESOURCE_INIT_FAILURE and event.event_specific_data.error:
            outcome.failures.append(f"run refused: {_innermost(event.event_specific_data.error)}")
    if not result.success and not outcome.failures:
        outcome.failures.append(f"run {result.run_id[:8]} failed (see `make ui`, Runs)")
    return outcome


def fail_dead_runs(instance, library: str, lock, grace_s: float = 60.0) -> list[str]:
    """Runs of `library` still marked STARTED while no process holds the library's run lock died hard
    (SIGKILL, a lost machine): mark them failed, so none stays STARTED for good. The run the lock file names
    took the lock, so it is dead at any age; another STARTED run younger than `grace_s` may not have reached
    the lock yet and is left alone. Returns the run ids marked."""
    import time

    from dagster import DagsterRunStatus, RunsFilter

    if lock.is_held():
        return []
    last_holder = lock.holder().get("run_id")
    records = instance.get_run_records(
        RunsFilter(statuses=[DagsterRunStatus.STARTED], tags={"dagster/partition": library})
    )
    dead = [
        r
        for r in records
        if r.dagster_run.run_id == last_holder or r.start_time is None or time.time() - r.start_time > grace_s
    ]
    for record in dead:
        instance.report_run_failed(record.dagster_run, message="the run's process died (the library's lock is free)")
    return [r.dagster_run.run_id for r in dead]
