from dagster import Definitions

from assets_defs.tags.assets import tags, warehouse_views
from assets_defs.tags.regions import detections

defs = Definitions(assets=[detections, tags, warehouse_views])
