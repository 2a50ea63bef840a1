"""Jobs: a batch or a video submitted by URI becomes a Dagster run of the library's `tag_library` job.

The job id is the Dagster run's id, chosen before the run starts, so a client can ask about it at once and the
run shows under that id in the Dagster UI. Runs go one at a time through one worker thread of the server (a run
is itself parallel, on Ray; two runs of one library would only wait on its lock). Until its run starts a job
is `queued` here, in memory; from then on Dagster's run storage answers, so a job's status outlives a restart
of the server. A job belongs to the library whose token submitted it (the run's partition): asked with another
library's token it is `not_found`, like a job that never existed.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import polars as pl

from tagsmith import service

log = logging.getLogger("tagsmith.api")
JOB_TAG = "tagsmith/api_job"


class Jobs:
    def __init__(self):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tagsmith-job")
        self._waiting: dict[str, dict] = {}  # run_id -> job, until Dagster has the run
        self._lock = threading.Lock()

    def submit(self, library: str, uris: list[str], who: str) -> dict:
        run_id = str(uuid.uuid4())
        job = {
            "job_id": run_id, "library": library, "status": "queued", "uris": uris, "submitted_by": who,
            "submitted_at": datetime.now(UTC).isoformat(timespec="seconds"), "errors": [],
        }  # fmt: skip
        answer = _public(job)  # as submitted: the worker may start it before this returns
        with self._lock:
            self._waiting[run_id] = job
        self._pool.submit(self._run, job)
        return answer

    def _run(self, job: dict) -> None:
        tags = {JOB_TAG: "1", "tagsmith/uris": json.dumps(job["uris"])[:2000], "tagsmith/by": job["submitted_by"]}
        try:
            job["status"] = "starting"
            outcome = service.run_library(job["library"], "tag_library", run_id=job["job_id"], tags=tags)
            job["status"] = "success" if outcome.ok else "failure"
            job["errors"] = outcome.failures + outcome.checks
        except (LookupError, ValueError, RuntimeError) as exc:  # a busy library, a broken library.yaml: said
            job["status"], job["errors"] = "failure", [str(exc)]
            log.warning(f"job {job['job_id'][:8]} of {job['library']} not run: {exc}")
        except Exception:
            job["status"], job["errors"] = "failure", ["internal error (logged on the server)"]
            log.exception(f"job {job['job_id'][:8]} of {job['library']} failed")
        finally:
            job["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")

    def status(self, library: str, job_id: str) -> dict | None:
        """The job's status, or None when `library` has no such job (whether or not another library has).
        While this server ran the job, its own outcome counts (a run whose blocking check failed is a
        `failure` with the check's words); otherwise Dagster's run record."""
        with self._lock:
            job = self._waiting.get(job_id)
        record = _record(job_id)
        if (job is not None and job["library"] != library) or (
            record is not None and record.dagster_run.tags.get("dagster/partition") != library
        ):
            return None
        if job is None and record is None:
            return None
        if job is None:
            out = _from_run(record)
        else:
            out = {**job, **(_from_record(record) if record else {})}
            if "finished_at" in job:
                out["status"], out["finished_at"] = job["status"], job["finished_at"]
        if out["status"] == "success":
            out["media"] = _media_of(library, out["uris"])
        return _public(out)

    def list(self, library: str, limit: int = 50) -> list[dict]:
        from dagster import DagsterInstance, RunsFilter

        service.ensure_dagster_home()
        with DagsterInstance.get() as instance:
            records = instance.get_run_records(
                RunsFilter(tags={"dagster/partition": library, JOB_TAG: "1"}), limit=limit
            )
        done = [_from_run(r) for r in records]
        with self._lock:
            queued = [_public(j) for j in self._waiting.values() if j["library"] == library and j["status"] == "queued"]
        return queued + done


def _record(run_id: str):
    from dagster import DagsterInstance

    service.ensure_dagster_home()
    with DagsterInstance.get() as instance:
        return instance.get_run_record_by_id(run_id)


def _from_run(record) -> dict:
    """A job as Dagster's run record alone tells it (one this server process did not submit)."""
    uris = json.loads(record.dagster_run.tags.get("tagsmith/uris", "[]"))
    return {"job_id": record.dagster_run.run_id, "uris": uris, "errors": [], **_from_record(record)}


def _from_record(record) -> dict:
    status = record.dagster_run.status.value.lower()
    out = {"status": {"started": "running", "not_started": "queued", "starting": "starting"}.get(status, status)}
    for key, stamp in (("started_at", record.start_time), ("finished_at", record.end_time)):
        if stamp:
            out[key] = datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")
    return out


def _media_of(library: str, uris: list[str]) -> list[dict]:
    """What the run made of each submitted file: its media_id and kind, or that it is quarantined (and why)."""
    warehouse = service.resources()["warehouse"]
    media = warehouse.read(library, "media").filter(pl.col("uri").is_in(uris))
    found = {r["uri"]: r for r in media.select("uri", "media_id", "kind").to_dicts()}
    quarantine = warehouse.read(library, "quarantine")
    reasons = dict(quarantine.filter(pl.col("uri").is_in(uris)).select("uri", "reason").iter_rows()) if (
        quarantine.height and "reason" in quarantine.columns) else {}  # fmt: skip
    out = []
    for uri in uris:
        entry = {"uri": uri, **{k: v for k, v in found.get(uri, {}).items() if k != "uri"}}
        if uri in reasons:
            entry["quarantined"] = reasons[uri]
        out.append(entry)
    return out


def _public(job: dict) -> dict:
    return {k: v for k, v in job.items() if k != "library"}
