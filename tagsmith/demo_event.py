"""A generated sponsor event whose truth is known: for testing sponsor-logo recognition (issue 14).

Three things, drawn from the sponsors of `tagsmith/demo_logos.py`:
- example photos, what a team hands over per sponsor: the logo large (10-40 % of the frame) on a banner, a
  shirt or a cup, in varied light, angle, blur and JPEG quality; plus "none" examples (event clutter, blank
  boards, signs with other words) labelled with the reserved tag `none`;
- event photos: a crowd and a stage, 0-3 logos each, small (1-5 % of the frame), rotated, keystoned,
  sometimes partly hidden by a head, a pole or a raised flag (at most 30 % of the logo); the truth is each
  logo's *visible* bounding box;
- an event video, logos small on boards, switched on and off at known times, sometimes two at once.

Every photo has its own RNGs keyed by (seed, stream, index), so a seed gives the same bytes on the same
Pillow/libjpeg/x264 build and the order things are written in never changes one. An event photo draws its
background, its logo placements and its camera from three separate streams, so the same photo can be drawn
without its logos (`event_photo(..., draw_logos=False)`) and differs only where the logos were.

Not wired into `tagsmith demo` yet: `write_demo_event` writes a folder of its own.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import yaml
from PIL import Image, ImageDraw

from ml.catalog import NONE_TAG
from ml.video import write_h264
from tagsmith.demo_logos import (
    LOGO_ASPECT,
    SPONSORS,
    Box,
    Op,
    Placed,
    build_sponsor_catalog,
    corners,
    draw_sign,
    event_background,
    finish_photo,
    homography,
    mask_bbox,
    place_logo,
    render_logo,
    scale_for_area,
    try_occluder,
    unit_quad,
    warp,
)
from tagsmith.demo_products import Rng, _colour, background, jpeg_bytes
from tagsmith.demo_video import ENCODE

EXAMPLE_SIZE = (400, 300)
PHOTO_SIZE = (640, 480)
VIDEO_SIZE = (640, 360)
VIDEO_FPS = 5
SURFACES = ("banner", "shirt", "cup")
_PAD = 20  # the video's frames are crops of a larger scene, shaken by up to this many pixels


class LogoBox(NamedTuple):
    """A logo in a photo: its visible bounding box, normalised to the frame (x, y top-left)."""

    tag_id: str
    x: float
    y: float
    w: float
    h: float


class VideoStretch(NamedTuple):
    file: str
    tag_id: str
    start_s: float  # on screen from start_s (inclusive) to end_s (exclusive)
    end_s: float


@dataclass
class EventTruth:
    root: Path
    catalog_path: Path
    examples_manifest: Path
    photos: dict[str, list[LogoBox]]  # file in event/photos -> its logos ([] = no logo)
    video: list[VideoStretch]
    video_path: Path
    video_duration_s: float
    video_frames: int
    n_examples: int
    seconds: float  # how long writing it took
    event_dir: Path  # photos/, video/ and the truth CSVs


# --- example photos ---------------------------------------------------------------------------------
def _surface(kind: str, content: Image.Image, rng: Rng) -> tuple[Image.Image, tuple[int, int]]:
    """`content` (a logo, or a blank board) printed on a banner, a shirt or a cup: the object and where the
    content's top-left corner is on it."""
    lw, lh = content.size
    if kind == "banner":
        px, py = int(0.08 * lw) + 2, int(0.25 * lh) + 2
        obj = Image.new("RGBA", (lw + 2 * px, lh + 2 * py), (*_colour(rng, 150, 255), 255))
        draw, g = ImageDraw.Draw(obj), max(2, lh // 12)
        for gx in (px // 2, lw + px + px // 2):
            for gy in (py // 2, lh + py + py // 2):
                draw.ellipse((gx - g, gy - g, gx + g, gy + g), fill=(90, 90, 90))
        offset = (px, py)
    elif kind == "shirt":
        cw = int(lw / 0.55)
        ch = int(cw * 1.05)
        obj = Image.new("RGBA", (cw, ch), (0, 0, 0, 0))
        draw = ImageDraw.Draw(obj)
        outline = [(0.30, 0.0), (0.40, 0.03), (0.60, 0.03), (0.70, 0.0), (1.0, 0.18), (0.88, 0.38), (0.80, 0.30),
                   (0.80, 1.0), (0.20, 1.0), (0.20, 0.30), (0.12, 0.38), (0.0, 0.18)]
        draw.polygon([(x * cw, y * ch) for x, y in outline], fill=_colour(rng))
        draw.ellipse((0.40 * cw, -0.05 * ch, 0.60 * cw, 0.06 * ch), fill=(0, 0, 0, 0))
        offset = ((cw - lw) // 2, int(0.2 * ch))
    else:  # a cup: the print is shaded as a cylinder is
        body = int(lw / 0.8)
        cw, ch = int(body * 1.3), int(lh * 2.6)
        obj = Image.new("RGBA", (cw, ch), (0, 0, 0, 0))
        draw = ImageDraw.Draw(obj)
        colour = _colour(rng, 120, 255)
        draw.ellipse((body - 0.15 * body, 0.2 * ch, cw - 2, 0.75 * ch), outline=colour, width=max(3, body // 12))
        draw.rounded_rectangle((0, 0, body, ch - 1), radius=body // 10, fill=colour)
        offset = ((body - lw) // 2, (ch - lh) // 2)
    obj.alpha_composite(content, offset)
    if kind == "cup":
        arr = np.asarray(obj, np.float32).copy()
        x = np.arange(obj.width, dtype=np.float32) / (obj.width / 1.3)
        arr[..., :3] *= np.clip(0.55 + 0.55 * np.sin(np.pi * np.clip(x, 0, 1)), 0.55, 1.05)[None, :, None]
        obj = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGBA")
    return obj, offset


def _blank(rng: Rng, size: tuple[int, int]) -> Image.Image:
    """What a "none" example shows where a logo would be: a plain board, or a sign with another word."""
    img = Image.new("RGBA", size, (*_colour(rng, 40, 250), 255))
    if rng.random() < 0.6:
        draw_sign(ImageDraw.Draw(img), rng, (0, 0, size[0] - 1, size[1] - 1))
    return img


def example_photo(seed: int, stream: int, index: int, sponsor: int | None) -> Image.Image:
    """One example photo: sponsor's logo (None: no logo) on a surface, 10-40 % of the frame, on an event or
    room background."""
    rng = np.random.default_rng([seed, 40, stream, index])
    width, height = EXAMPLE_SIZE
    if rng.random() < 0.6:
        img = event_background(rng, width, height)
    else:
        top = (width - height) // 2
        img = background(rng, width, True).crop((0, top, width, top + height))
    img = img.convert("RGBA")
    unit = unit_quad(rng, 20, 0.25)
    scale = scale_for_area(unit, rng.uniform(0.10, 0.40) * width * height)
    lh = max(8, int(round(scale)))
    content = render_logo(sponsor, lh) if sponsor is not None else _blank(rng, (int(round(lh * LOGO_ASPECT)), lh))
    obj, (ox, oy) = _surface(SURFACES[int(rng.integers(len(SURFACES)))], content, rng)
    quad = unit * scale
    lo, hi = -quad.min(axis=0) + 2, np.array([width, height]) - quad.max(axis=0) - 2
    centre = np.where(hi >= lo, rng.uniform(lo, np.maximum(lo, hi)), (lo + hi) / 2)
    to_frame = homography(corners(*content.size), quad + centre) @ np.array([[1, 0, -ox], [0, 1, -oy], [0, 0, 1]])
    img.alpha_composite(warp(obj, to_frame, EXAMPLE_SIZE))
    return finish_photo(img.convert("RGB"), rng, blur=1.5)


# --- event photos -----------------------------------------------------------------------------------
def event_photo(seed: int, index: int, n_logos: int, *, draw_logos: bool = True
                ) -> tuple[Image.Image, list[LogoBox]]:
    """Event photo `index` with up to `n_logos` logos (fewer only when one finds no free place) and their
    visible boxes. With draw_logos=False the same photo is drawn, occluders included, without the logos."""
    bg_rng, logo_rng, camera_rng = (np.random.default_rng([seed, 30, index, k]) for k in range(3))
    width, height = PHOTO_SIZE
    img = event_background(bg_rng, width, height).convert("RGBA")
    placed: list[tuple[Placed, np.ndarray]] = []
    avoid: list[Box] = []
    occluders: list[Op] = []
    hidden = np.zeros((height, width), bool)
    for sponsor in logo_rng.choice(len(SPONSORS), n_logos, replace=False):
        logo = place_logo(logo_rng, int(sponsor), PHOTO_SIZE, logo_rng.uniform(0.013, 0.045), 25, 0.35, avoid,
                          gap=12, top=0.1)
        if logo is None:
            continue
        alpha = np.asarray(logo.layer.getchannel("A")) > 96
        placed.append((logo, alpha))
        avoid.append(logo.box)
        if logo_rng.random() < 0.4:
            found = try_occluder(logo_rng, logo, alpha, PHOTO_SIZE, avoid[:-1])
            if found is not None:
                occluders.append(found[0])
                hidden |= found[1]
                avoid.append(Image.fromarray(found[1]).getbbox())
    if draw_logos:
        for logo, _ in placed:
            img.alpha_composite(logo.layer)
    draw = ImageDraw.Draw(img)
    for method, xy, fill in occluders:
        getattr(draw, method)(xy, fill=fill)
    boxes = []
    for logo, alpha in placed:
        x0, y0, x1, y1 = mask_bbox(alpha & ~hidden)
        boxes.append(LogoBox(SPONSORS[logo.sponsor].tag_id, round(x0 / width, 4), round(y0 / height, 4),
                             round((x1 - x0) / width, 4), round((y1 - y0) / height, 4)))
    return finish_photo(img.convert("RGB"), camera_rng), boxes


def logo_counts(rng: Rng, n: int) -> list[int]:
    """How many logos each of n photos holds: 30 % none, some with two or three, shuffled."""
    k0, k2, k3 = int(np.ceil(0.3 * n)), max(1, round(0.22 * n)), round(0.13 * n)
    return [int(c) for c in rng.permutation([0] * k0 + [1] * max(0, n - k0 - k2 - k3) + [2] * k2 + [3] * k3)]


# --- the event video --------------------------------------------------------------------------------
class _Stretch(NamedTuple):
    sponsor: int
    start_s: float
    end_s: float


class _Shot:
    """One camera shot: a fixed scene, boards switching sponsors on and off, a little camera shake."""

    def __init__(self, start_s: float, end_s: float, rng: Rng, n_logos: int):
        self.start_s, self.end_s = start_s, end_s
        width, height = VIDEO_SIZE
        big = (width + 2 * _PAD, height + 2 * _PAD)
        self.background = event_background(rng, *big).convert("RGBA")
        self.stretches: list[_Stretch] = []
        self.layers: list[Image.Image] = []
        avoid: list[Box] = []
        length = end_s - start_s
        for sponsor in rng.choice(len(SPONSORS), n_logos, replace=False):
            on = start_s + (round(rng.uniform(0.5, 0.35 * length), 1) if rng.random() < 0.5 else 0.0)
            off = end_s - (round(rng.uniform(0.5, 0.35 * length), 1) if rng.random() < 0.5 else 0.0)
            area = rng.uniform(0.015, 0.04) * width * height / (big[0] * big[1])
            logo = place_logo(rng, int(sponsor), big, area, 12, 0.3, avoid, margin=_PAD + 4, top=0.1)
            if logo is not None:
                avoid.append(logo.box)
                self.stretches.append(_Stretch(int(sponsor), round(on, 2), round(off, 2)))
                self.layers.append(logo.layer)
        self.phase = rng.uniform(0, 2 * np.pi)
        self._composed: dict[tuple[int, ...], Image.Image] = {}

    def frame(self, t: float) -> np.ndarray:
        on = tuple(k for k, s in enumerate(self.stretches) if s.start_s <= t < s.end_s)
        if on not in self._composed:
            img = self.background.copy()
            for k in on:
                img.alpha_composite(self.layers[k])
            self._composed[on] = img.convert("RGB")
        dx = _PAD + int(round(0.6 * _PAD * np.sin(self.phase + 0.9 * t)))
        dy = _PAD + int(round(0.4 * _PAD * np.sin(1.7 * self.phase + 1.3 * t)))
        return np.asarray(self._composed[on].crop((dx, dy, dx + VIDEO_SIZE[0], dy + VIDEO_SIZE[1])))


def plan_event_video(seed: int, duration_s: float) -> list[_Shot]:
    """Shots of 4-9 s (cuts off the frame grid), at least one with no logo and one with two at once."""
    rng = np.random.default_rng([seed, 50])
    cuts, t = [0.0], 0.0
    while t < duration_s:
        t = min(duration_s, round(t + rng.uniform(4.0, 9.0), 1))
        t = duration_s if duration_s - t < 3.0 else t
        cuts.append(t)
    n = len(cuts) - 1
    counts = rng.permutation([0, 2] + [int(rng.choice([0, 1, 1, 2])) for _ in range(max(0, n - 2))])[:n]
    return [_Shot(a, b, np.random.default_rng([seed, 51, k]), int(c))
            for k, (a, b, c) in enumerate(zip(cuts[:-1], cuts[1:], counts, strict=True))]


def write_event_video(path: Path, seed: int, duration_s: float) -> tuple[list[VideoStretch], int]:
    """Encode the event video (H.264, VIDEO_FPS) and return its truth (a sponsor on screen across a cut is
    one stretch) and its frame count."""
    shots = plan_event_video(seed, duration_s)
    stamps = [round(i / VIDEO_FPS, 4) for i in range(int(round(duration_s * VIDEO_FPS)))]

    def frames():
        for t in stamps:
            yield next(s for s in shots if s.start_s <= t < s.end_s).frame(t)

    write_h264(str(path), frames(), VIDEO_FPS, gop=5 * VIDEO_FPS, options=ENCODE)
    rows: list[VideoStretch] = []
    for shot in shots:
        for s in shot.stretches:
            tag = SPONSORS[s.sponsor].tag_id
            k = next((i for i, r in enumerate(rows) if r.tag_id == tag and abs(r.end_s - s.start_s) < 1e-6), None)
            if k is None:
                rows.append(VideoStretch(path.name, tag, s.start_s, s.end_s))
            else:
                rows[k] = rows[k]._replace(end_s=s.end_s)
    return sorted(rows, key=lambda r: (r.start_s, r.tag_id)), len(stamps)


# --- the whole event --------------------------------------------------------------------------------
def _write_csv(path: Path, rows: list[list]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def write_demo_event(folder: Path, seed: int, *, photos: int = 60, examples_per_sponsor: int = 12,
                     none_examples: int = 12, video_seconds: float = 36.0, event_dir: str = "event") -> EventTruth:
    """Write the event under `folder` and return its truth:

    sponsors.yaml               the sponsor catalog (facet `sponsor`, multi by default; `none` labels the none examples)
    examples/SPONSOR_*.jpg      example photos, file names shuffled so they leak no label
    examples/manifest.csv       path,tag_id,facet (paths relative to the manifest, as ml/catalog.py reads them)
    event/photos/EVENT_*.jpg    event photos, 640x480
    event/truth_photos.csv      file,tag_id,x,y,w,h: a row per logo (visible box, normalised), and one row
                                with an empty tag_id for a photo without any logo
    event/video/EVENT_0001.mp4  the event video, 640x360 at 5 fps
    event/truth_video.csv       file,tag_id,start_s,end_s

    `event_dir` ("event") names the event's folder under `folder` (a path such as "media/expo" puts it inside a
    library's media folder). Files of earlier runs with these names are replaced; nothing else is touched.
    """
    started, folder = time.perf_counter(), Path(folder)
    examples_dir, photo_dir, video_dir = (
        folder / "examples", folder / event_dir / "photos", folder / event_dir / "video"
    )
    for where, pattern in ((examples_dir, "SPONSOR_*.jpg"), (photo_dir, "EVENT_*.jpg"), (video_dir, "EVENT_*.mp4")):
        where.mkdir(parents=True, exist_ok=True)
        for old in where.glob(pattern):
            old.unlink()
    catalog_path = folder / "sponsors.yaml"
    catalog = yaml.safe_dump({"tags": build_sponsor_catalog()}, allow_unicode=True, sort_keys=False)
    catalog_path.write_text("# generated by tagsmith.demo_event\n" + catalog, encoding="utf-8")

    jobs = [(s, i) for s in range(len(SPONSORS)) for i in range(examples_per_sponsor)]
    jobs += [(None, i) for i in range(none_examples)]
    manifest_rows: list[list] = [["path", "tag_id", "facet"]]
    for n, j in enumerate(np.random.default_rng([seed, 41]).permutation(len(jobs)), start=1):
        sponsor, i = jobs[j]
        stream = len(SPONSORS) if sponsor is None else sponsor
        name = f"SPONSOR_{n:04d}.jpg"
        photo = example_photo(seed, stream, i, sponsor)
        (examples_dir / name).write_bytes(jpeg_bytes(photo, np.random.default_rng([seed, 42, stream, i])))
        manifest_rows.append([name, NONE_TAG if sponsor is None else SPONSORS[sponsor].tag_id, "sponsor"])
    manifest = examples_dir / "manifest.csv"
    _write_csv(manifest, manifest_rows)

    truth: dict[str, list[LogoBox]] = {}
    truth_rows: list[list] = [["file", "tag_id", "x", "y", "w", "h"]]
    for i, n_logos in enumerate(logo_counts(np.random.default_rng([seed, 31]), photos)):
        name = f"EVENT_{i + 1:04d}.jpg"
        photo, boxes = event_photo(seed, i, n_logos)
        (photo_dir / name).write_bytes(jpeg_bytes(photo, np.random.default_rng([seed, 32, i])))
        truth[name] = boxes
        truth_rows += [[name, *b] for b in boxes] or [[name, "", "", "", "", ""]]
    _write_csv(folder / event_dir / "truth_photos.csv", truth_rows)

    video_path = video_dir / "EVENT_0001.mp4"
    stretches, n_frames = write_event_video(video_path, seed, video_seconds)
    _write_csv(folder / event_dir / "truth_video.csv", [["file", "tag_id", "start_s", "end_s"], *map(list, stretches)])
    return EventTruth(folder, catalog_path, manifest, truth, stretches, video_path, video_seconds, n_frames,
                      len(jobs), round(time.perf_counter() - started, 2), folder / event_dir)
