"""Where media lives: a local folder (embedded default) or S3, swapped by configuration only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dagster import ConfigurableResource

from ml.media import media_kind, read_uri


@dataclass(frozen=True)
class StoredObject:
    uri: str
    size: int
    modified: str  # ISO time or ETag: anything that changes when the bytes do


class MediaStore(ConfigurableResource):
    """Lists and reads media under a location (a library's media folder or bucket prefix)."""

    def list_media(self, location: str) -> list[StoredObject]:
        raise NotImplementedError

    def read_bytes(self, uri: str) -> bytes:
        return read_uri(uri, self.s3_endpoint_url())

    def s3_endpoint_url(self) -> str | None:
        return None


class LocalMediaStore(MediaStore):
    """Media in local folders. Relative locations resolve under `root`."""

    root: str = "."

    def list_media(self, location: str) -> list[StoredObject]:
        base = Path(location) if Path(location).is_absolute() else Path(self.root) / location
        if not base.is_dir():
            raise FileNotFoundError(f"media folder not found: {base}")
        out = []
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.startswith(".") and media_kind(path.name) is not None:
                stat = path.stat()
                modified = datetime.fromtimestamp(stat.st_mtime, UTC).isoformat()
                out.append(StoredObject(uri=str(path.resolve()), size=stat.st_size, modified=modified))
        return out


class S3MediaStore(MediaStore):
    """Media in S3 (or any S3-compatible store through `endpoint_url`): `s3://bucket/prefix` locations."""

    endpoint_url: str | None = None

    def s3_endpoint_url(self) -> str | None:
        return self.endpoint_url

    def list_media(self, location: str) -> list[StoredObject]:
        import boto3

        if not location.startswith("s3://"):
            raise ValueError(f"S3 media location must look like s3://bucket/prefix, not {location!r}")
        bucket, _, prefix = location[5:].partition("/")
        client = boto3.client("s3", endpoint_url=self.endpoint_url)
        out = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if media_kind(key) is not None:
                    uri = f"s3://{bucket}/{key}"
                    out.append(StoredObject(uri=uri, size=obj["Size"], modified=obj["ETag"].strip('"')))
        return sorted(out, key=lambda o: o.uri)
