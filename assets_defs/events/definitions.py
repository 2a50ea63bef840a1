from dagster import Definitions

from assets_defs.events.assets import sponsor_report

defs = Definitions(assets=[sponsor_report])
