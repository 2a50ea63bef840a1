"""Where `tagsmith ingest` writes: a local media folder or an S3 prefix, each with a write that never replaces.

- Local: the bytes go to a hidden temporary file in the target folder (hidden names are not media to
  `LocalMediaStore.list_media`) and are hard-linked to their name, which fails instead of replacing a file
  that appeared in the meantime; a killed ingest leaves no half file under a media name.
- S3: a PUT is atomic by nature; `If-None-Match: *` makes it refuse an existing key, a multipart upload for
  large files. Objects carry their sha256 in metadata (`x-amz-meta-sha256`), so the next ingest compares bytes
  without reading them; an object without it is compared by its ETag (the MD5 of a single-PUT object) or read.

Why not boto3's `upload_file`: its multipart transfer takes no `IfNoneMatch`, so it cannot refuse to
replace a key that appeared between the listing and the upload; the few calls of a multipart upload are here.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ml.media import sha256_stream
from resources.media_store import MediaStore
from resources.s3_media import StoreReader, s3_client

CHUNK = 8 << 20  # read size when hashing and copying: memory stays flat for a long video


@dataclass(frozen=True)
class Digest:
    sha256: str
    md5: str  # S3's ETag of an object written in a single PUT
    size: int


class ChangedWhileCopying(OSError):
    """The source's bytes differ from those hashed when the ingest was planned."""


def file_digest(path: Path) -> Digest:
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return Digest(sha.hexdigest(), md5.hexdigest(), size)


class Destination(Protocol):
    """Where media is stored: what is there, whether a file there has given bytes, and a no-replace write."""

    def existing(self) -> dict[str, int]: ...  # relative posix path -> size

    def same_bytes(self, relative: str, digest: Digest) -> bool: ...

    def write(self, source: Path, relative: str, digest: Digest, overwrite: bool) -> bool: ...  # False: taken

    def describe(self, relative: str) -> str: ...


class LocalDestination:
    """A media folder on a local file system."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._sha: dict[str, str] = {}

    def existing(self) -> dict[str, int]:
        out = {}
        if not self.root.is_dir():
            return out
        for folder, dirs, files in os.walk(self.root, followlinks=False):
            dirs.sort()
            for name in files:
                path = Path(folder) / name
                if path.is_file() and not name.startswith("."):  # hidden: temporary files of an ingest
                    out[path.relative_to(self.root).as_posix()] = path.stat().st_size
        return out

    def same_bytes(self, relative: str, digest: Digest) -> bool:
        if relative not in self._sha:
            try:
                with open(self.root / relative, "rb") as stream:
                    self._sha[relative] = sha256_stream(stream, CHUNK)[0]
            except OSError:  # gone or unreadable since the listing: not provably the same, so not skipped
                self._sha[relative] = ""
        return self._sha[relative] == digest.sha256

    def write(self, source: Path, relative: str, digest: Digest, overwrite: bool) -> bool:
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".ingest-", suffix=".partial")
        temp = Path(temp_name)
        try:
            sha = hashlib.sha256()
            with open(source, "rb") as src, os.fdopen(fd, "wb") as out:
                while chunk := src.read(CHUNK):
                    sha.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if sha.hexdigest() != digest.sha256:
                raise ChangedWhileCopying(f"{source} changed while it was being copied")
            shutil.copystat(source, temp)
            if overwrite:
                os.replace(temp, target)
                return True
            return _link_new(temp, target)
        finally:
            temp.unlink(missing_ok=True)

    def describe(self, relative: str) -> str:
        return str(self.root / relative)


def _link_new(temp: Path, target: Path) -> bool:
    """Give the complete temporary file its name unless the name exists; False when it does."""
    try:
        os.link(temp, target)
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: check, then rename (a short window, not none)
        if target.exists():
            return False
        os.replace(temp, target)
    return True


class S3Destination:
    """A bucket prefix `s3://bucket/prefix`; objects carry their sha256 in metadata (`x-amz-meta-sha256`)."""

    def __init__(
        self, location: str, endpoint_url: str | None = None, multipart_from: int = 256 << 20, part_size: int = 64 << 20
    ):
        if not location.startswith("s3://"):
            raise ValueError(f"S3 media location must look like s3://bucket/prefix, not {location!r}")
        self.location = location.rstrip("/")
        self.bucket, _, prefix = location[5:].partition("/")
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.client = s3_client(endpoint_url)
        self.multipart_from, self.part_size = multipart_from, max(part_size, 5 << 20)  # S3's smallest part

    def key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def existing(self) -> dict[str, int]:
        from botocore.exceptions import BotoCoreError, ClientError

        out = {}
        start = f"{self.prefix}/" if self.prefix else ""
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start):
                for obj in page.get("Contents", []):
                    out[obj["Key"][len(start) :]] = obj["Size"]
        except (BotoCoreError, ClientError) as exc:
            raise OSError(f"cannot list {self.location}: {exc}") from None
        return out

    def same_bytes(self, relative: str, digest: Digest) -> bool:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(relative))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False  # deleted since the listing
            raise OSError(f"cannot read {self.describe(relative)}: {exc}") from None
        if "sha256" in head.get("Metadata", {}):
            return head["Metadata"]["sha256"] == digest.sha256
        etag = head["ETag"].strip('"')
        if "-" not in etag and len(etag) == 32:  # a single-PUT object's ETag is the MD5 of its bytes
            return etag == digest.md5
        with StoreReader(self.endpoint_url).open(f"s3://{self.bucket}/{self.key(relative)}", CHUNK) as stream:
            return sha256_stream(stream, CHUNK)[0] == digest.sha256

    def write(self, source: Path, relative: str, digest: Digest, overwrite: bool) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        condition = {} if overwrite else {"IfNoneMatch": "*"}
        try:
            if digest.size < self.multipart_from:
                with open(source, "rb") as body:
                    self.client.put_object(
                        Bucket=self.bucket,
                        Key=self.key(relative),
                        Body=body,
                        Metadata={"sha256": digest.sha256},
                        ChecksumSHA256=base64.b64encode(bytes.fromhex(digest.sha256)).decode(),
                        **condition,
                    )
            else:
                self._multipart(source, relative, digest, condition)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                return False
            raise OSError(f"upload to {self.describe(relative)} failed: {exc}") from None
        except BotoCoreError as exc:
            raise OSError(f"upload to {self.describe(relative)} failed: {exc}") from None
        return True

    def _multipart(self, source: Path, relative: str, digest: Digest, condition: dict) -> None:
        key = self.key(relative)
        upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, Metadata={"sha256": digest.sha256})
        parts, sha = [], hashlib.sha256()
        try:
            with open(source, "rb") as src:
                while chunk := src.read(self.part_size):
                    sha.update(chunk)
                    number = len(parts) + 1
                    part = self.client.upload_part(
                        Bucket=self.bucket, Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=chunk
                    )
                    parts.append({"PartNumber": number, "ETag": part["ETag"]})
            if sha.hexdigest() != digest.sha256:
                raise ChangedWhileCopying(f"{source} changed while it was being uploaded")
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}, **condition
            )
        except BaseException:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload["UploadId"])
            raise

    def describe(self, relative: str) -> str:
        return f"s3://{self.bucket}/{self.key(relative)}"


def destination_for(location: str, media_store: MediaStore) -> Destination:
    """Where a library's `media` setting points: s3://bucket/prefix, or a folder (a relative one lies under the
    local store's root, as `LocalMediaStore.list_media` reads it)."""
    if location.startswith("s3://"):
        return S3Destination(location, media_store.s3_endpoint_url())
    folder = Path(location)
    if not folder.is_absolute():
        folder = Path(getattr(media_store, "root", ".")) / folder
    return LocalDestination(folder)
