"""Where media lives: a local folder (embedded default) or S3, swapped by configuration only; and how it is read.

All S3 I/O of media lives in resources (here and resources/s3_media.py), not in `ml/`: pure ML code reads
through the `ml.media.MediaReader` it is given. `MediaStore.reader()` (a `StoreReader`: local paths and s3://
objects alike) is what assets hand to ml functions and Ray tasks.
"""

from __future__ import annotations

import errno
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

from dagster import ConfigurableResource

from ml.media import media_kind
from resources.media_changes import MediaChanges, StoredObject, local_changes, s3_changes
from resources.s3_media import StoreReader, s3_client


def _problem(path: str, reason: str) -> StoredObject:
    return StoredObject(uri=os.path.abspath(path), size=0, modified=reason, problem=reason)


SPECIAL = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
           stat.S_IFBLK: "a block device"}


class MediaStore(ConfigurableResource):
    """Lists and reads media under a location (a library's media folder or bucket prefix)."""

    def list_media(self, location: str) -> list[StoredObject]:
        raise NotImplementedError

    def changes_since(self, location: str, cursor: dict | None) -> MediaChanges:
        """The media under `location` added or changed since `cursor` and the next cursor, at the cost of what
        changed (resources/media_changes.py says how, and what it cannot see). No cursor, or one of another
        location: a baseline, with no changes."""
        raise NotImplementedError

    def location_uri(self, location: str) -> str:
        """The uri prefix `list_media(location)` gives the objects under `location` (no trailing '/'): what
        the media table's uris of that folder start with."""
        return location.rstrip("/")

    def reader(self) -> StoreReader:
        """What ml functions and Ray tasks read media through (picklable: it carries only the endpoint)."""
        return StoreReader(self.s3_endpoint_url())

    def read_bytes(self, uri: str) -> bytes:
        return self.reader().read(uri)

    def s3_endpoint_url(self) -> str | None:
        """The S3 endpoint (None: AWS's own), for what is not reading: listing and `tagsmith ingest`'s writes."""
        return None


class LocalMediaStore(MediaStore):
    """Media in local folders. Relative locations resolve under `root`."""

    root: str = "."

    def location_uri(self, location: str) -> str:
        base = Path(location) if Path(location).is_absolute() else Path(self.root) / location
        return str(base.resolve())

    def changes_since(self, location: str, cursor: dict | None) -> MediaChanges:
        return local_changes(Path(self.location_uri(location)), cursor)

    def list_media(self, location: str) -> list[StoredObject]:
        """Media files under the folder, symlinked folders followed; what cannot be listed is returned too.

        A symlink loop, a broken link, a folder that cannot be read and a FIFO or device named like media come
        back as objects with a `problem` (their quarantine reason) instead of being skipped without a trace.
        Hidden files (".name") are not media. A file reached twice (a symlinked folder) is listed once.
        """
        base = Path(location) if Path(location).is_absolute() else Path(self.root) / location
        if not base.is_dir():
            raise FileNotFoundError(f"media folder not found: {base}")
        found: dict[str, StoredObject] = {}
        base_stat = base.stat()
        self._walk(str(base), {(base_stat.st_dev, base_stat.st_ino)}, set(), found)
        return sorted(found.values(), key=lambda o: o.uri)

    def _walk(self, folder: str, ancestors: set, seen: set, found: dict[str, StoredObject]) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            found[os.path.abspath(folder)] = _problem(folder, f"cannot list folder: {exc.strerror or exc}")
            return
        for entry in entries:
            if entry.name.startswith(".") and not entry.is_dir(follow_symlinks=False):
                continue
            named_media = media_kind(entry.name) is not None
            try:
                info = os.stat(entry.path)  # follows symlinks
            except OSError as exc:
                if Path(entry.name).suffix and not named_media:
                    continue  # a broken link to a document is not the library's business
                if exc.errno == errno.ELOOP:
                    found[entry.path] = _problem(entry.path, "symlink loop: the link leads back to itself")
                elif entry.is_symlink():
                    target = os.readlink(entry.path)
                    found[entry.path] = _problem(entry.path, f"broken symlink: {target} does not exist")
                else:
                    found[entry.path] = _problem(entry.path, f"cannot read: {exc.strerror or exc}")
                continue
            if stat.S_ISDIR(info.st_mode):
                key = (info.st_dev, info.st_ino)
                if key in ancestors:
                    reason = f"symlink loop: the folder link leads back to {os.path.realpath(entry.path)}"
                    found[entry.path] = _problem(entry.path, reason)
                elif key not in seen:  # a folder linked twice is listed once
                    seen.add(key)
                    self._walk(entry.path, ancestors | {key}, seen, found)
            elif not named_media or entry.name.startswith("."):
                continue
            elif stat.S_ISREG(info.st_mode):
                uri = str(Path(entry.path).resolve())
                modified = datetime.fromtimestamp(info.st_mtime, UTC).isoformat()
                found[uri] = StoredObject(uri=uri, size=info.st_size, modified=modified)
            else:
                kind = SPECIAL.get(stat.S_IFMT(info.st_mode), "a special file")
                found[entry.path] = _problem(entry.path, f"not a regular file: {kind}")


class S3MediaStore(MediaStore):
    """Media in S3 (or any S3-compatible store through `endpoint_url`): `s3://bucket/prefix` locations."""

    endpoint_url: str | None = None

    def s3_endpoint_url(self) -> str | None:
        return self.endpoint_url

    def changes_since(self, location: str, cursor: dict | None) -> MediaChanges:
        return s3_changes(location, cursor, self.endpoint_url)

    def list_media(self, location: str) -> list[StoredObject]:
        if not location.startswith("s3://"):
            raise ValueError(f"S3 media location must look like s3://bucket/prefix, not {location!r}")
        bucket, _, prefix = location[5:].partition("/")
        client = s3_client(self.endpoint_url)
        out = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if media_kind(key) is not None:
                    uri = f"s3://{bucket}/{key}"
                    out.append(StoredObject(uri=uri, size=obj["Size"], modified=obj["ETag"].strip('"')))
        return sorted(out, key=lambda o: o.uri)
