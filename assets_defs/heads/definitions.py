from dagster import Definitions

from assets_defs.heads.assets import evaluation_report, heads, promoted_heads

defs = Definitions(assets=[heads, evaluation_report, promoted_heads])
