"""Generated busy photos with small logos: the ground truth for tests/test_regions.py and benchmarks/regions.py.

A logo is a card (plate, a two-colour shape, a word); it is pasted into a cluttered photo scaled to a share of
the frame, rotated, perspective-warped (PIL's Image.transform PERSPECTIVE) and optionally partly covered. The
truth box is the axis-aligned box of the warped card's corners, normalised to the photo. Everything is drawn
from a numpy Generator the caller seeds: the same seed, the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Logo:
    tag_id: str
    word: str
    shape: str  # circle, triangle, star, diamond, hexagon, square
    plate: tuple[int, int, int]
    ink: tuple[int, int, int]
    accent: tuple[int, int, int]


LOGOS = (
    Logo("acme", "ACME", "circle", (250, 245, 230), (180, 20, 30), (20, 60, 160)),
    Logo("zenit", "ZENIT", "triangle", (20, 40, 90), (255, 210, 0), (240, 240, 240)),
    Logo("orbix", "ORBIX", "star", (240, 240, 240), (10, 120, 60), (230, 120, 0)),
    Logo("vanta", "VANTA", "diamond", (30, 30, 30), (230, 230, 230), (200, 30, 120)),
    Logo("pulso", "PULSO", "hexagon", (255, 220, 60), (40, 40, 140), (200, 40, 40)),
    Logo("kyte", "KYTE", "square", (200, 230, 250), (120, 40, 10), (0, 140, 140)),
)
LOOKALIKE = Logo("nova", "NOVA", "circle", (250, 245, 230), (180, 20, 30), (20, 60, 160))  # ACME's shape and colours


def shape_points(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    corners = {"triangle": 3, "diamond": 4, "hexagon": 6, "square": 4}
    if shape == "star":
        angles = np.linspace(-np.pi / 2, 1.5 * np.pi, 10, endpoint=False)
        radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        return [(cx + q * np.cos(a), cy + q * np.sin(a)) for a, q in zip(angles, radii, strict=True)]
    n = corners[shape]
    start = np.pi / 4 if shape == "square" else -np.pi / 2
    angles = start + np.linspace(0, 2 * np.pi, n, endpoint=False)
    return [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in angles]


def draw_logo(logo: Logo, width: int = 360) -> Image.Image:
    """The logo card, RGBA, width x width/2: plate with a border, a shape with an inner mark, the word."""
    height = width // 2
    card = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(card)
    draw.rounded_rectangle(
        (0, 0, width - 1, height - 1), radius=height // 8, fill=logo.plate, outline=logo.ink, width=4
    )
    cx, cy, r = height * 0.55, height / 2, height * 0.36
    if logo.shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=logo.ink)
    else:
        draw.polygon(shape_points(logo.shape, cx, cy, r), fill=logo.ink)
    draw.ellipse((cx - r * 0.3, cy - r * 0.3, cx + r * 0.3, cy + r * 0.3), fill=logo.accent)
    font = ImageFont.load_default(size=int(height * 0.36))
    draw.text((height * 1.05, height * 0.28), logo.word, fill=logo.ink, font=font)
    draw.line((height * 1.05, height * 0.78, width - height * 0.2, height * 0.78), fill=logo.accent, width=5)
    return card


def clutter(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """A busy background: blurred colour noise under shapes, lines and short random words."""
    width, height = size
    noise = rng.integers(0, 255, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
    image = Image.fromarray(noise).resize(size, Image.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(int(width * height / 2500)):
        x, y = rng.integers(0, width), rng.integers(0, height)
        w, h = rng.integers(8, 70, 2)
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        pick = rng.random()
        if pick < 0.35:
            draw.rectangle((x, y, x + w, y + h), fill=colour)
        elif pick < 0.65:
            draw.ellipse((x, y, x + w, y + h), fill=colour)
        elif pick < 0.85:
            draw.line((x, y, x + rng.integers(-80, 80), y + rng.integers(-80, 80)), fill=colour, width=int(w % 5 + 1))
        else:
            word = "".join(chr(c) for c in rng.integers(97, 123, rng.integers(2, 6)))
            draw.text((x, y), word, fill=colour, font=ImageFont.load_default(size=int(rng.integers(10, 26))))
    return image.filter(ImageFilter.SMOOTH)


def card_quad(card: tuple[int, int], area: float, angle: float, tilt: float) -> np.ndarray:
    """Corners (4, 2) of a card of `area` px², its right side `tilt` shorter (a view at an angle), rotated, at 0."""
    w, h = card
    s = np.sqrt(area / (w * h))
    half_w, half_h = w * s / 2, h * s / 2
    quad = np.array(
        [[-half_w, -half_h], [half_w, -half_h * (1 - tilt)], [half_w, half_h * (1 - tilt)], [-half_w, half_h]]
    )
    a = np.deg2rad(angle)
    rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return quad @ rotation.T


def perspective_coeffs(dst: np.ndarray, src: np.ndarray) -> list[float]:
    """PIL PERSPECTIVE coefficients mapping output (photo) points `dst` to input (card) points `src`."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return [float(c) for c in np.linalg.solve(np.array(rows, float), np.array(rhs, float))]


def paste(photo: Image.Image, card: Image.Image, quad: np.ndarray) -> Box:
    """The card warped onto `quad` (photo pixels) of the photo, in place; the normalised truth box."""
    src = np.array([[0, 0], [card.width, 0], [card.width, card.height], [0, card.height]], float)
    layer = card.transform(photo.size, Image.PERSPECTIVE, perspective_coeffs(quad, src), Image.BICUBIC)
    photo.paste(layer, (0, 0), layer)
    (x0, y0), (x1, y1) = np.clip(quad.min(axis=0), 0, photo.size), np.clip(quad.max(axis=0), 0, photo.size)
    return (x0 / photo.width, y0 / photo.height, (x1 - x0) / photo.width, (y1 - y0) / photo.height)


def occlude(photo: Image.Image, box: Box, share: float, rng: np.random.Generator) -> None:
    """Cover the right `share` of the box's width with a patch of clutter (a hand, a head, a pole)."""
    x, y, w, h = (box[0] * photo.width, box[1] * photo.height, box[2] * photo.width, box[3] * photo.height)
    cover = (int(x + w * (1 - share)), int(y - 2), int(x + w + 2), int(y + h + 2))
    patch = clutter((cover[2] - cover[0], cover[3] - cover[1]), rng)
    photo.paste(patch, cover[:2])


@dataclass(frozen=True)
class Placement:
    logo: Logo
    area: float  # share of the frame
    angle: float  # degrees
    tilt: float  # 0: seen square on
    occluded: float = 0.0  # share of the width covered


def scene(
    placements: list[Placement], rng: np.random.Generator, size: tuple[int, int] = (640, 480)
) -> tuple[Image.Image, list[tuple[str, Box]]]:
    """A cluttered photo with the placed logos, none overlapping another; and [(tag_id, truth box)]."""
    photo = clutter(size, rng)
    truths: list[tuple[str, Box]] = []
    taken: list[tuple[float, float, float, float]] = []
    for placement in placements:
        card = draw_logo(placement.logo)
        quad = card_quad(card.size, placement.area * size[0] * size[1], placement.angle, placement.tilt)
        low, high = -quad.min(axis=0) + 4, np.array(size) - quad.max(axis=0) - 4
        for _ in range(200):  # a free spot: no two logos' boxes closer than 10 px
            at = rng.uniform(low, high)
            x0, y0 = quad.min(axis=0) + at - 10
            x1, y1 = quad.max(axis=0) + at + 10
            if all(x1 < a or x0 > c or y1 < b or y0 > d for a, b, c, d in taken):
                break
        else:
            raise ValueError(f"no free spot for {placement.logo.tag_id} in a {size} photo")
        taken.append((x0, y0, x1, y1))
        box = paste(photo, card, quad + at)
        if placement.occluded:
            occlude(photo, box, placement.occluded, rng)
        truths.append((placement.logo.tag_id, box))
    return photo, truths


def example_photo(logo: Logo, rng: np.random.Generator, size: tuple[int, int] = (480, 360)) -> Image.Image:
    """An example of a tag: the logo at 10-40 % of the frame, a little turned and tilted, on its own clutter."""
    placement = Placement(logo, float(rng.uniform(0.1, 0.4)), float(rng.uniform(-12, 12)), float(rng.uniform(0, 0.15)))
    return scene([placement], rng, size)[0]
