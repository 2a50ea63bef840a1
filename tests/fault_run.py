"""`tagsmith` with a SIGKILL at one point: the fault injection of tests/test_concurrency.py.

    python tests/fault_run.py POINT run LIBRARY

POINT is where the process kills itself, as a crash or `kill -9` would:
  embedding  - after the first embedding part file is written (the rest of the library not embedded)
  table      - in the middle of writing the `tags` table (its temporary file half written, never renamed)
  qdrant     - after the first batch uploaded into the vector index (the local store open)
"""

from __future__ import annotations

import os
import signal
import sys


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _arm(point: str) -> None:
    if point == "embedding":
        import ml.embedding

        original = ml.embedding.write_embeddings

        def write_then_die(*args, **kwargs):
            original(*args, **kwargs)
            _die()

        ml.embedding.write_embeddings = write_then_die
    elif point == "table":
        from resources.warehouse import Warehouse

        original_write = Warehouse.write

        def half_write(self, library, table, df):
            if table != "tags":
                return original_write(self, library, table, df)
            path = self.table_path(library, table)
            df.head(max(1, df.height // 2)).write_parquet(path.with_suffix(f".tmp-{os.getpid()}"))
            _die()

        Warehouse.write = half_write
    elif point == "qdrant":
        from qdrant_client import QdrantClient

        original_upload = QdrantClient.upload_collection

        def upload_a_batch_then_die(self, collection_name, vectors, payload=None, ids=None, **kwargs):
            batch = kwargs.get("batch_size", 64)
            original_upload(self, collection_name, vectors[:batch], payload=payload[:batch], ids=ids[:batch],
                            **kwargs)
            _die()

        QdrantClient.upload_collection = upload_a_batch_then_die
    else:
        raise SystemExit(f"unknown fault point {point!r}")


if __name__ == "__main__":
    _arm(sys.argv[1])
    from tagsmith.cli import app

    app(sys.argv[2:])
