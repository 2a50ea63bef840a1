"""Vectors for similarity search: Qdrant local mode by default, a Qdrant server at scale.

One collection per library (`tagsmith_<library>`): libraries never share vectors. Local mode is brute force
and meant for up to ~20k points (demo, tests, small libraries); point `url` at a server past that.

Local mode lets one client at a time open a folder. Each library has a folder of its own (runs of two
libraries never meet), every call opens and closes its client, and a call that finds the folder open
elsewhere (a `similar` while the run upserts, or the other way round) waits for it, up to `busy_wait_s`,
saying so once, instead of failing.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from dagster import ConfigurableResource, EnvVar


def point_id(media_id: str, ts: float | None = None) -> str:
    """A stable Qdrant point id (UUID) for a photo or video frame."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tagsmith:{media_id}:{'' if ts is None else ts}"))


def collection_name(library: str) -> str:
    return f"tagsmith_{library}"


log = logging.getLogger(__name__)


class VectorStoreBusy(RuntimeError):
    """The local store stayed open elsewhere longer than the wait allows."""


class VectorIndex:
    """One library's collection through one open client: what a step does to the index (count, delete,
    upsert, count again) opens the client once. Upserts go through the client's batched upload, which
    retries a failed batch."""

    def __init__(self, client, library: str, batch_size: int = 512):
        self.client, self.library, self.name, self.batch_size = client, library, collection_name(library), batch_size

    def upsert(self, media_ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict]) -> int:
        from qdrant_client import models

        dim = int(vectors.shape[1])
        if self.client.collection_exists(self.name):
            size = self.client.get_collection(self.name).config.params.vectors.size
            if size != dim:  # the library switched backbones: the old vectors cannot be compared
                self.client.delete_collection(self.name)
        if not self.client.collection_exists(self.name):
            self.client.create_collection(
                self.name, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE)
            )
        self.client.upload_collection(
            self.name,
            vectors=vectors.astype(np.float32),
            payload=list(payloads),
            ids=[point_id(m) for m in media_ids],
            batch_size=self.batch_size,
            max_retries=3,
            wait=True,
        )
        return len(media_ids)

    def delete(self, media_ids: Sequence[str]) -> None:
        """Remove photos that left the library (deleted or replaced files), so `similar` never returns them."""
        from qdrant_client import models

        if media_ids and self.client.collection_exists(self.name):
            selector = models.PointIdsList(points=[point_id(m) for m in media_ids])
            self.client.delete(self.name, points_selector=selector)

    def count(self) -> int:
        return self.client.count(self.name).count if self.client.collection_exists(self.name) else 0

    def search(self, vector: np.ndarray, limit: int = 10) -> list[dict]:
        if not self.client.collection_exists(self.name):
            raise LookupError(f"library {self.library!r} has no vector index yet: run the pipeline first")
        hits = self.client.query_points(self.name, query=np.asarray(vector, np.float32).tolist(), limit=limit)
        return [{"score": h.score, **(h.payload or {})} for h in hits.points]

    def drop(self) -> None:
        if self.client.collection_exists(self.name):
            self.client.delete_collection(self.name)


class VectorStore(ConfigurableResource):
    def client(self, library: str):
        raise NotImplementedError

    @contextmanager
    def index(self, library: str) -> Iterator[VectorIndex]:
        """The library's collection with one client, closed at the end (a step's work: `with store.index(lib)`)."""
        client = self.client(library)
        try:
            yield VectorIndex(client, library)
        finally:
            client.close()

    # one call, one client: for callers that do one thing (`similar`, tests)
    def upsert(self, library: str, media_ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict]) -> int:
        with self.index(library) as index:
            return index.upsert(media_ids, vectors, payloads)

    def delete(self, library: str, media_ids: Sequence[str]) -> None:
        with self.index(library) as index:
            index.delete(media_ids)

    def count(self, library: str) -> int:
        with self.index(library) as index:
            return index.count()

    def search(self, library: str, vector: np.ndarray, limit: int = 10) -> list[dict]:
        with self.index(library) as index:
            return index.search(vector, limit)

    def drop(self, library: str) -> None:
        with self.index(library) as index:
            index.drop()


class QdrantLocal(VectorStore):
    """Qdrant local mode: a folder per library under `path`, no server (one client at a time holds a folder)."""

    path: str
    busy_wait_s: float = 120.0

    def client(self, library: str):
        from qdrant_client import QdrantClient

        folder = Path(self.path) / library
        deadline, told = time.monotonic() + self.busy_wait_s, False
        while True:
            try:
                return QdrantClient(path=str(folder))
            except RuntimeError as exc:
                if "already accessed" not in str(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise VectorStoreBusy(
                        f"the vector index of {library!r} stayed open elsewhere for {self.busy_wait_s:.0f} s "
                        "(a run writing it, or another `similar`); try again when it is done"
                    ) from None
                if not told:
                    log.warning(f"the vector index of {library!r} is open elsewhere (a run writing it?): waiting")
                    told = True
                time.sleep(0.2)


class QdrantServer(VectorStore):
    """A Qdrant server. `api_key` is given as `EnvVar("TAGSMITH_QDRANT_API_KEY")`, never as the key itself,
    so the key is in no config, run record or Dagster UI page."""

    url: str
    api_key: str | None = None

    def client(self, library: str):
        from qdrant_client import QdrantClient

        # Inside a run Dagster has resolved the EnvVar; called directly (the CLI's `similar`) we resolve it.
        api_key = self.api_key.get_value() if isinstance(self.api_key, EnvVar) else self.api_key
        return QdrantClient(url=self.url, api_key=api_key)
