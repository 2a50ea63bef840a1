from dagster import Definitions

from assets_defs.heads.assets import heads
from assets_defs.heads.evaluation import evaluation_report, promoted_heads

defs = Definitions(assets=[heads, evaluation_report, promoted_heads])
