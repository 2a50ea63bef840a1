"""The video domain's assets, one module each: `video_frames` (frames.py), `video_segments` (segments.py),
`contact_sheets` (contact_sheets.py); the domain's `definitions.py` and other domains import them from here."""

from assets_defs.video.contact_sheets import contact_sheets
from assets_defs.video.frames import video_frames
from assets_defs.video.segments import video_segments

__all__ = ["contact_sheets", "video_frames", "video_segments"]
