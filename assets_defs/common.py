"""Small helpers the asset domains share: chunking, progress logs, the quarantine table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import polars as pl

from resources.warehouse import Warehouse

QUARANTINE_SCHEMA = {
    "uri": pl.String,
    "media_id": pl.String,
    "reason": pl.String,
    "stage": pl.String,
    "seen_at": pl.String,
}


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


def record_quarantine(warehouse: Warehouse, library: str, stage: str, rows: list[dict]) -> pl.DataFrame:
    """Replace this stage's quarantine rows with `rows` ({uri, media_id, reason}); other stages stay."""
    old = warehouse.read(library, "quarantine")
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
        schema=QUARANTINE_SCHEMA,
    )
    new = new.unique(["uri", "reason"], keep="first", maintain_order=True)  # a retried failure is one row
    if old is not None:
        kept_old = old.filter(pl.col("stage") != stage)
        # keep the first time a file was seen failing
        seen = {(u, r): s for u, r, s in old.filter(pl.col("stage") == stage).select("uri", "reason", "seen_at").rows()}
        new = new.with_columns(
            pl.struct("uri", "reason", "seen_at")
            .map_elements(lambda s: seen.get((s["uri"], s["reason"]), s["seen_at"]), return_dtype=pl.String)
            .alias("seen_at")
        )
        new = pl.concat([kept_old, new])
    warehouse.write(library, "quarantine", new)
    return new
