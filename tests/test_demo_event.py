"""The generated sponsor event: its catalog and examples validate, its logos are small and where the truth
says, and it is reproducible. Small counts keep the module to a few seconds; the defaults only draw more.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from ml.catalog import load_catalog, parse_examples_manifest
from ml.video import open_video
from tagsmith.demo_event import PHOTO_SIZE, VIDEO_FPS, VIDEO_SIZE, EventTruth, event_photo, write_demo_event
from tagsmith.demo_logos import SPONSORS, render_logo

SMALL = {"photos": 20, "examples_per_sponsor": 3, "none_examples": 3, "video_seconds": 20.0}


@pytest.fixture(scope="module")
def event(tmp_path_factory: pytest.TempPathFactory) -> EventTruth:
    return write_demo_event(tmp_path_factory.mktemp("event") / "ev", seed=5, **SMALL)


def test_catalog_and_manifest_validate(event: EventTruth) -> None:
    catalog = load_catalog(event.catalog_path)
    sponsors = [t for t in catalog.tags if t.facet == "sponsor"]
    assert catalog.multi_facets() == ["sponsor"]
    assert len(sponsors) >= 6 and all(t.identifiers == (t.name,) for t in sponsors)
    examples = parse_examples_manifest(event.examples_manifest, catalog)
    per_tag = Counter(e.tag_id for e in examples)
    assert per_tag == {**{s.tag_id: 3 for s in SPONSORS}, "none": 3}
    assert len(examples) == event.n_examples and all(e.facet == "sponsor" for e in examples)
    for e in examples[:5]:
        with Image.open(e.uri) as img:
            assert img.format == "JPEG" and img.size == (400, 300)
            assert not any(s.tag_id in Path(e.uri).name.lower() for s in SPONSORS)


def test_lookalike_pair_differs_only_in_the_word() -> None:
    pair = [s for s in SPONSORS if s.lookalike]
    assert len(pair) == 2 and pair[0].lookalike == pair[1].tag_id
    assert pair[0][2:6] == pair[1][2:6] and pair[0].name != pair[1].name  # shape, plate, mark, ink
    a, b = (np.asarray(render_logo(SPONSORS.index(s), 80), np.int16) for s in pair)
    graphic = slice(0, 70)  # the left square holds the graphic, the word starts right of it
    assert np.abs(a[:, graphic] - b[:, graphic]).max() == 0
    assert np.abs(a[:, 80:] - b[:, 80:]).mean() > 5


def test_event_photo_counts_and_box_sizes(event: EventTruth) -> None:
    counts = [len(boxes) for boxes in event.photos.values()]
    assert len(counts) == SMALL["photos"]
    assert sum(c == 0 for c in counts) >= 0.25 * len(counts)
    assert any(c >= 2 for c in counts) and max(counts) <= 3
    for boxes in event.photos.values():
        for box in boxes:
            assert 0.008 <= box.w * box.h <= 0.06, box
            assert 0 <= box.x and box.x + box.w <= 1 and 0 <= box.y and box.y + box.h <= 1
        assert len({b.tag_id for b in boxes}) == len(boxes)
    for name in event.photos:
        with Image.open(event.root / "event" / "photos" / name) as img:
            assert img.format == "JPEG" and img.size == PHOTO_SIZE


def test_truth_csv_matches_memory(event: EventTruth, read_csv) -> None:
    header, rows = read_csv(event.root / "event" / "truth_photos.csv")
    assert header == ["file", "tag_id", "x", "y", "w", "h"]
    from_csv: dict[str, list[tuple]] = {}
    for r in rows:
        boxes = from_csv.setdefault(r["file"], [])
        if r["tag_id"]:
            boxes.append((r["tag_id"], *(float(r[k]) for k in "xywh")))
        else:
            assert not any(r[k] for k in "xywh")
    assert from_csv == {name: [tuple(b) for b in boxes] for name, boxes in event.photos.items()}
    header, rows = read_csv(event.root / "event" / "truth_video.csv")
    assert header == ["file", "tag_id", "start_s", "end_s"]
    assert [(r["tag_id"], float(r["start_s"]), float(r["end_s"])) for r in rows] == [
        (s.tag_id, s.start_s, s.end_s) for s in event.video
    ]


def test_truth_boxes_are_where_the_logos_are(event: EventTruth) -> None:
    """The same photo drawn without its logos differs inside each truth box, and nowhere far outside."""
    width, height = PHOTO_SIZE
    checked = 0
    for index, (name, boxes) in enumerate(event.photos.items()):
        if not boxes or checked >= 4:
            continue
        checked += 1
        with_logos, again = event_photo(5, index, len(boxes))
        without, _ = event_photo(5, index, len(boxes), draw_logos=False)
        assert again == boxes, name
        diff = np.abs(np.asarray(with_logos, np.int16) - np.asarray(without, np.int16)).max(axis=2) > 30
        near = np.zeros_like(diff)
        for b in boxes:
            x0, y0 = int(b.x * width), int(b.y * height)
            x1, y1 = int(round((b.x + b.w) * width)), int(round((b.y + b.h) * height))
            assert diff[y0:y1, x0:x1].mean() > 0.15, (name, b)
            near[max(0, y0 - 4) : y1 + 4, max(0, x0 - 4) : x1 + 4] = True
        assert diff[~near].sum() == 0, name
    assert checked == 4


def test_same_seed_same_bytes_other_seed_differs(event: EventTruth, tmp_path: Path, tree_digest) -> None:
    again = write_demo_event(tmp_path / "again", seed=5, **SMALL)
    assert tree_digest(again.root) == tree_digest(event.root)
    other = write_demo_event(tmp_path / "other", seed=6, **{**SMALL, "video_seconds": 10.0})
    one, two = (r / "event" / "photos" / "EVENT_0001.jpg" for r in (event.root, other.root))
    assert one.read_bytes() != two.read_bytes()
    assert other.photos != event.photos


def test_video_decodes_and_truth_fits(event: EventTruth) -> None:
    duration = SMALL["video_seconds"]
    with av.open(str(event.video_path)) as container:
        frames = [f for f in container.decode(video=0)]
    assert len(frames) == event.video_frames == int(duration * VIDEO_FPS)
    assert (frames[0].width, frames[0].height) == VIDEO_SIZE
    reader = open_video(str(event.video_path))
    try:
        assert abs(reader.info.duration_s - duration) < 0.5
    finally:
        reader.close()
    assert event.video and all(0 <= s.start_s < s.end_s <= duration for s in event.video)
    on_screen = [sum(s.start_s <= t / VIDEO_FPS < s.end_s for s in event.video) for t in range(len(frames))]
    assert min(on_screen) == 0 and max(on_screen) == 2
