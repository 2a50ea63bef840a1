from dagster import Definitions

from assets_defs.tags.assets import tags, warehouse_views

defs = Definitions(assets=[tags, warehouse_views])
