from dagster import Definitions

from assets_defs.video.assets import video_frames, video_segments

defs = Definitions(assets=[video_frames, video_segments])
