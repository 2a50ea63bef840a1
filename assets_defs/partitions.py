"""Partitions: one dynamic partition per library (tenant).

A library's assets materialise together; a backfill over libraries is Dagster's own backfill over these
partitions. Libraries are registered by `tagsmith init` and by the library sensor.
"""

from dagster import DynamicPartitionsDefinition

library_partitions = DynamicPartitionsDefinition(name="library")
