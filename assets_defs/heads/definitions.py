from dagster import Definitions

from assets_defs.heads.assets import heads, promoted_heads

defs = Definitions(assets=[heads, promoted_heads])
