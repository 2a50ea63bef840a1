from dagster import Definitions

from assets_defs.media.assets import media

defs = Definitions(assets=[media])
