"""Schedules: the nightly retag of every library (incremental: with nothing new it does almost nothing)."""

from dagster import DefaultScheduleStatus, RunRequest, ScheduleEvaluationContext, schedule

from assets_defs.partitions import library_partitions
from pipelines.jobs import tag_library_job


@schedule(job=tag_library_job, cron_schedule="0 2 * * *", default_status=DefaultScheduleStatus.STOPPED)
def nightly_retag(context: ScheduleEvaluationContext):
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    for name in context.instance.get_dynamic_partitions(library_partitions.name):
        yield RunRequest(partition_key=name, run_key=f"nightly:{name}:{day}")
