from dagster import Definitions

from assets_defs.backbones.assets import backbone_choice

defs = Definitions(assets=[backbone_choice])
