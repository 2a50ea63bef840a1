from dagster import Definitions

from assets_defs.keypoints.assets import keypoints

defs = Definitions(assets=[keypoints])
