"""Small helpers the asset domains share: chunking, progress logs, the quarantine table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import polars as pl
from dagster import AssetKey, AssetOut, AssetSpec, MaterializeResult, MetadataValue, Nothing, Output, multi_asset

from assets_defs.partitions import library_partitions
from resources.tables import asset_path, side_tables, table_of
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


def table_specs(asset: str, deps=(), group_name: str | None = None) -> list[AssetSpec]:
    """The asset specs of the tables `asset` writes besides its own (resources/tables.py says which), for its
    `multi_asset`: the asset graph then shows each table, its writer and its readers. They share the writer's
    deps, so a selection that reaches the writer reaches them."""
    return [
        AssetSpec(asset_path(p), deps=list(deps), group_name=group_name, kinds={"parquet"},
                  description=f"One row per {table_of(p).row} (written by `{asset}`)", skippable=True)
        for p in side_tables(asset)
    ]


def writes_tables(
    asset: str,
    deps=(),
    group_name: str | None = None,
    kinds: set[str] | None = None,
    partitions_def=library_partitions,
    **kwargs,
):
    """The `multi_asset` decorator of a per-library step that writes `asset`'s table and its side tables
    (`table_specs`): one spec each, the same deps, never materialised apart. `kwargs` go to `multi_asset`
    (`ins` of a step that also takes an IO-managed input). `partitions_def`: per library unless said (the
    sponsor report is per (library, event))."""
    return multi_asset(
        specs=[
            AssetSpec(asset, deps=list(deps), group_name=group_name, kinds=kinds or {"parquet"}),
            *table_specs(asset, deps=deps, group_name=group_name),
        ],
        partitions_def=partitions_def,
        can_subset=False,
        **kwargs,
    )


def table_outs(asset: str, group_name: str) -> dict[str, AssetOut]:
    """`table_specs` for a multi_asset that returns a value to an IO manager (`heads` and its verdicts): one
    output per side table, of type Nothing (the table is written through the warehouse, not stored again)."""
    return {
        p: AssetOut(key=AssetKey(asset_path(p)), group_name=group_name, kinds={"parquet"}, dagster_type=Nothing,
                    description=f"One row per {table_of(p).row} (written by `{asset}`)", is_required=False)
        for p in side_tables(asset)
    }


def _table_metadata(warehouse: Warehouse, library: str, part: str) -> dict:
    files = warehouse.files(library, part)
    rows = sum(pl.scan_parquet(f).select(pl.len()).collect().item() for f in files) if files else 0
    meta = {"rows": rows, "files": len(files)}
    if len(files) == 1:
        meta["path"] = MetadataValue.path(files[0])
    return meta


def table_results(warehouse: Warehouse, library: str, asset: str):
    """A materialization of every side table `asset` wrote (rows and file), to yield after its own."""
    for part in side_tables(asset):
        yield MaterializeResult(asset_key=asset_path(part), metadata=_table_metadata(warehouse, library, part))


def table_outputs(warehouse: Warehouse, library: str, asset: str):
    """`table_results` for a multi_asset built with `table_outs`."""
    for part in side_tables(asset):
        yield Output(None, output_name=part, metadata=_table_metadata(warehouse, library, part))
