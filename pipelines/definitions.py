"""The Definitions `dagster dev` loads (workspace.yaml): domain definitions merged, executor set once."""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from assets_defs.backbones.definitions import defs as backbones_defs
from assets_defs.embeddings.definitions import defs as embeddings_defs
from assets_defs.events.definitions import defs as events_defs
from assets_defs.finetune.definitions import defs as finetune_defs
from assets_defs.heads.definitions import defs as heads_defs
from assets_defs.keypoints.definitions import defs as keypoints_defs
from assets_defs.media.definitions import defs as media_defs
from assets_defs.ocr.definitions import defs as ocr_defs
from assets_defs.search.definitions import defs as search_defs
from assets_defs.tags.definitions import defs as tags_defs
from assets_defs.training.definitions import defs as training_defs
from assets_defs.video.definitions import defs as video_defs
from pipelines.jobs import retag_job, retrain_heads_job, sponsor_report_job, tag_library_job
from pipelines.schedules import nightly_retag
from pipelines.sensors import event_report_sensor, library_sensor
from resources import build_resources


def build_definitions(env=None) -> Definitions:
    # In-process executor: the heavy work already fans out on Ray, and one process per step would reload
    # torch/onnxruntime for every step.
    return Definitions.merge(
        media_defs,
        training_defs,
        finetune_defs,
        backbones_defs,
        embeddings_defs,
        ocr_defs,
        keypoints_defs,
        heads_defs,
        tags_defs,
        search_defs,
        video_defs,
        events_defs,
        Definitions(
            jobs=[tag_library_job, retrain_heads_job, retag_job, sponsor_report_job],
            schedules=[nightly_retag],
            sensors=[library_sensor, event_report_sensor],
            resources=build_resources(env),
            executor=in_process_executor,
        ),
    )


defs = build_definitions()
