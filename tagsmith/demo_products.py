"""The demo's products and photos, drawn procedurally: the catalog (six shape families, four products each,
look-alike pairs that differ only by a printed model number), the product renderer and the camera-like photo
composer (backgrounds, light, angle, blur, noise; a second studio for the second shoot).

Everything comes from numpy RNGs passed in, so a seed gives the same pixels on the same Pillow build.
`tagsmith.demo` writes the library from these; `tagsmith.demo_video` draws its clips with them.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

FACETS = ("product", "colorway", "shot_type")
RGB = tuple[int, int, int]
Rng = np.random.Generator

COLORWAYS: dict[str, tuple[str, RGB, list[str]]] = {
    "storm-blue": ("Storm Blue", (48, 84, 140), ["Sturmblau", "Bleu orage", "navy"]),
    "ember-red": ("Ember Red", (186, 44, 36), ["Glutrot", "Rouge braise", "red"]),
    "moss-green": ("Moss Green", (84, 112, 48), ["Moosgrün", "Vert mousse", "olive"]),
    "sand": ("Sand", (214, 190, 148), ["Sandfarben", "Beige sable", "khaki"]),
    "graphite": ("Graphite", (58, 60, 66), ["Graphit", "Anthracite", "charcoal"]),
    "sunflower": ("Sunflower", (236, 188, 34), ["Sonnenblume", "Jaune tournesol", "yellow"]),
}
ACCENTS: dict[str, RGB] = {
    "white": (246, 246, 242), "black": (24, 24, 26), "orange": (255, 128, 0), "teal": (0, 168, 168),
    "purple": (128, 60, 168), "pink": (240, 104, 168), "lime": (172, 222, 36),
}
SHOT_TYPES: dict[str, tuple[str, list[str]]] = {
    "packshot": ("Packshot", ["studio", "cut-out", "Freisteller", "photo détourée", "白背景"]),
    "lifestyle": ("Lifestyle", ["in situ", "mood", "Stimmungsbild", "mise en scène"]),
}

# name|family pattern accent logo|printed model number|colourways|aliases in any language, ";"-separated
_PRODUCT_TABLE = """
Hydra 500|bottle stripes white circle|H500|storm-blue ember-red|Hydra 500 Trinkflasche; Gourde Hydra 500
Hydra 750|bottle stripes white circle|H750|storm-blue ember-red|Hydra 750 Trinkflasche; Gourde Hydra 750
Glacier Flask|bottle dots teal star|GF-1|graphite sand moss-green|Gletscherflasche; グレイシャー
Oasis Sport|bottle chevrons orange triangle|OS-22|moss-green sunflower|Oasis Sportflasche
Nova Tea 20|carton band pink diamond|NT-20|moss-green sand|Nova Tee 20 Beutel; Thé Nova 20 sachets
Nova Tea 40|carton band pink diamond|NT-40|moss-green sand|Nova Tee 40 Beutel; Thé Nova 40 sachets
Crisp Oats|carton checks white star|CO-7|sunflower ember-red|Knusperhafer; Flocons d'avoine Crisp
Kiwi Crunch|carton diagonal lime circle|KC-3|graphite storm-blue|Kiwi Knusper; キウイクランチ
Stride R5|sneaker chevrons white triangle|R5|ember-red graphite|Stride R5 Laufschuh; Chaussure Stride R5
Stride R7|sneaker chevrons white triangle|R7|ember-red graphite|Stride R7 Laufschuh; Chaussure Stride R7
Comet Runner|sneaker dots orange star|CR-9|storm-blue sand sunflower|Komet Läufer; コメットランナー
Pebble Trail|sneaker band teal cross|PT-4|moss-green sand|Pebble Wanderschuh; Chaussure de trail Pebble
Aurora Shell|jacket band white ring|AS-1|storm-blue ember-red graphite|Aurora Jacke; オーロラシェル
Nimbus Parka|jacket checks black circle|NP-2|sand moss-green|Nimbus Winterparka; Parka Nimbus
Tundra Fleece|jacket dots purple diamond|TF-8|graphite sunflower|Tundra Fleecejacke; Polaire Tundra
Breeze Windbreaker|jacket diagonal lime triangle|BW-5|storm-blue ember-red|Breeze Windjacke; Coupe-vent Breeze
Harbor Mug|mug stripes black ring|HM-12|storm-blue sand|Harbor Becher; Tasse Harbor
Lumen Cup|mug dots white star|LC-3|ember-red graphite moss-green|Lumen Tasse; ルーメンカップ
Fika Mug|mug chevrons pink cross|FK-6|sunflower storm-blue|Fikamugg; Tasse Fika; Fika-Becher
Summit Tumbler|mug diagonal orange diamond|ST-9|graphite sand|Summit Thermobecher; Gobelet Summit
Volt X200|headphones band orange circle|X200|graphite storm-blue|Volt X200 Kopfhörer; ボルト X200
Volt X300|headphones band orange circle|X300|graphite storm-blue|Volt X300 Kopfhörer; ボルト X300
Echo H5|headphones stripes white triangle|H5|ember-red sand|Echo H5 Kopfhörer; Écouteurs Echo H5
Pulse Studio|headphones dots lime star|PS-3|moss-green sunflower|Pulse Studiokopfhörer; Casque Pulse Studio
"""


class ProductSpec(NamedTuple):
    """One catalog product; ``lookalike`` is the product it differs from only by printed text."""

    tag_id: str
    name: str
    family: str
    pattern: str
    accent: str
    glyph: str
    model: str
    sku: str
    colorways: tuple[str, ...]
    aliases: tuple[str, ...]
    lookalike: str | None


def _parse_products(table: str) -> list[ProductSpec]:
    """The table above as specs. Lookalikes are found (same look, same colourways), not typed, so they
    cannot drift out of sync with what is drawn."""
    rows = [line.split("|") for line in table.strip().splitlines()]
    slug = {name: name.lower().replace(" ", "-") for name, *_ in rows}
    specs = []
    for i, (name, look, model, cws, aliases) in enumerate(rows):
        twins = [r[0] for r in rows if r[0] != name and (r[1], r[3]) == (look, cws)]
        specs.append(ProductSpec(slug[name], name, *look.split(), model, f"SKU-{4411 + 37 * i}",
                                 tuple(cws.split()), tuple(a.strip() for a in aliases.split(";")),
                                 slug[twins[0]] if twins else None))
    return specs


PRODUCTS: list[ProductSpec] = _parse_products(_PRODUCT_TABLE)


def build_catalog() -> list[dict[str, Any]]:
    """The catalog entries the demo is labelled with, in the DESIGN "Catalog" shape."""
    tags: list[dict[str, Any]] = []
    for p in PRODUCTS:
        attrs = {"family": p.family, "pattern": p.pattern, "accent": p.accent, "logo": p.glyph,
                 "colorways": list(p.colorways), "model_number": p.model, "sku": p.sku,
                 **({"lookalike": p.lookalike} if p.lookalike else {})}
        tags.append({"tag_id": p.tag_id, "facet": "product", "name": p.name, "aliases": list(p.aliases),
                     "identifiers": [p.model, p.sku], "attributes": attrs})
    for tag_id, (name, rgb, aliases) in COLORWAYS.items():
        tags.append({"tag_id": tag_id, "facet": "colorway", "name": name, "aliases": aliases,
                     "identifiers": [], "attributes": {"hex": "#{:02x}{:02x}{:02x}".format(*rgb)}})
    for tag_id, (name, aliases) in SHOT_TYPES.items():
        tags.append({"tag_id": tag_id, "facet": "shot_type", "name": name, "aliases": aliases,
                     "identifiers": [], "attributes": {}})
    return tags


# --- product drawing -------------------------------------------------------------------------------
# A family is ImageDraw calls in unit coordinates: floats scale with the canvas, ints (colours, angles)
# do not. Ops without a fill take the caller's; SHADE means "the body colour, darker".
Op = tuple[str, Any, dict[str, Any]]
DARK, SOLE, SHADE = (46, 46, 50), (238, 236, 230), "SHADE"


class _Layout(NamedTuple):
    body: list[Op]
    region: list[Op] | None  # where the pattern goes; None = the whole body
    details: list[Op]  # drawn over body and pattern
    label: tuple[float, float, float, float]
    badge: tuple[float, float]


_CARTON_TOP = [(0.16, 0.30), (0.64, 0.30), (0.82, 0.15), (0.34, 0.15)]
_CARTON_SIDE = [(0.64, 0.30), (0.82, 0.15), (0.82, 0.78), (0.64, 0.93)]
_FRONT: Op = ("rectangle", (0.16, 0.30, 0.64, 0.93), {})
_CUPS: list[Op] = [("rounded_rectangle", (x, 0.44, x + 0.24, 0.84), {"radius": 0.06}) for x in (0.09, 0.67)]
_MUG: Op = ("rounded_rectangle", (0.20, 0.25, 0.68, 0.90), {"radius": 0.04})
LAYOUTS: dict[str, _Layout] = {
    "bottle": _Layout(
        [("rectangle", (0.43, 0.12, 0.57, 0.28), {}), ("rounded_rectangle", (0.30, 0.34, 0.70, 0.95),
         {"radius": 0.06}), ("polygon", [(0.43, 0.26), (0.57, 0.26), (0.70, 0.37), (0.30, 0.37)], {})],
        None, [("rounded_rectangle", (0.40, 0.05, 0.60, 0.15), {"radius": 0.02, "fill": DARK})],
        (0.33, 0.56, 0.67, 0.74), (0.50, 0.45)),
    "carton": _Layout(
        [("polygon", _CARTON_TOP, {}), ("polygon", _CARTON_SIDE, {}), _FRONT], [_FRONT],
        [("polygon", _CARTON_TOP, {"fill": (255, 255, 255, 70)}),  # lit top, shaded side
         ("polygon", _CARTON_SIDE, {"fill": (0, 0, 0, 80)})],
        (0.21, 0.64, 0.59, 0.84), (0.40, 0.45)),
    "sneaker": _Layout(
        [("polygon", [(0.07, 0.72), (0.09, 0.48), (0.28, 0.44), (0.44, 0.28), (0.60, 0.30), (0.68, 0.47),
                      (0.90, 0.56), (0.95, 0.72)], {})], None,
        [("rounded_rectangle", (0.05, 0.70, 0.97, 0.81), {"radius": 0.04, "fill": SOLE, "outline": DARK}),
         *[("line", [(0.45 + 0.04 * k, 0.33 + 0.035 * k), (0.53 + 0.04 * k, 0.30 + 0.035 * k)],
            {"fill": SOLE, "width": 0.012}) for k in range(4)]],
        (0.30, 0.52, 0.64, 0.66), (0.80, 0.63)),
    "jacket": _Layout(
        [("polygon", [(0.30, 0.2), (0.42, 0.15), (0.58, 0.15), (0.70, 0.2), (0.72, 0.92), (0.28, 0.92)], {}),
         ("polygon", [(0.30, 0.20), (0.13, 0.42), (0.11, 0.82), (0.22, 0.82), (0.30, 0.48)], {}),
         ("polygon", [(0.70, 0.20), (0.87, 0.42), (0.89, 0.82), (0.78, 0.82), (0.70, 0.48)], {}),
         ("ellipse", (0.38, 0.08, 0.62, 0.22), {})], None,
        [("ellipse", (0.43, 0.11, 0.57, 0.19), {"fill": SHADE}),
         ("line", [(0.50, 0.19), (0.50, 0.92)], {"fill": DARK, "width": 0.012})],
        (0.53, 0.27, 0.73, 0.42), (0.39, 0.34)),
    "mug": _Layout(
        [_MUG, ("ellipse", (0.58, 0.36, 0.88, 0.74), {"outline": 255, "width": 0.06, "fill": None})], [_MUG],
        [("ellipse", (0.20, 0.21, 0.68, 0.30), {"fill": SHADE})], (0.25, 0.60, 0.63, 0.78), (0.44, 0.44)),
    "headphones": _Layout(
        [("arc", (0.18, 0.08, 0.82, 0.80), {"start": 180, "end": 360, "width": 0.07}), *_CUPS], _CUPS,
        [("rectangle", (x, 0.38, x + 0.08, 0.46), {"fill": DARK}) for x in (0.17, 0.75)],
        (0.68, 0.56, 0.90, 0.70), (0.21, 0.64)),
}


def _scaled(value: Any, size: int) -> Any:
    """Unit floats -> pixels, recursively; ints (colours, angles) pass through."""
    if isinstance(value, float):
        return int(round(value * size))
    return type(value)(_scaled(v, size) for v in value) if isinstance(value, tuple | list) else value


def _apply(draw: ImageDraw.ImageDraw, ops: list[Op], size: int, fill: Any, shade: RGB) -> None:
    for method, shape, kwargs in ops:
        kw = {"fill": fill, **{k: _scaled(v, size) if k in ("radius", "width") else v for k, v in kwargs.items()}}
        kw["fill"] = shade if kw["fill"] == SHADE else kw["fill"]
        getattr(draw, method)(_scaled(shape, size), **kw)


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font: nothing to download, and DejaVu may be missing on servers."""
    try:
        return ImageFont.load_default(size=max(size, 6))
    except TypeError:  # Pillow < 10.1 or no FreeType: one fixed-size bitmap font
        return ImageFont.load_default()


def _to_image(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


@lru_cache(maxsize=4)
def _unit_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(y, x) in [0, 1): patterns, shading and gradients are formulas over it, not per-shape loops."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    return y, x


def _shaded(rgb: RGB, size: int) -> Image.Image:
    """A flat colour lit from the upper left, so flat shapes read as objects."""
    y, x = _unit_grid(size)
    light = np.clip(1.12 - 1.4 * (x - 0.33) ** 2, 0.6, 1.15) * (1.04 - 0.10 * y)
    return _to_image(np.asarray(rgb, np.float32) * light[..., None])


def _pattern_mask(pattern: str, size: int) -> Image.Image:
    """Full-canvas pattern, later clipped to the product's pattern region."""
    y, x = _unit_grid(size)
    masks = {
        "stripes": lambda: y % 0.09 < 0.035,
        "dots": lambda: np.hypot((x + 0.035 * ((y // 0.07) % 2)) % 0.07 - 0.035, y % 0.07 - 0.035) < 0.016,
        "chevrons": lambda: (y + 0.06 * np.abs((x / 0.1) % 2 - 1)) % 0.12 < 0.025,
        "band": lambda: ((y > 0.40) & (y < 0.50)) | ((y > 0.53) & (y < 0.55)),
        "checks": lambda: (x // 0.06 + y // 0.06) % 2 == 0,
        "diagonal": lambda: (x + y) % 0.1 < 0.03,
    }
    return Image.fromarray(masks[pattern]().astype(np.uint8) * 255, "L")


def _draw_badge(draw: ImageDraw.ImageDraw, glyph: str, colour: RGB, cx: float, cy: float, r: float) -> None:
    """The logo: a glyph on a pale disc, so it shows on any pattern."""
    draw.ellipse((cx - 1.4 * r, cy - 1.4 * r, cx + 1.4 * r, cy + 1.4 * r), fill=(244, 244, 240), outline=DARK)
    if glyph in ("circle", "ring"):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour if glyph == "circle" else None,
                     outline=colour, width=max(2, int(r / 3)))
    elif glyph == "cross":
        draw.rectangle((cx - r, cy - r / 3, cx + r, cy + r / 3), fill=colour)
        draw.rectangle((cx - r / 3, cy - r, cx + r / 3, cy + r), fill=colour)
    else:  # regular polygons; a star alternates outer and inner radius
        n, inner = {"triangle": (3, 1.0), "diamond": (4, 1.0), "star": (10, 0.45)}[glyph]
        radii = [r * (1 if k % 2 == 0 else inner) for k in range(n)]
        draw.polygon([(cx + rk * np.sin(2 * np.pi * k / n), cy - rk * np.cos(2 * np.pi * k / n))
                      for k, rk in enumerate(radii)], fill=colour)


def _draw_label(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], model: str, sku: str) -> None:
    """The printed model number (large) and SKU (small): the only difference between lookalike pairs."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.rounded_rectangle(box, max(2, h // 8), fill=(250, 250, 246), outline=DARK, width=max(1, h // 30))
    for text, top, height in ((model, 0.06, 0.58), (sku, 0.66, 0.26)):
        size = int(h * height)
        while size > 6 and draw.textlength(text, font=_font(size)) > 0.88 * w:
            size -= 1
        draw.text((x0 + w / 2, y0 + h * (top + height / 2)), text, (18, 18, 20), _font(size), anchor="mm")


@lru_cache(maxsize=80)
def render_product(index: int, colorway: str, size: int) -> Image.Image:
    """One product in one colourway on a transparent square canvas (cached: every photo of it reuses it)."""
    spec, layout = PRODUCTS[index], LAYOUTS[PRODUCTS[index].family]
    body_rgb = COLORWAYS[colorway][1]
    shade = tuple(int(c * 0.6) for c in body_rgb)
    body, region = Image.new("L", (size, size), 0), Image.new("L", (size, size), 0)
    _apply(ImageDraw.Draw(body), layout.body, size, 255, shade)
    _apply(ImageDraw.Draw(region), layout.region or layout.body, size, 255, shade)
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    img.paste(_shaded(body_rgb, size), mask=body)
    pattern = ImageChops.multiply(_pattern_mask(spec.pattern, size), ImageChops.multiply(region, body))
    img.paste(_shaded(ACCENTS[spec.accent], size), mask=pattern)
    overlay = Image.new("RGBA", (size, size), (0, 0, 0, 0))  # drawing on RGBA replaces; compositing blends
    _apply(ImageDraw.Draw(overlay), layout.details, size, body_rgb, shade)
    img = Image.alpha_composite(img, overlay)
    draw = ImageDraw.Draw(img)
    badge_colour = ACCENTS["black"] if spec.accent == "white" else ACCENTS[spec.accent]
    _draw_badge(draw, spec.glyph, badge_colour, layout.badge[0] * size, layout.badge[1] * size, 0.045 * size)
    _draw_label(draw, _scaled(layout.label, size), spec.model, spec.sku)
    return img


# --- photos ----------------------------------------------------------------------------------------
def _colour(rng: Rng, lo: int = 25, hi: int = 235) -> RGB:
    return tuple(int(c) for c in rng.integers(lo, hi, 3))  # type: ignore[return-value]


def _draw_clutter(draw: ImageDraw.ImageDraw, rng: Rng, size: int, cx: float, cy: float) -> None:
    """One distractor (vase, book stack, plant, plate, odd shape) standing at (cx, cy)."""
    colour, (w, h), kind = _colour(rng), rng.uniform(0.06, 0.22, 2) * size, int(rng.integers(0, 5))
    if kind == 0:
        draw.rounded_rectangle((cx - w / 2, cy - h, cx + w / 2, cy), radius=int(w / 4), fill=colour)
    elif kind == 1:
        for k in range(int(rng.integers(2, 5))):
            draw.rectangle((cx - w / 2 + 0.06 * k * w, cy - (k + 1) * h / 4, cx + w / 2 - 0.04 * k * w,
                            cy - k * h / 4), fill=_colour(rng))
    elif kind == 2:
        draw.rectangle((cx - w / 4, cy - h / 3, cx + w / 4, cy), fill=colour)
        for _ in range(6):
            ox, oy, r = rng.uniform(-w / 2, w / 2), rng.uniform(-h, -h / 3), rng.uniform(0.2, 0.4) * w
            leaf = (int(rng.integers(20, 80)), int(rng.integers(90, 170)), int(rng.integers(20, 80)))
            draw.ellipse((cx + ox - r, cy + oy - r, cx + ox + r, cy + oy + r), fill=leaf)
    elif kind == 3:
        draw.ellipse((cx - w / 2, cy - h / 4, cx + w / 2, cy), fill=colour, outline=DARK)
    else:
        n = int(rng.integers(3, 7))
        draw.polygon([(cx + rng.uniform(-w, w) / 2, cy - rng.uniform(0, h)) for _ in range(n)], fill=colour)


_TABLES = np.array([(150, 110, 70), (118, 84, 54), (205, 192, 172), (92, 92, 98), (182, 140, 98)], np.float32)


def background(rng: Rng, size: int, lifestyle: bool) -> Image.Image:
    """Packshot: a near-white seamless sweep. Lifestyle: wall, wood-grain table, wall decor, uneven light
    and clutter -- what a head must learn to ignore."""
    y = _unit_grid(size)[0][..., None]
    if not lifestyle:
        arr = (rng.uniform(238, 255) + rng.uniform(-4, 4, 3)) * (1.0 - rng.uniform(0.02, 0.10) * y)
        return _to_image(arr)
    horizon, grey = rng.uniform(0.45, 0.72), rng.uniform(90, 220)
    wall = grey + (rng.uniform(60, 240, 3) - grey) * rng.uniform(0.3, 0.8)  # muted, like paint
    table = _TABLES[rng.integers(0, len(_TABLES))] + rng.uniform(-15, 15, 3)
    arr = np.where(y < horizon, wall * (1 - rng.uniform(0, 0.35) * y), table * (0.85 + 0.25 * y))
    light = Image.fromarray((rng.uniform(0.75, 1.1, (4, 4)) * 100).astype(np.uint8), "L")  # 4x4 gains
    arr = arr * np.asarray(light.resize((size, size), Image.BICUBIC), np.float32)[..., None] / 100
    img = _to_image(arr)
    draw, horizon = ImageDraw.Draw(img), horizon * size
    for _ in range(int(rng.integers(15, 35))):  # wood grain
        gy, grain = rng.uniform(horizon, size), tuple(int(c) for c in table * rng.uniform(0.7, 0.95))
        draw.line([(0, gy), (size, gy + rng.uniform(-0.05, 0.05) * size)], grain, int(rng.integers(1, 3)))
    for _ in range(int(rng.integers(0, 3))):  # frames, windows, shelves
        x0, y0 = rng.uniform(0, 0.8) * size, rng.uniform(0, 0.5) * horizon
        w, h = rng.uniform(0.12, 0.35, 2) * size
        draw.rectangle((x0, y0, x0 + w, max(y0, min(y0 + h, horizon - 4))), fill=_colour(rng, 20, 250),
                       outline=_colour(rng, 10, 120), width=int(rng.integers(2, 7)))
    for _ in range(int(rng.integers(5, 12))):
        _draw_clutter(draw, rng, size, rng.uniform(0, size), rng.uniform(horizon, size * 1.05))
    return img


def compose_photo(product: Image.Image, shot_type: str, rng: Rng, size: int, shoot: int = 1) -> Image.Image:
    """Place a rendered product on a background, then jitter light, colour, blur and noise like a camera.

    `shoot` 2 is another day in another studio: warm, dimmer light, steeper angles and a darker backdrop."""
    lifestyle = shot_type == "lifestyle"
    bg = background(rng, size, lifestyle)
    if shoot == 2:
        bg = _to_image(np.asarray(bg, np.float32) * np.array([0.78, 0.7, 0.62]))
    side = int(size * (rng.uniform(0.45, 0.7) if lifestyle else rng.uniform(0.7, 0.9)))
    tilt = 1.6 if shoot == 2 else 1.0
    angle = (rng.uniform(-25, 25) if lifestyle else rng.uniform(-8, 8)) * tilt
    prod = product.resize((side, side), Image.LANCZOS).rotate(angle, resample=Image.BICUBIC, expand=True)
    w, h = prod.size
    if lifestyle:  # off-centre, may be cut by the frame edge
        x, y = int(rng.uniform(-0.1 * w, size - 0.9 * w)), int(rng.uniform(-0.05 * h, size - 0.95 * h))
    else:
        x, y = (int((size - d) / 2 + rng.uniform(-0.04, 0.04) * size) for d in (w, h))
    shadow = prod.getchannel("A").filter(ImageFilter.GaussianBlur(max(1, size // 50))).point(lambda v: v // 2)
    sx, sy = x + int(rng.uniform(0.0, 0.03) * size), y + int(rng.uniform(0.01, 0.04) * size)
    bg.paste((0, 0, 0), (sx, sy, sx + w, sy + h), mask=shadow)
    bg.paste(prod, (x, y), mask=prod)
    if lifestyle and rng.random() < 0.5:  # something in the foreground, at a frame edge
        edge = rng.choice([0.0, size]) + rng.uniform(-0.05, 0.05) * size
        _draw_clutter(ImageDraw.Draw(bg), rng, size, edge, size * rng.uniform(0.95, 1.1))
    blur = rng.uniform(0.0, 1.2) * size / 320
    arr = np.asarray(bg.filter(ImageFilter.GaussianBlur(blur)) if blur > 0.35 else bg, dtype=np.float32)
    arr = (arr - arr.mean()) * rng.uniform(0.8, 1.2) + arr.mean()  # contrast
    arr = arr * rng.uniform(0.82, 1.15) * rng.uniform(0.93, 1.07, 3)  # exposure, colour cast
    if shoot == 2:
        arr = arr * np.array([1.06, 0.97, 0.86]) * 0.9  # tungsten light, a stop darker
    arr = arr + rng.normal(0.0, rng.uniform(1, 5), arr.shape)  # sensor noise
    return _to_image(arr)


def jpeg_bytes(img: Image.Image, rng: Rng) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=int(rng.integers(85, 93)))
    return buf.getvalue()
