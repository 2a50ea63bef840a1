"""Reading media from S3 (and local paths) for the media stores: the boto3 client, ranged reads, `StoreReader`.

Apart from resources/media_store.py because a `StoreReader` crosses into every Ray task: a worker unpickling it
imports this module, which needs neither Dagster nor boto3 until an s3:// uri is read (the resources package
imports its resource classes lazily for the same reason; tests/test_media.py checks it).
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass

from ml.media import LocalFiles


@functools.lru_cache(maxsize=8)
def s3_client(s3_endpoint_url: str | None = None):
    """One boto3 S3 client per process and endpoint, not one per photo: building a client costs tens of ms
    (botocore loads its service model), and a client is safe to share between threads."""
    import boto3

    return boto3.client("s3", endpoint_url=s3_endpoint_url or None)


class S3RangeFile(io.RawIOBase):
    """A seekable, read-only file over one S3 object, read with ranged GETs.

    Videos are opened through this (PyAV takes any file object), so a 4-hour file on S3 is read where the
    decoder reads (the index, then the time range a task samples) and never downloaded whole or held in
    memory. Written here because the well-kept alternative, s3fs, pins aiobotocore/botocore versions that
    fight the pinned boto3 of this stack; these are the few lines of it we need.
    """

    def __init__(self, uri: str, s3_endpoint_url: str | None = None):
        super().__init__()
        self.uri = uri
        self.bucket, _, self.key = uri[5:].partition("/")
        self.client = s3_client(s3_endpoint_url)
        try:
            self.size = int(self.client.head_object(Bucket=self.bucket, Key=self.key)["ContentLength"])
        except Exception as exc:  # noqa: BLE001 - botocore's ClientError and connection errors alike
            raise OSError(f"cannot open {uri}: {exc}") from None
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer) -> int:
        if self.pos >= self.size or len(buffer) == 0:
            return 0
        end = min(self.pos + len(buffer), self.size) - 1
        body = self.client.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={self.pos}-{end}")["Body"]
        data = body.read()
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


@dataclass(frozen=True)
class StoreReader:
    """The `ml.media.MediaReader` of a media store: local paths and s3:// objects (boto3; DuckDB cannot fetch
    its httpfs extension here).

    Picklable, so it goes into Ray tasks as an argument: it holds only the endpoint, and each process builds
    its boto3 client once (`s3_client`, cached per process and endpoint).
    """

    s3_endpoint_url: str | None = None

    def open(self, uri: str, buffer_size: int = 4 << 20) -> io.BufferedReader:
        """A seekable binary file for a local path or an s3:// object, read in `buffer_size` pieces."""
        if uri.startswith("s3://"):
            return io.BufferedReader(S3RangeFile(uri, self.s3_endpoint_url), buffer_size=buffer_size)
        return LocalFiles(buffer_size).open(uri)

    def read(self, uri: str) -> bytes:
        """All the bytes of a local path or an s3:// object."""
        if uri.startswith("s3://"):
            bucket, _, key = uri[5:].partition("/")
            return s3_client(self.s3_endpoint_url).get_object(Bucket=bucket, Key=key)["Body"].read()
        return LocalFiles().read(uri)
