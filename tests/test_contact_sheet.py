"""Contact sheets: which frames are shown, and what the page says."""

import io

from PIL import Image

from ml.contact_sheet import pick_thumbnail_times, render_contact_sheet, thumbnail_jpeg


def test_scene_changes_and_segment_starts_are_always_shown():
    frames = [(float(t), "interval") for t in range(1000)] + [(10.4, "scene-change"), (500.2, "scene-change")]
    picked = pick_thumbnail_times(frames, segment_starts=[42.0], max_thumbs=20)
    assert len(picked) == 20 and picked == sorted(picked)
    assert {10.4, 500.2, 42.0} <= set(picked)
    assert picked[0] == 0.0  # the rest is spread from the start
    assert pick_thumbnail_times(frames[:5], max_thumbs=20) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert pick_thumbnail_times(frames, max_thumbs=0) == []


def test_sheet_shows_segments_frames_and_escapes_names():
    jpeg = thumbnail_jpeg(Image.new("RGB", (640, 360), (200, 30, 30)), width=96)
    assert Image.open(io.BytesIO(jpeg)).size == (96, 54)
    frames = [
        {"ts": 0.0, "reason": "interval", "tags": [("product", "p1", 0.91)]},
        {"ts": 4.4, "reason": "scene-change", "tags": [("product", "p2", 0.42), ("colorway", None, None)]},
    ]
    segments = [
        {"facet": "product", "tag_id": "p1", "start_s": 0.0, "end_s": 4.4, "peak_score": 0.91, "status": "applied"},
        {"facet": "product", "tag_id": "p2", "start_s": 4.4, "end_s": 5.0, "peak_score": 0.42, "status": "review"},
    ]
    page = render_contact_sheet(
        "event.mp4", 5.0, frames, segments, {0.0: jpeg, 4.4: jpeg}, tag_names={"p1": "Aurora <Shell>", "p2": "Bay"}
    )
    assert "Aurora &lt;Shell&gt;" in page and "<Shell>" not in page
    assert page.count("data:image/jpeg;base64,") == 2
    assert "00:00:04.4" in page and "scene change" in page
    assert 'fill="url(#hatch)"' in page  # the review segment is hatched
    assert "1 segments applied, 1 to review" in page
    assert "colorway: nothing recognised" in page
