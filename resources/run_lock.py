"""One writer per library: an OS file lock that a run holds from its first step to its last.

Why a file lock and not only Dagster's run queue: `tagsmith run` executes in its own process
(`execute_in_process`), beside runs the Dagster daemon launches (sensor, schedule, UI). The daemon's queue
(`dagster.yaml`: one run per `dagster/partition`) orders the runs it launches; the lock covers every run,
whoever started it. `fcntl.flock` is released by the kernel when the holding process dies, so a run killed
with SIGKILL never leaves a stale lock, and a free lock next to a run still marked STARTED proves that run
is dead (`tagsmith.runs.fail_dead_runs`). The lock file names its holder (run id, pid, start time), so the
refusal can say which run holds the library.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

LOCK_NAME = ".run.lock"
# locks this process holds: {lock path: [fd, depth]}. flock conflicts between two open files of one process
# too, so a second take in the same process (the CLI's, then the run's warehouse) nests instead of waiting.
_HELD: dict[str, list[int]] = {}


class LibraryBusy(RuntimeError):
    """Another run holds the library; the message names it in one line."""


class RunLock:
    """The lock of one library's folder. `acquire` waits up to `wait_s` (0: refuse at once)."""

    def __init__(self, folder: Path, library: str):
        self.path = Path(folder) / LOCK_NAME
        self.library = library

    def holder(self) -> dict:
        """Who holds (or last held) the lock: {run_id, pid, since}; {} when no run ever took it."""
        try:
            text = self.path.read_text("utf-8").strip()
        except FileNotFoundError:
            return {}
        try:
            return json.loads(text) if text else {}
        except json.JSONDecodeError:
            return {}

    def is_held(self) -> bool:
        """Whether some live process holds the lock now (tried without taking it for long)."""
        if str(self.path) in _HELD:
            return True
        if not self.path.exists():
            return False
        fd = os.open(self.path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops a lock taken just now
        return False

    def acquire(self, run_id: str, wait_s: float = 0.0, poll_s: float = 0.5, on_wait=None) -> None:
        held = _HELD.get(str(self.path))
        if held is not None:  # this process holds it already: nest, and name the run now holding it
            held[1] += 1
            self._record(held[0], run_id)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LibraryBusy(self.busy_message()) from None
                if on_wait is not None and not told:
                    on_wait(self.busy_message())
                    told = True
                time.sleep(poll_s)
        _HELD[str(self.path)] = [fd, 1]
        self._record(fd, run_id)

    @staticmethod
    def _record(fd: int, run_id: str) -> None:
        record = {"run_id": run_id, "pid": os.getpid(), "since": datetime.now(UTC).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)

    def release(self) -> None:
        held = _HELD.get(str(self.path))
        if held is None:
            return
        held[1] -= 1
        if held[1] == 0:
            del _HELD[str(self.path)]
            fcntl.flock(held[0], fcntl.LOCK_UN)
            os.close(held[0])

    def busy_message(self) -> str:
        held = self.holder()
        who = f"run {held.get('run_id', '?')[:8]} (pid {held.get('pid', '?')}, since {held.get('since', '?')})"
        return f"library {self.library!r} is being written by {who}: wait for it to finish, or stop it"
