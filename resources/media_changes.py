"""What changed in a media folder or S3 prefix since a cursor: the sensor's listing, whose cost follows the change.

`MediaStore.list_media` reads every file (a stat per file, or every key of a prefix): right for a run, too dear
for a sensor ticking each minute over a 1M-file library. `MediaStore.changes_since(location, cursor)` returns
only the media added or changed since `cursor` and the cursor to pass next time. A cursor is JSON (it lives in
Dagster's sensor cursor) and stays compact: folders for a local library, one key for S3, never a row per file.

Local folders. Adding, removing or renaming an entry in a folder moves the folder's mtime and ctime (not its
parent's: each folder is kept apart). The cursor keeps every folder's ctime_ns (mtime can be set back, as
`rsync -a` does; ctime cannot) and media count, and the tick's time. A tick stats the known folders only; a
folder whose ctime moved is scanned (os.scandir) and its media files whose st_ctime_ns or st_mtime_ns is newer
than the last tick are changes (ctime catches a file copied or moved in with its old mtime: creating or renaming
a file sets its ctime); a folder not seen before is walked whole and all its media are changes (a folder moved
in keeps its files' times). A folder with fewer media than before counts as removals. What this cannot see,
and the nightly full run (`nightly_retag`) covers:
- a file rewritten in place (same name, no temporary file renamed over it): its folder does not change, so it
  is seen only when something else changes that folder (then its new ctime is newer than the cursor);
- a removal together with an addition in the same folder between two ticks counts as the addition only;
- a folder that changed is scanned whole: a flat folder of 100,000 files costs 100,000 stats per tick
  that changes it (benchmarks/sensor_tick.py measures both shapes); dated sub-folders keep ticks cheap;
- clocks: times are compared with a margin (`MARGIN_NS`) for coarse filesystem timestamps and a file server's
  clock running behind; a folder changed within the margin is scanned again next tick, and the files already
  reported in that window are remembered by name so they are not reported twice (up to `RECENT_CAP` names:
  the cursor's only part that is per file, and it empties the tick after; a bigger burst just before a tick
  may be reported again, one more run of an incremental pipeline). A server clock off by more than the
  margin, or a filesystem with timestamps coarser than it, can hide a change until the nightly run.

S3. ListObjectsV2 with StartAfter = the last key seen returns only the keys after it. That assumes new uploads
get keys that sort after the old ones (date/time prefixes such as `2026/12/06/...`); an object overwritten
under its old key, or uploaded under an earlier-sorting key, is not seen, nor is a deletion: the nightly run
lists everything. The first tick (no cursor) lists the prefix once to find its last key.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ml.media import media_kind
from resources.s3_media import s3_client

MARGIN_NS = 2_000_000_000  # coarse filesystem clocks (a jiffy; 1-2 s on FAT/SMB/NFS) and server clock lag
RECENT_CAP = 256  # files remembered by name from the margin before a tick; more: they may be reported twice


@dataclass(frozen=True)
class StoredObject:
    """One file of a listing (`MediaStore.list_media`, and the changes here; defined here so that
    resources/media_store.py can import this module)."""

    uri: str
    size: int
    modified: str  # ISO time or ETag: anything that changes when the bytes do (for a problem: the reason)
    problem: str | None = None  # listed but unreadable as media (symlink loop, broken link, FIFO): the reason


@dataclass
class MediaChanges:
    """Media added or changed since the cursor (`changed`), media gone from the folders scanned (`removed`, local
    only), the next cursor, and what the tick cost (`folders_scanned`, `entries_scanned`, `stats`)."""

    changed: list[StoredObject]
    cursor: dict
    removed: int = 0
    baseline: bool = False  # no usable cursor was given: this tick only recorded where the listing stands
    folders_scanned: int = 0
    entries_scanned: int = 0
    stats: int = 0
    position: dict = field(default_factory=dict, repr=False)  # the cursor without the tick's clock

    def describe(self) -> str:
        """What changed in words: "10 new or changed files, 2 removed"; "" when nothing did."""
        parts = [f"{len(self.changed)} new or changed file{'s' * (len(self.changed) != 1)}"] if self.changed else []
        parts += [f"{self.removed} removed"] if self.removed else []
        return ", ".join(parts)

    def fingerprint(self) -> str:
        """The same change gives the same digest (a sensor's run_key): the changed files with their times, the
        removals and where the listing now stands, without the tick's own clock."""
        digest = hashlib.sha256(json.dumps(self.position, sort_keys=True).encode())
        for obj in self.changed:
            digest.update(f"{obj.uri}|{obj.size}|{obj.modified};".encode())
        digest.update(f"removed:{self.removed}".encode())
        return digest.hexdigest()


class _LocalTick:
    """One tick over a local folder: the folders known to the cursor, stat'ed; the ones that moved, scanned."""

    def __init__(self, base: Path, cursor: dict | None, margin_ns: int):
        self.base = base
        self.now = time.time_ns()
        self.floor = self.now - margin_ns  # what is newer than this may not be final yet
        self.baseline = not cursor or cursor.get("root") != str(base)
        old = {} if self.baseline else cursor
        self.since = old.get("since_ns", 0)
        self.known: dict[str, list[int]] = old.get("dirs", {})
        self.reported: dict[str, int] = old.get("recent", {})
        self.dirs: dict[str, list[int]] = {}
        self.recent: dict[str, int] = {}
        self.visited: set[tuple[int, int]] = set()
        self.changes = MediaChanges(changed=[], cursor={}, baseline=self.baseline)

    def run(self) -> MediaChanges:
        if not self.base.is_dir():
            raise FileNotFoundError(f"media folder not found: {self.base}")
        if self.baseline:
            self.scan("", walk=True)
        for rel, (ctime, count) in sorted(self.known.items()):
            try:
                info = os.stat(self.path(rel))
            except OSError:  # the folder is gone (or renamed: its new name is a new folder)
                self.changes.removed += count
                continue
            self.changes.stats += 1
            if not stat.S_ISDIR(info.st_mode):
                self.changes.removed += count
            elif info.st_ctime_ns == ctime:
                self.dirs[rel] = [ctime, count]
            else:
                self.scan(rel, walk=False, info=info)
                self.changes.removed += max(0, count - self.dirs[rel][1])
        recent = self.recent if len(self.recent) <= RECENT_CAP else {}
        self.changes.position = {"dirs": self.dirs}
        self.changes.cursor = {"root": str(self.base), "since_ns": self.floor, "dirs": self.dirs, "recent": recent}
        return self.changes

    def path(self, rel: str) -> str:
        return os.path.join(self.base, rel) if rel else str(self.base)

    def scan(self, rel: str, walk: bool, info: os.stat_result | None = None) -> None:
        """Scan one folder: its new sub-folders walked whole (`walk`: this folder is new too, so all of its media
        are changes, or it is the baseline, where nothing is), its media files taken when newer than the cursor.
        The folder is stat'ed before it is listed, so an entry added meanwhile moves its ctime past the one
        kept. A folder changed within the margin is kept with ctime 0: scanned again next tick."""
        folder = self.path(rel)
        try:
            if info is None:
                info = os.stat(folder)
                self.changes.stats += 1
            if walk and (info.st_dev, info.st_ino) in self.visited:  # a folder reached twice (symlinks): once
                return
            self.visited.add((info.st_dev, info.st_ino))
            entries = list(os.scandir(folder))
        except OSError as exc:
            self.report(folder, rel, problem=f"cannot list folder: {exc.strerror or exc}")
            self.dirs[rel] = [0, self.known.get(rel, [0, 0])[1]]  # tried again next tick
            return
        self.changes.folders_scanned += 1
        self.changes.entries_scanned += len(entries)
        fresh = info.st_ctime_ns > self.floor
        count = 0
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            try:
                is_dir = entry.is_dir()  # d_type: no stat, except for a symlink
            except OSError:
                is_dir = False
            if is_dir:
                if entry.is_symlink() and _leads_back(entry.path, folder):
                    self.report(entry.path, child, problem="symlink loop: the folder link leads back to its parent")
                elif walk or child not in self.known:
                    self.scan(child, walk=True)
                continue
            if entry.name.startswith(".") or media_kind(entry.name) is None:
                continue
            count += 1
            if self.baseline and not fresh:
                continue  # nothing is a change at the baseline; only fresh folders need their files' times
            self.take(entry, child, walk)
        self.dirs[rel] = [0 if fresh else info.st_ctime_ns, count]

    def take(self, entry: os.DirEntry, rel: str, walk: bool) -> None:
        try:
            info = entry.stat()
        except OSError as exc:
            reason = "symlink loop or broken symlink" if entry.is_symlink() else f"cannot read: {exc.strerror or exc}"
            self.report(entry.path, rel, problem=reason)
            return
        self.changes.stats += 1
        stamp = max(info.st_ctime_ns, info.st_mtime_ns)
        if stamp > self.floor:
            self.recent[rel] = stamp  # may be seen again next tick (margin): remembered so it is reported once
        if self.baseline or (not walk and (stamp <= self.since or self.reported.get(rel) == stamp)):
            return
        if not stat.S_ISREG(info.st_mode):
            self.report(entry.path, rel, problem="not a regular file")
            return
        uri = str(Path(entry.path).resolve())
        modified = datetime.fromtimestamp(info.st_mtime_ns / 1e9, UTC).isoformat()
        self.changes.changed.append(StoredObject(uri=uri, size=info.st_size, modified=modified))

    def report(self, path: str, rel: str, problem: str) -> None:
        """A problem (the media table's quarantine reason) is a change once, while it lasts."""
        self.recent[rel] = 0
        if not self.baseline and rel not in self.reported:
            self.changes.changed.append(StoredObject(os.path.abspath(path), 0, problem, problem=problem))


def _leads_back(link: str, parent: str) -> bool:
    real, parent_real = os.path.realpath(link), os.path.realpath(parent)
    return parent_real == real or parent_real.startswith(real + os.sep)


def local_changes(base: Path, cursor: dict | None, margin_ns: int = MARGIN_NS) -> MediaChanges:
    """Media under a local folder added or changed since `cursor` (see the module's docstring for the limits).
    `margin_ns`: how far behind the tick's clock a file's time may lag (a share whose server clock lags more
    needs more)."""
    changes = _LocalTick(base, cursor, margin_ns).run()
    changes.changed.sort(key=lambda o: o.uri)
    return changes


def s3_changes(location: str, cursor: dict | None, endpoint_url: str | None = None) -> MediaChanges:
    """Media keys under an s3://bucket/prefix after the cursor's last key (ListObjectsV2 StartAfter)."""
    if not location.startswith("s3://"):
        raise ValueError(f"S3 media location must look like s3://bucket/prefix, not {location!r}")
    from botocore.exceptions import ClientError

    bucket, _, prefix = location[5:].partition("/")
    baseline = not cursor or cursor.get("location") != location
    last = None if baseline else cursor.get("start_after")
    args = {"Bucket": bucket, "Prefix": prefix, **({"StartAfter": last} if last else {})}
    changes = MediaChanges(changed=[], cursor={}, baseline=baseline)
    try:
        for page in s3_client(endpoint_url).get_paginator("list_objects_v2").paginate(**args):
            for obj in page.get("Contents", []):
                changes.entries_scanned += 1
                last = obj["Key"]  # keys come in ascending order: the last one seen is the next StartAfter
                if not baseline and media_kind(last) is not None:
                    uri = f"s3://{bucket}/{last}"
                    changes.changed.append(StoredObject(uri=uri, size=obj["Size"], modified=obj["ETag"].strip('"')))
    except ClientError as exc:
        raise LookupError(f"cannot list {location}: {exc.response['Error'].get('Code', exc)}") from None
    changes.cursor = {"location": location, "start_after": last}
    changes.position = dict(changes.cursor)
    return changes
