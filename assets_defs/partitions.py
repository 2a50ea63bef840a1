"""Partitions: one dynamic partition per library (tenant), and per event for the sponsor reports.

A library's assets materialise together; a backfill over libraries is Dagster's own backfill over these
partitions. Libraries are registered by `tagsmith init` and by the library sensor. Events (library.yaml
`events:`) are registered by the event sensor and by `tagsmith report`; an event's sponsor report is one
(library, event) partition of `event_report_partitions`, so two libraries may each have an event of one name.
"""

from dagster import DynamicPartitionsDefinition, MultiPartitionsDefinition

library_partitions = DynamicPartitionsDefinition(name="library")
event_partitions = DynamicPartitionsDefinition(name="event")
event_report_partitions = MultiPartitionsDefinition({"library": library_partitions, "event": event_partitions})
