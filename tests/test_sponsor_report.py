"""The sponsor report (ml/sponsor_figures.py, ml/sponsor_report.py) on a small event built in memory.

Three sponsors: Zed only in videos, a sponsor named `<script>` only in photos, Acme in both (one photo with two
Acme boxes, two photos named p1.jpg, overlapping, touching and over-running segments). Figures are checked
to the exact number; the pages for links, inlined thumbnails and escaping; then index.html and a sponsor
page are rendered in headless Chromium and the screenshots checked for size and content.
"""

import base64
import io
import re
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ml.sponsor_report import (
    export_photo_set,
    merge_stretches,
    render_event_report,
    sponsor_figures,
    sponsor_page_name,
    thumbnail_with_box,
    zip_name_of,
)
from tagsmith.browser import BrowserMissing, find_chromium, screenshot

EVIL = "<script>alert(1)</script>"
SPONSORS = {"acme": "Acme", "xss": EVIL, "zed": "Zed & Co"}
PHOTOS = {  # file -> [(tag, score, box)]
    "p1.jpg": [
        ("acme", 0.9, (0.1, 0.1, 0.3, 0.2)),
        ("acme", 0.6, (0.6, 0.6, 0.2, 0.2)),
        ("xss", 0.7, (0.5, 0.1, 0.3, 0.3)),
    ],
    "p2.jpg": [("acme", 0.8, (0.2, 0.5, 0.4, 0.3))],
    "day2/p1.jpg": [("acme", 0.5, (0.3, 0.3, 0.3, 0.3))],
    "p3.jpg": [("xss", 0.95, (0.4, 0.4, 0.5, 0.4))],
    "p4.jpg": [("not-a-sponsor", 0.99, (0.0, 0.0, 1.0, 1.0))],
}
VIDEOS = [("v1", "videos/keynote.mp4", 60.0), ("v2", "videos/after party.mp4", 30.0)]
SEGMENTS = [  # (video, tag, start, end, peak)
    ("v1", "acme", 0.0, 10.0, 0.7),
    ("v1", "acme", 5.0, 15.0, 0.9),  # overlaps the one before: 0-15 once
    ("v1", "acme", 20.0, 25.0, 0.6),
    ("v1", "zed", 10.0, 30.0, 0.8),
    ("v2", "acme", 25.0, 40.0, 0.75),  # runs past the video's end (30 s): 5 s
    ("v2", "zed", 0.0, 5.0, 0.5),
    ("v2", "zed", 5.0, 8.0, 0.65),  # touches the one before: 0-8 once
    ("v1", "not-a-sponsor", 0.0, 60.0, 0.99),
]


def _photo(seed: int, boxes) -> Image.Image:
    """A 640x480 scene: a gradient, some shapes, and a coloured 'logo' in each box."""
    rng = np.random.default_rng(seed)
    base = np.linspace(40, 200, 640, dtype=np.float32)[None, :, None] * np.array([1.0, 0.8, 0.6], dtype=np.float32)
    image = Image.fromarray(np.broadcast_to(base, (480, 640, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.integers(0, 560), rng.integers(0, 400)
        draw.ellipse((x, y, x + 80, y + 80), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    for _, _, (bx, by, bw, bh) in boxes:
        draw.rectangle((bx * 640, by * 480, (bx + bw) * 640, (by + bh) * 480), fill=(200, 30, 40))
        draw.text((bx * 640 + 6, by * 480 + 6), "LOGO", fill=(255, 255, 255))
    return image


@pytest.fixture(scope="module")
def event(tmp_path_factory):
    root = tmp_path_factory.mktemp("event")
    hits = []
    for i, (name, boxes) in enumerate(PHOTOS.items()):
        path = root / "photos" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        _photo(i, boxes).save(path, "JPEG", quality=85)
        hits += [{"media_id": f"m{i}", "uri": str(path), "tag_id": t, "score": s, "box": b} for t, s, b in boxes]
    uris = dict((v, u) for v, u, _ in VIDEOS)
    segments = [
        {"media_id": v, "uri": uris[v], "tag_id": t, "start_s": a, "end_s": b, "peak_score": p}
        for v, t, a, b, p in SEGMENTS
    ]
    videos = [{"media_id": v, "uri": u, "duration_s": d} for v, u, d in VIDEOS]
    return {"root": root, "hits": hits, "segments": segments, "videos": videos}


def _thumbnail(uri, box):
    with Image.open(uri) as image:
        return thumbnail_with_box(image, box)


def _write(pages: dict[str, str], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_merge_stretches_counts_overlaps_once_and_clips():
    assert merge_stretches([(5, 15, 0.9), (0, 10, 0.7), (20, 25, 0.6)]) == [(0, 15, 0.9), (20, 25, 0.6)]
    assert merge_stretches([(0, 5, 0.5), (5, 8, 0.65)]) == [(0, 8, 0.65)]
    assert merge_stretches([(25, 40, 0.75), (-3, 2, 0.4), (31, 35, 0.9)], duration_s=30) == [
        (0, 2, 0.4),
        (25, 30, 0.75),
    ]


def test_figures_exact(event):
    fig = sponsor_figures(event["hits"], event["segments"], event["videos"], SPONSORS)
    rows = {r["tag_id"]: r for r in fig["sponsors"]}
    assert [r["tag_id"] for r in fig["sponsors"]] == ["zed", "acme", "xss"]  # most screen time first
    acme, xss, zed = rows["acme"], rows["xss"], rows["zed"]
    assert (acme["photos"], xss["photos"], zed["photos"]) == (3, 2, 0)  # p1's two Acme boxes: one photo
    assert acme["mean_score"] == pytest.approx((0.9 + 0.8 + 0.5) / 3) and acme["min_score"] == 0.5
    assert xss["mean_score"] == pytest.approx(0.825) and xss["min_score"] == 0.7
    assert zed["mean_score"] is None and zed["min_score"] is None
    assert acme["photo_set"][0]["box"] == (0.1, 0.1, 0.3, 0.2) and len(acme["photo_set"][0]["boxes"]) == 2
    assert (acme["video_appearances"], zed["video_appearances"], xss["video_appearances"]) == (4, 3, 0)
    assert (acme["videos"], zed["videos"], xss["videos"]) == (2, 2, 0)
    # acme: v1 union 0-15 + 20-25 = 20 s, v2 25-30 (clipped) = 5 s; zed: v1 20 s + v2 0-8 = 8 s
    assert acme["screen_time_s"] == pytest.approx(25.0) and zed["screen_time_s"] == pytest.approx(28.0)
    assert xss["screen_time_s"] == 0.0
    assert fig["photo_total"] == 5 and fig["screen_total_s"] == pytest.approx(53.0) and fig["found"]
    assert (acme["photo_share"], xss["photo_share"], zed["photo_share"]) == pytest.approx((0.6, 0.4, 0.0))
    assert acme["screen_share"] == pytest.approx(25 / 53) and zed["screen_share"] == pytest.approx(28 / 53)
    assert sum(r["photo_share"] for r in rows.values()) == pytest.approx(1.0)
    assert sum(r["screen_share"] for r in rows.values()) == pytest.approx(1.0)
    timelines = {v["media_id"]: v for v in fig["videos"]}
    assert timelines["v1"]["stretches"] == {"acme": [(0, 15, 0.9), (20, 25, 0.6)], "zed": [(10, 30, 0.8)]}
    assert timelines["v2"]["stretches"] == {"acme": [(25, 30, 0.75)], "zed": [(0, 8, 0.65)]}
    assert timelines["v2"]["duration_s"] == 30.0


def test_zero_sponsor_event(event, tmp_path):
    others = [h for h in event["hits"] if h["tag_id"] == "not-a-sponsor"]
    for sponsors in (SPONSORS, {}):
        fig = sponsor_figures(others, [], event["videos"], sponsors)
        assert not fig["found"] and fig["photo_total"] == 0 and fig["screen_total_s"] == 0
        assert all(r["photo_share"] is None and r["screen_share"] is None for r in fig["sponsors"])
        pages = render_event_report("Empty night", fig, _thumbnail)
        assert list(pages) == ["index.html"]
        assert "No sponsor found" in pages["index.html"]


def test_pages_links_thumbnails_and_escaping(event, tmp_path):
    fig = sponsor_figures(event["hits"], event["segments"], event["videos"], SPONSORS)
    pages = render_event_report("Launch <night>", fig, _thumbnail, generated_at="2026-12-06 11:00 UTC")
    assert set(pages) == {"index.html"} | {sponsor_page_name(t) for t in SPONSORS}
    folder = _write(pages, tmp_path / "report")

    class Refs(HTMLParser):
        def __init__(self):
            super().__init__()
            self.hrefs, self.srcs, self.tags = [], [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            attrs = dict(attrs)
            if tag == "a":
                self.hrefs.append(attrs["href"])
            if tag == "img":
                self.srcs.append(attrs["src"])

    n_images = 0
    for name, text in pages.items():
        refs = Refs()
        refs.feed(text)
        assert "script" not in refs.tags, name  # the sponsor named <script> injected nothing
        assert EVIL not in text and not re.search(r"https?://", text), name
        for href in refs.hrefs:  # pages link each other, and a sponsor's page its photo-set zip (the asset writes it)
            assert (folder / href).is_file() or href == zip_name_of(name), (name, href)
        for src in refs.srcs:
            assert src.startswith("data:image/jpeg;base64,"), (name, src[:40])
            Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).verify()
        n_images += len(refs.srcs)
    index = pages["index.html"]
    assert all(sponsor_page_name(t) in index for t in SPONSORS)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index and "Launch &lt;night&gt;" in index
    assert "<svg" in index and "60.0%" in index and "52.8%" in index  # shares in the chart (zed 28/53)
    assert n_images == 5  # 3 Acme photos + 2 of the <script> sponsor, none on the index
    zed = pages[sponsor_page_name("zed")]
    assert "No photos of this sponsor" in zed and "00:00:10–00:00:30" in zed and "28.0 s" in zed
    xss = pages[sponsor_page_name("xss")]
    assert "Not seen in any video" in xss and xss.count("<img") == 2
    acme = pages[sponsor_page_name("acme")]
    assert "00:00:00–00:00:15" in acme and "00:00:25–00:00:30" in acme and "25.0 s" in acme


def test_thumbnail_draws_the_box():
    image = Image.new("RGB", (480, 360), (20, 20, 120))
    jpeg = thumbnail_with_box(image, (0.25, 0.25, 0.5, 0.5), width=240)
    thumb = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(int)
    assert thumb.shape == (180, 240, 3)
    edge = thumb[45:135, 61]  # the box's left edge, inside the dark outline: yellow
    assert (edge[:, 0] > 180).mean() > 0.8 and (edge[:, 2] < 90).mean() > 0.8
    assert abs(thumb[90, 120] - [20, 20, 120]).max() < 25  # the inside untouched
    plain = np.asarray(Image.open(io.BytesIO(thumbnail_with_box(image, None))))
    assert plain.std(axis=(0, 1)).max() < 5  # no box: nothing drawn


def test_export_photo_set(event, tmp_path):
    fig = sponsor_figures(event["hits"], event["segments"], event["videos"], SPONSORS)
    acme = next(r for r in fig["sponsors"] if r["tag_id"] == "acme")
    dest = tmp_path / "out" / "acme.zip"
    hits = [h for h in event["hits"] if h["tag_id"] == "acme"]  # p1 twice (two boxes), p1.jpg of day 2
    names = export_photo_set(hits, dest, lambda uri: Path(uri).read_bytes())
    assert sorted(names) == ["p1-2.jpg", "p1.jpg", "p2.jpg"] and len(names) == acme["photos"]
    with zipfile.ZipFile(dest) as zf:
        assert sorted(zf.namelist()) == sorted(names)
        assert zf.read("p1.jpg") == Path(hits[0]["uri"]).read_bytes()
    assert not list(dest.parent.glob("*.partial"))


def test_screenshots_in_headless_chromium(event, tmp_path):
    try:
        find_chromium()
    except BrowserMissing as exc:
        pytest.fail(f"headless Chromium is a test dependency: {exc}")
    fig = sponsor_figures(event["hits"], event["segments"], event["videos"], SPONSORS)
    folder = _write(render_event_report("Launch night", fig, _thumbnail), tmp_path / "report")
    for page in ("index.html", sponsor_page_name("acme")):
        png = screenshot(folder / page)
        assert png.is_file(), page
        with Image.open(png) as shot:
            assert shot.size == (1280, 900), page
            pixels = np.asarray(shot.convert("L"), dtype=np.float32)
        assert pixels.std() > 10 and (pixels < 128).mean() > 0.005, page  # text, bars, photos: not blank


def test_missing_chromium_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrowserMissing, match="apt-get install"):
        find_chromium()
