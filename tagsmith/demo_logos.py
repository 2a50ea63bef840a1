"""The event demo's sponsors, drawn procedurally: word marks with a graphic, the sponsor catalog, perspective
placement of a logo (or of a surface carrying one) into a photo, and the crowd-and-stage backgrounds they
are seen on. `tagsmith.demo_event` composes the example photos, event photos and event video from these.

Every logo is a plate with a graphic on the left and the sponsor's name in a bold word mark on the right, on
one canvas shape for all, so two sponsors drawn with the same graphic and colours (a look-alike pair) differ
only by their word: a head that keys on colour and shape alone cannot keep its precision on them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from tagsmith.demo_products import RGB, Rng, _colour, _font, _to_image

LOGO_ASPECT = 2.6  # every logo canvas is this wide per unit of height
_BASE_H = 160  # logos are drawn once at this height and resized (LANCZOS) to the size they are shown at
SIGNS = ("EXIT", "GATE 3", "BAR", "MERCH", "TICKETS", "STAGE B", "FOOD", "VIP", "PRESS", "WC")


class SponsorSpec(NamedTuple):
    tag_id: str
    name: str  # also the word mark: what OCR reads
    shape: str  # the graphic left of the word
    plate: RGB
    mark: RGB  # the graphic's colour
    ink: RGB  # the word's colour
    lookalike: str | None = None  # drawn with the same shape and colours; only the word differs


_ORANGE, _BLACK = (245, 140, 20), (20, 20, 24)
SPONSORS: list[SponsorSpec] = [
    SponsorSpec("acme", "Acme", "triangle", (250, 248, 240), (210, 30, 30), (150, 20, 20)),
    SponsorSpec("northwind", "Northwind", "sail", (22, 46, 110), (250, 250, 250), (250, 250, 250)),
    SponsorSpec("globex", "Globex", "globe", (0, 122, 84), (250, 210, 40), (255, 255, 255)),
    SponsorSpec("initech", "Initech", "squares", _ORANGE, _BLACK, _BLACK, "hooli"),
    SponsorSpec("hooli", "Hooli", "squares", _ORANGE, _BLACK, _BLACK, "initech"),
    SponsorSpec("umbrella", "Umbrella", "canopy", (250, 250, 250), (205, 20, 30), (30, 30, 30)),
    SponsorSpec("vandelay", "Vandelay", "diamond", (24, 24, 28), (230, 180, 40), (230, 180, 40)),
]


def build_sponsor_catalog() -> list[dict[str, Any]]:
    """Catalog entries in the DESIGN "Catalog" shape; the word mark is the identifier OCR matches. The explicit
    "no logo here" examples are labelled with the reserved tag `none` (ml/catalog.py), not a catalog entry."""
    tags: list[dict[str, Any]] = []
    for s in SPONSORS:
        attrs = {"shape": s.shape, "plate": "#{:02x}{:02x}{:02x}".format(*s.plate),
                 **({"lookalike": s.lookalike} if s.lookalike else {})}
        tags.append({"tag_id": s.tag_id, "facet": "sponsor", "name": s.name, "aliases": [],
                     "identifiers": [s.name], "attributes": attrs})
    return tags


# --- logos ------------------------------------------------------------------------------------------
def _draw_mark(draw: ImageDraw.ImageDraw, spec: SponsorSpec, cx: float, cy: float, r: float) -> None:
    colour, plate = spec.mark, spec.plate
    if spec.shape == "triangle":
        draw.polygon([(cx, cy - r), (cx + r, cy + 0.8 * r), (cx - r, cy + 0.8 * r)], fill=colour)
        draw.polygon([(cx, cy - 0.1 * r), (cx + 0.4 * r, cy + 0.6 * r), (cx - 0.4 * r, cy + 0.6 * r)], fill=plate)
    elif spec.shape == "sail":
        draw.polygon([(cx - 0.1 * r, cy - r), (cx - 0.1 * r, cy + 0.5 * r), (cx - r, cy + 0.5 * r)], fill=colour)
        draw.polygon([(cx + 0.1 * r, cy - 0.7 * r), (cx + 0.1 * r, cy + 0.5 * r), (cx + 0.8 * r, cy + 0.5 * r)],
                     fill=colour)
        draw.rectangle((cx - r, cy + 0.65 * r, cx + r, cy + 0.85 * r), fill=colour)
    elif spec.shape == "globe":
        w = max(2, int(r / 7))
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=colour, width=w)
        draw.ellipse((cx - 0.45 * r, cy - r, cx + 0.45 * r, cy + r), outline=colour, width=w)
        draw.line([(cx - r, cy), (cx + r, cy)], fill=colour, width=w)
        draw.line([(cx, cy - r), (cx, cy + r)], fill=colour, width=w)
    elif spec.shape == "squares":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=colour)
        draw.rectangle((cx - 0.65 * r, cy - 0.65 * r, cx + 0.65 * r, cy + 0.65 * r), fill=plate)
        draw.rectangle((cx - 0.35 * r, cy - 0.35 * r, cx + 0.35 * r, cy + 0.35 * r), fill=colour)
    elif spec.shape == "canopy":
        for k in range(8):
            draw.pieslice((cx - r, cy - r, cx + r, cy + r), 45 * k, 45 * (k + 1),
                          fill=colour if k % 2 == 0 else plate, outline=colour, width=max(1, int(r / 12)))
    else:  # diamond
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=colour)
        draw.polygon([(cx, cy - 0.45 * r), (cx + 0.45 * r, cy), (cx, cy + 0.45 * r), (cx - 0.45 * r, cy)], fill=plate)


@lru_cache(maxsize=16)
def _logo_canvas(index: int) -> Image.Image:
    """The logo at _BASE_H: a rounded plate, the graphic in the left square, the word mark filling the rest.
    Bold is the bundled font with a stroke of its own colour (no bold face ships with Pillow)."""
    spec, h = SPONSORS[index], _BASE_H
    w = int(round(h * LOGO_ASPECT))
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((0, 0, w - 1, h - 1), radius=h // 8, fill=spec.plate, outline=spec.ink, width=h // 40)
    _draw_mark(draw, spec, 0.52 * h, 0.5 * h, 0.32 * h)
    left, avail = 0.98 * h, w - 1.06 * h
    size = int(0.6 * h)
    while size > 8 and draw.textlength(spec.name, font=_font(size)) + size / 6 > avail:
        size -= 2
    stroke = max(1, size // 16)
    draw.text((left, 0.5 * h), spec.name, spec.ink, _font(size), anchor="lm", stroke_width=stroke,
              stroke_fill=spec.ink)
    return img


def render_logo(index: int, height: float) -> Image.Image:
    """Sponsor `index`'s logo, `height` pixels high (RGBA, transparent outside the rounded plate)."""
    h = max(4, int(round(height)))
    return _logo_canvas(index).resize((int(round(h * LOGO_ASPECT)), h), Image.LANCZOS)


# --- geometry ---------------------------------------------------------------------------------------
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


def corners(w: float, h: float) -> np.ndarray:
    return np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3x3 projective map taking the four points `src` to `dst`."""
    a, b = [], []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        a += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        b += [u, v]
    return np.append(np.linalg.solve(np.array(a), np.array(b)), 1.0).reshape(3, 3)


def warp(img: Image.Image, to_frame: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """`img` (RGBA) seen through the map `to_frame` (its pixels -> frame pixels), on a transparent frame."""
    back = np.linalg.inv(to_frame)
    back /= back[2, 2]
    return img.transform(size, Image.PERSPECTIVE, tuple(back.flatten()[:8]), Image.BICUBIC)


def unit_quad(rng: Rng, max_angle: float, keystone: float) -> np.ndarray:
    """A logo's corners seen by a camera, for a logo 1 high centred at 0: keystoned (one side farther away),
    corners jittered, then rotated by up to `max_angle` degrees."""
    w = LOGO_ASPECT
    c = corners(w, 1.0) - [w / 2, 0.5]
    kx, ky = rng.uniform(-keystone, keystone), rng.uniform(-keystone / 2, keystone / 2)
    c[:, 1] *= 1 + kx * c[:, 0] / (w / 2)
    c[:, 0] *= 1 + ky * c[:, 1] / 0.5
    c += rng.uniform(-0.03, 0.03, c.shape)
    a = np.deg2rad(rng.uniform(-max_angle, max_angle))
    return c @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])


def scale_for_area(quad: np.ndarray, area_px: float) -> float:
    """The factor that gives `quad`'s bounding box `area_px` square pixels."""
    w, h = np.ptp(quad, axis=0)
    return float(np.sqrt(area_px / (w * h)))


def overlaps(a: Box, b: Box, gap: float) -> bool:
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap


class Placed(NamedTuple):
    sponsor: int
    layer: Image.Image  # RGBA, frame-sized: the warped logo, transparent elsewhere
    box: Box  # the warped quad's bounding box


def place_logo(rng: Rng, sponsor: int, size: tuple[int, int], area: float, max_angle: float, keystone: float,
               avoid: list[Box], margin: float = 4, gap: float = 10, top: float = 0.0) -> Placed | None:
    """Sponsor's logo warped into a frame of `size`, its bounding box `area` of the frame, clear of the boxes
    in `avoid` (30 tries, else None) and `margin` pixels inside the frame, no higher than `top` (a share of
    the height)."""
    width, height = size
    unit = unit_quad(rng, max_angle, keystone)
    quad = unit * scale_for_area(unit, area * width * height)
    lo = -quad.min(axis=0) + [margin, margin + top * height]
    hi = np.array([width, height]) - quad.max(axis=0) - margin
    for _ in range(30):
        centre = rng.uniform(lo, np.maximum(lo, hi))
        box = (*(quad.min(axis=0) + centre), *(quad.max(axis=0) + centre))
        if not any(overlaps(box, b, gap) for b in avoid):
            break
    else:
        return None
    logo = render_logo(sponsor, scale_for_area(unit, area * width * height))
    to_frame = homography(corners(*logo.size), quad + centre)
    return Placed(sponsor, warp(logo, to_frame, size), box)  # type: ignore[arg-type]


# --- scenes -----------------------------------------------------------------------------------------
_SKIN = [(241, 194, 160), (224, 172, 130), (198, 134, 92), (141, 85, 54), (95, 60, 40)]


def _person(draw: ImageDraw.ImageDraw, rng: Rng, x: float, y: float, r: float) -> None:
    """A head of radius r at (x, y) over shoulders, sometimes an arm up with a phone."""
    shirt, skin = _colour(rng, 20, 240), _SKIN[int(rng.integers(len(_SKIN)))]
    if rng.random() < 0.12:
        side = rng.choice([-1, 1])
        draw.line([(x + side * 1.2 * r, y + 1.6 * r), (x + side * 1.6 * r, y - 1.8 * r)], skin, max(2, int(r / 2.5)))
        draw.rectangle((x + side * 1.6 * r - r / 3, y - 2.4 * r, x + side * 1.6 * r + r / 3, y - 1.7 * r),
                       fill=(230, 235, 250))
    draw.rounded_rectangle((x - 1.6 * r, y + 0.8 * r, x + 1.6 * r, y + 4.5 * r), radius=int(r * 0.7), fill=shirt)
    draw.ellipse((x - r, y - 1.15 * r, x + r, y + 1.15 * r), fill=skin)
    hair = tuple(int(c) for c in rng.integers(10, 90, 3))
    draw.pieslice((x - r, y - 1.2 * r, x + r, y + 1.0 * r), 180, 360, fill=hair)


def _crowd(draw: ImageDraw.ImageDraw, rng: Rng, width: int, height: int, top: float) -> None:
    rows = int(rng.integers(3, 6))
    for j in range(rows):  # back to front: heads grow and stand lower
        f = j / max(1, rows - 1)
        r, y = height * (0.014 + 0.03 * f), height * (top + (0.92 - top) * f)
        x = rng.uniform(-r, r)
        while x < width + r:
            _person(draw, rng, x, y + rng.uniform(-0.4, 0.4) * r, r * rng.uniform(0.85, 1.15))
            x += r * rng.uniform(1.9, 2.8)


def draw_sign(draw: ImageDraw.ImageDraw, rng: Rng, box: Box, word: str | None = None) -> None:
    """A plain board with a non-sponsor word on it (EXIT, GATE 3 ...): text a sponsor reader must ignore."""
    x0, y0, x1, y1 = box
    back = _colour(rng, 20, 250)
    ink = (250, 250, 250) if sum(back) < 380 else (20, 20, 20)
    draw.rectangle(box, fill=back)
    word = word or str(rng.choice(SIGNS))
    size = int(0.6 * (y1 - y0))
    while size > 6 and draw.textlength(word, font=_font(size)) > 0.9 * (x1 - x0):
        size -= 1
    draw.text(((x0 + x1) / 2, (y0 + y1) / 2), word, ink, _font(size), anchor="mm")


def event_background(rng: Rng, width: int, height: int) -> Image.Image:
    """A stage (dark, coloured spotlights) or a hall (daylight), truss, blank boards and signs, and a crowd
    in the lower part: where sponsors are seen, and what a sponsor head must learn to ignore."""
    y = (np.arange(height, dtype=np.float32) / height)[:, None, None]
    stage = rng.random() < 0.6
    top = rng.uniform(8, 60, 3) if stage else rng.uniform(120, 210, 3)
    arr = top + (top * rng.uniform(0.3, 0.9) - top) * y * np.ones((1, width, 1), np.float32)
    if stage:  # spotlight cones from the truss, blurred and added
        cones = Image.new("L", (width, height), 0)
        cdraw = ImageDraw.Draw(cones)
        for _ in range(int(rng.integers(2, 6))):
            x, spread, foot = rng.uniform(0, width), rng.uniform(0.05, 0.2) * width, rng.uniform(-0.3, 0.3) * width
            cdraw.polygon([(x - 4, 0.08 * height), (x + 4, 0.08 * height), (x + foot + spread, height),
                           (x + foot - spread, height)], fill=int(rng.integers(50, 140)))
        glow = np.asarray(cones.filter(ImageFilter.GaussianBlur(height / 40)), np.float32)[..., None] / 255
        arr = arr + glow * rng.uniform(120, 255, 3)
    img = _to_image(arr)
    draw = ImageDraw.Draw(img)
    ty = rng.uniform(0.03, 0.12) * height
    truss = (150, 150, 155) if stage else (70, 70, 75)
    for dy in (0, 0.03 * height):
        draw.line([(0, ty + dy), (width, ty + dy)], truss, 3)
    step = 0.03 * height
    draw.line([(x * step, ty + (x % 2) * step) for x in range(int(width / step) + 2)], truss, 2)
    for _ in range(int(rng.integers(1, 4))):  # blank boards and screens: where a logo could be, and is not
        x0, y0 = rng.uniform(-0.1, 0.9) * width, rng.uniform(0.15, 0.5) * height
        w, h = rng.uniform(0.15, 0.5) * width, rng.uniform(0.05, 0.18) * height
        draw.rectangle((x0, y0, x0 + w, y0 + h), fill=_colour(rng, 10, 200), outline=(30, 30, 30), width=2)
    for _ in range(int(rng.integers(0, 3))):
        x0, y0 = rng.uniform(0, 0.85) * width, rng.uniform(0.12, 0.45) * height
        h = rng.uniform(0.035, 0.07) * height
        draw_sign(draw, rng, (x0, y0, x0 + rng.uniform(2.5, 5) * h, y0 + h))
    _crowd(draw, rng, width, height, rng.uniform(0.5, 0.68))
    return img


Op = tuple[str, list[float], tuple[int, ...]]  # an ImageDraw method, its points, its fill


def _occluder_ops(rng: Rng, box: Box) -> Op:
    """The shape of something in front of a logo: a head rising from below, a pole, or a raised flag."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    kind = int(rng.integers(3))
    if kind == 0:
        cx, r = rng.uniform(x0, x1), rng.uniform(0.3, 0.6) * h
        cy = y1 + rng.uniform(0.0, 0.4) * r
        return "ellipse", [cx - r, cy - 1.15 * r, cx + r, cy + 1.15 * r], _SKIN[int(rng.integers(len(_SKIN)))]
    if kind == 1:
        px, pw = rng.uniform(x0 + 0.1 * w, x1 - 0.25 * w), rng.uniform(0.06, 0.15) * w
        return "rectangle", [px, y0 - 0.3 * h, px + pw, y1 + 0.3 * h], (110, 110, 118)
    side, size = rng.choice([-1, 1]), rng.uniform(0.3, 0.5) * h
    cx = x0 if side < 0 else x1
    return "polygon", [cx, y0 + 0.5 * h, cx - side * 2.5 * size, y0 + 0.5 * h - size, cx - side * 2.5 * size,
                       y0 + 0.5 * h + size], _colour(rng)


def try_occluder(rng: Rng, logo: Placed, alpha: np.ndarray, size: tuple[int, int], others: list[Box]
                  ) -> tuple[Op, np.ndarray] | None:
    """An occluder hiding 3-30 % of the logo, leaving a visible box of at least 1 % of the frame, touching no
    other logo; shrunk towards its own centre until it fits (None: none fits)."""
    method, xy, fill = _occluder_ops(rng, logo.box)
    pts = np.array(xy, np.float64).reshape(-1, 2)
    for shrink in (1.0, 0.8, 0.64, 0.5, 0.4):
        scaled = (pts.mean(axis=0) + (pts - pts.mean(axis=0)) * shrink).flatten().tolist()
        mask = Image.new("1", size, 0)
        getattr(ImageDraw.Draw(mask), method)(scaled, fill=1)
        hidden = np.asarray(mask)
        cover = (alpha & hidden).sum() / max(1, alpha.sum())
        vis = mask_bbox(alpha & ~hidden)
        bbox = mask.getbbox()
        if bbox is None or vis is None or any(overlaps(bbox, b, 2) for b in others):
            continue
        if 0.03 <= cover <= 0.30 and (vis[2] - vis[0]) * (vis[3] - vis[1]) >= 0.01 * size[0] * size[1]:
            return (method, scaled, fill), hidden
    return None


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    return Image.fromarray(mask).getbbox()


def finish_photo(img: Image.Image, rng: Rng, blur: float = 1.2) -> Image.Image:
    """Camera-like light, blur, contrast, colour cast and noise. The contrast pivots on a fixed grey (not the
    photo's mean), so a photo drawn with and without its logos differs only where the logos are."""
    width, height = img.size
    gains = Image.fromarray((rng.uniform(0.72, 1.12, (3, 4)) * 200).astype(np.uint8), "L")
    light = np.asarray(gains.resize((width, height), Image.BICUBIC), np.float32)[..., None] / 200
    radius = rng.uniform(0.0, blur)
    if radius > 0.35:
        img = img.filter(ImageFilter.GaussianBlur(radius))
    arr = np.asarray(img, np.float32) * light
    arr = (arr - 128) * rng.uniform(0.85, 1.15) + 128
    arr = arr * rng.uniform(0.85, 1.12) * rng.uniform(0.94, 1.06, 3).astype(np.float32)
    arr += rng.standard_normal(arr.shape, dtype=np.float32) * rng.uniform(1, 4)
    return _to_image(arr)
