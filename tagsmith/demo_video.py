"""Demo videos whose truth is known: products cut in and out, or sliding in and out of frame, at known times.

Each video is a run of scenes (studio sweep or lifestyle room) of 5-12 s with cuts between them, off the
1-second sampling grid on purpose. A scene shows one product (drifting gently), or nothing. A product is
either there from the cut, or slides in from a side; it leaves at the next cut or slides out. The truth of
a slide is the moment half of the product is inside the frame. Products with a look-alike (differing only by
printed text: issue of OCR, not of video) are left out, so the figures measure segment building, not the
hardest recognition.

One phone video is portrait, recorded sideways with a display matrix (rotation), at a variable frame rate.
Three broken files go with them: a truncated MP4, an audio-only MP4 and a JPEG named .mov.

`video_truth.csv` (path, facet, tag_id, start_s, end_s) is what `evaluate_segments` scores the pipeline on.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ml.video import write_h264
from tagsmith.demo_products import PRODUCTS, background, render_product

FPS = 10
SLIDE_S = 0.6  # a product takes this long to slide fully in or out
ENCODE = {"preset": "veryfast", "crf": "23"}


@dataclass(frozen=True)
class Appearance:
    product: int  # index in PRODUCTS
    colorway: str
    shown_s: float  # when it is (half) in frame: the truth
    gone_s: float
    slide_in: bool
    slide_out: bool
    side: int  # -1 enters from the left, +1 from the right


@dataclass(frozen=True)
class Scene:
    start_s: float
    end_s: float
    lifestyle: bool
    seed: int
    appearance: Appearance | None


def plan_video(rng: np.random.Generator, duration_s: float) -> list[Scene]:
    """Scenes with cuts off the whole second, consecutive scenes never showing the same product."""
    candidates = [i for i, p in enumerate(PRODUCTS) if p.lookalike is None]
    scenes, t, last = [], 0.0, None
    while t < duration_s - 3.0:
        end = min(duration_s, round(t + rng.uniform(5.0, 12.0), 1))
        if duration_s - end < 3.0:
            end = duration_s
        appearance = None
        if rng.random() > 0.2:
            product = int(rng.choice([c for c in candidates if c != last]))
            colorway = str(rng.choice(PRODUCTS[product].colorways))
            slide_in, slide_out = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
            shown = round(t + rng.uniform(1.0, 2.5), 2) if slide_in else t
            gone = round(end - rng.uniform(1.0, 2.5), 2) if slide_out else end
            if gone - shown >= 2.0:
                appearance = Appearance(product, colorway, shown, gone, slide_in, slide_out, int(rng.choice([-1, 1])))
                last = product
        scenes.append(Scene(t, end, bool(rng.random() < 0.5), int(rng.integers(1 << 30)), appearance))
        t = end
    return scenes


class _SceneRenderer:
    """Draws frames of one scene: a fixed background, the product pasted where the timeline puts it."""

    def __init__(self, scene: Scene, width: int, height: int):
        rng = np.random.default_rng(scene.seed)
        square = background(rng, max(width, height), scene.lifestyle)
        left, top = (square.width - width) // 2, (square.height - height) // 2
        self.background = square.crop((left, top, left + width, top + height))
        self.scene, self.width, self.height = scene, width, height
        self.product = None
        if scene.appearance is not None:
            side = int(min(width, height) * 0.85)
            self.product = render_product(scene.appearance.product, scene.appearance.colorway, side)
            bbox = self.product.getchannel("A").getbbox()  # the canvas has transparent margins
            self.opaque = (bbox[0], bbox[2])
            self.rest_x = int(rng.uniform(0.15, 0.85) * (width - side))
            self.drift = rng.uniform(0.0, 2 * np.pi)

    def x_at(self, t: float) -> float | None:
        """Left edge of the product's canvas at time t (None: not in frame). Half of the drawn product is
        inside the frame exactly at shown_s / gone_s when it slides."""
        a, (left, right) = self.scene.appearance, self.opaque
        x = self.rest_x + 12 * np.sin(self.drift + t)  # a gentle drift: the product moves while on screen
        # the drawn product spans [x + left, x + right): fully outside, and half inside, on its entry side
        offscreen = -right if a.side < 0 else self.width - left
        half = -(left + right) / 2 if a.side < 0 else self.width - (left + right) / 2
        for edge, sliding, sign in ((a.shown_s, a.slide_in, 1), (a.gone_s, a.slide_out, -1)):
            if not sliding:
                continue
            # linear from fully out to the rest position over SLIDE_S, passing half-in at `edge`
            frac_half = (half - offscreen) / (x - offscreen)
            begin = edge - frac_half * SLIDE_S if sign > 0 else edge + frac_half * SLIDE_S
            progress = (t - begin) / SLIDE_S if sign > 0 else (begin - t) / SLIDE_S
            if progress < 1.0:
                return None if progress <= 0 else offscreen + (x - offscreen) * progress
        if not (self.scene.start_s <= t < self.scene.end_s):
            return None
        if (not a.slide_in and t < a.shown_s) or (not a.slide_out and t >= a.gone_s):
            return None
        return x

    def frame(self, t: float) -> np.ndarray:
        image = self.background.copy()
        if self.product is not None:
            x = self.x_at(t)
            if x is not None:
                y = (self.height - self.product.height) // 2 + int(6 * np.cos(self.drift + 1.3 * t))
                image.paste(self.product, (int(round(x)), y), mask=self.product)
        return np.asarray(image)


def write_demo_video(
    path: Path,
    scenes: list[Scene],
    size: tuple[int, int],
    timestamps: list[float],
    rotation: int = 0,
    variable_rate: bool = False,
) -> None:
    """Encode the scenes at the given frame times (as a variable-frame-rate file when `variable_rate`). With
    `rotation`, frames are drawn as displayed (portrait) and stored turned, as a phone held upright does."""
    width, height = size
    renderers = [_SceneRenderer(s, width, height) for s in scenes]

    def frames():
        for t in timestamps:
            scene = next(r for r in renderers if r.scene.start_s <= t < r.scene.end_s)
            pixels = scene.frame(t)
            yield np.ascontiguousarray(np.rot90(pixels, k=-rotation // 90)) if rotation else pixels

    write_h264(
        str(path),
        frames(),
        FPS,
        gop=5 * FPS,
        options=ENCODE,
        rotation=rotation,
        timestamps=timestamps if variable_rate else None,
    )


def truth_rows(name: str, scenes: list[Scene]) -> list[list]:
    rows = []
    for scene in scenes:
        a = scene.appearance
        if a is None:
            continue
        product = PRODUCTS[a.product]
        rows.append([name, "product", product.tag_id, a.shown_s, a.gone_s])
        rows.append([name, "colorway", a.colorway, a.shown_s, a.gone_s])
    return rows


def write_demo_videos(folder: Path, seed: int, count: int = 3, duration_s: float = 60.0) -> Path:
    """`count` landscape videos of `duration_s`, one portrait phone video (rotated, variable frame rate) and
    three broken files into `folder`; the truth goes to `folder/../video_truth.csv`. Returns its path."""
    rows: list[list] = []
    for k in range(count):
        rng = np.random.default_rng([seed, 7, k])
        scenes = plan_video(rng, duration_s)
        name = f"CLIP_{k + 1:04d}.mp4"
        stamps = [i / FPS for i in range(int(duration_s * FPS))]
        write_demo_video(folder / name, scenes, (640, 360), stamps)
        rows += truth_rows(name, scenes)
    rng = np.random.default_rng([seed, 7, 99])
    scenes = plan_video(rng, 20.0)
    stamps, t = [], 0.0
    while t < 20.0:  # a phone's frame rate wanders: 1/30 s give or take, with occasional dropped frames
        stamps.append(round(t, 4))
        t += (1 / 30) * (rng.uniform(0.8, 1.2) if rng.random() > 0.05 else 3)
    write_demo_video(folder / "PHONE_0001.mov", scenes, (360, 640), stamps, rotation=90, variable_rate=True)
    rows += truth_rows("PHONE_0001.mov", scenes)

    good = (folder / "CLIP_0001.mp4").read_bytes()
    (folder / "CLIP_9004.mp4").write_bytes(good[: len(good) * 2 // 5])  # truncated: the index is at the end
    Image.new("RGB", (64, 64), (200, 40, 40)).save(folder / "CLIP_9005.mov", "JPEG")  # the extension lies
    _write_audio_only(folder / "CLIP_9006.mp4")
    truth = folder.parent / "video_truth.csv"
    with truth.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows([["path", "facet", "tag_id", "start_s", "end_s"], *rows])
    return truth


def _write_audio_only(path: Path) -> None:
    """One second of a 440 Hz tone in AAC: a video file with no picture."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=44100)
        samples = (np.sin(2 * np.pi * 440 * np.arange(44100) / 44100) * 0.2).astype(np.float32)[None, :]
        for start in range(0, 44100, 1024):
            frame = av.AudioFrame.from_ndarray(samples[:, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate = 44100
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
