from dagster import Definitions

from assets_defs.video.assets import contact_sheets, video_frames, video_segments

defs = Definitions(assets=[contact_sheets, video_frames, video_segments])
