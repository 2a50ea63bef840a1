from dagster import Definitions

from assets_defs.training.assets import catalog, examples

defs = Definitions(assets=[catalog, examples])
