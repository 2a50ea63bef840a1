"""Dagster's IO manager for assets that return a whole table of one library (a polars frame): `catalog` and
`tags`. Like `project_fully_featured`'s Parquet IO manager, it stores an asset's output where its table lives
(`<warehouse>/<library>/<table>.parquet`, the partition is the library) and loads it for downstream inputs.
It writes through the warehouse, so the table registry (resources/tables.py) checks the columns and the write
is atomic.

Where it does not fit, assets write through the warehouse themselves, and say so: tables built up
incrementally in parts (`embeddings`, written by the tasks as content-addressed files; `quarantine`, one part
per stage), and steps whose table is a by-product of their real output (`heads` returns its candidates to the
next step; its `head_versions` table is history, appended to).
"""

from __future__ import annotations

import polars as pl
from dagster import ConfigurableIOManager, InputContext, MetadataValue, OutputContext

from resources.warehouse import Warehouse


class TableIOManager(ConfigurableIOManager):
    warehouse: Warehouse

    @staticmethod
    def _table(context) -> str:
        return "_".join(context.asset_key.path)

    def handle_output(self, context: OutputContext, obj: pl.DataFrame) -> None:
        path = self.warehouse.write(context.partition_key, self._table(context), obj)
        context.add_output_metadata({"rows": obj.height, "path": MetadataValue.path(str(path))})

    def load_input(self, context: InputContext) -> pl.DataFrame:
        return self.warehouse.read(context.partition_key, self._table(context))
