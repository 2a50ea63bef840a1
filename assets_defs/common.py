"""Small helpers the asset domains share: chunking, progress logs, the quarantine table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import polars as pl

from resources.tables import table_of
from resources.warehouse import Warehouse


def usable(media_table: pl.DataFrame, kind: str) -> pl.DataFrame:
    """Media rows of one kind ('image' or 'video') that passed inspection."""
    return media_table.filter((pl.col("status") == "ok") & (pl.col("kind") == kind))


def chunked(items: Sequence, size: int) -> list[Sequence]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def progress(context, what: str):
    """A callback for TaskRunner.map that logs progress about every 10% (the Dagster UI shows the logs)."""
    state = {"last": -1}

    def on_result(done: int, total: int) -> None:
        step = max(1, total // 10)
        if done == total or done // step != state["last"]:
            state["last"] = done // step
            context.log.info(f"{what}: {done}/{total} tasks done")

    return on_result


def stage_quarantine(warehouse: Warehouse, library: str, stage: str) -> list[dict]:
    """The rows one stage quarantined on its last run (its own part of the `quarantine` table)."""
    part = warehouse.read(library, f"quarantine_{stage}")
    return part.to_dicts()


def record_quarantine(warehouse: Warehouse, library: str, stage: str, rows: list[dict]) -> pl.DataFrame:
    """Replace this stage's quarantine rows with `rows` ({uri, media_id, reason}) and return the whole table.

    Each stage writes a file of its own (`quarantine_<stage>.parquet`), and `quarantine` is read as their
    union (`Warehouse.read`, the view): no two assets read-modify-write one table, so their writes never race.
    """
    old = warehouse.read(library, f"quarantine_{stage}")
    new = pl.DataFrame(
        [
            {
                "uri": r["uri"],
                "media_id": r.get("media_id"),
                "reason": r["reason"],
                "stage": stage,
                "seen_at": r.get("seen_at") or now_iso(),
            }
            for r in rows
        ],
        schema=table_of("quarantine").columns,
    )
    new = new.unique(["uri", "reason"], keep="first", maintain_order=True)  # a retried failure is one row
    if old.height:  # keep the first time a file was seen failing
        seen = {(u, r): s for u, r, s in old.select("uri", "reason", "seen_at").rows()}
        new = new.with_columns(
            pl.struct("uri", "reason", "seen_at")
            .map_elements(lambda s: seen.get((s["uri"], s["reason"]), s["seen_at"]), return_dtype=pl.String)
            .alias("seen_at")
        )
    warehouse.write(library, f"quarantine_{stage}", new)
    warehouse.table_path(library, "quarantine").unlink(missing_ok=True)  # the one-file table of older runs
    return warehouse.read(library, "quarantine")
