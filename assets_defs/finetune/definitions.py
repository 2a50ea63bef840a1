from dagster import Definitions

from assets_defs.finetune.assets import finetuned_backbone

defs = Definitions(assets=[finetuned_backbone])
