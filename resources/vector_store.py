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
from collections.abc import Sequence
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


class VectorStore(ConfigurableResource):
    def client(self, library: str):
        raise NotImplementedError

    def upsert(self, library: str, media_ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict]) -> int:
        from qdrant_client import models

        client = self.client(library)
        try:
            name = collection_name(library)
            dim = int(vectors.shape[1])
            if client.collection_exists(name):
                size = client.get_collection(name).config.params.vectors.size
                if size != dim:  # the library switched backbones: the old vectors cannot be compared
                    client.delete_collection(name)
            if not client.collection_exists(name):
                client.create_collection(
                    name, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE)
                )
            batch = 512
            for start in range(0, len(media_ids), batch):
                stop = start + batch
                client.upsert(
                    name,
                    points=models.Batch(
                        ids=[point_id(m) for m in media_ids[start:stop]],
                        vectors=vectors[start:stop].astype(np.float32).tolist(),
                        payloads=list(payloads[start:stop]),
                    ),
                )
            return len(media_ids)
        finally:
            client.close()

    def delete(self, library: str, media_ids: Sequence[str]) -> None:
        """Remove photos that left the library (deleted or replaced files), so `similar` never returns them."""
        from qdrant_client import models

        client = self.client(library)
        try:
            if media_ids and client.collection_exists(collection_name(library)):
                selector = models.PointIdsList(points=[point_id(m) for m in media_ids])
                client.delete(collection_name(library), points_selector=selector)
        finally:
            client.close()

    def count(self, library: str) -> int:
        client = self.client(library)
        try:
            name = collection_name(library)
            return client.count(name).count if client.collection_exists(name) else 0
        finally:
            client.close()

    def search(self, library: str, vector: np.ndarray, limit: int = 10) -> list[dict]:
        client = self.client(library)
        try:
            name = collection_name(library)
            if not client.collection_exists(name):
                raise LookupError(f"library {library!r} has no vector index yet: run the pipeline first")
            hits = client.query_points(name, query=np.asarray(vector, np.float32).tolist(), limit=limit)
            return [{"score": h.score, **(h.payload or {})} for h in hits.points]
        finally:
            client.close()

    def drop(self, library: str) -> None:
        client = self.client(library)
        try:
            if client.collection_exists(collection_name(library)):
                client.delete_collection(collection_name(library))
        finally:
            client.close()


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
