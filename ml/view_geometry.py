"""The crops a photo is read on: the whole frame, a squashed frame, centre and corner squares at two scales,
optionally mirrored. Shared by the views backbones (ml/views.py) and the colour part (ml/backbones/colour.py),
so it imports neither. Pure ML: no Dagster, no Ray."""

from __future__ import annotations

from PIL import Image

ZOOM = 0.8  # the zoom and corner views keep 80 % of the short side
GEOMETRIES = ("center", "squash", "zoom", "tl", "tr", "bl", "br", "zoom60")
ZOOM60 = 0.6  # the zoom60 view: a tighter centre crop keeping 60 % of the short side (a second crop scale)


def parse_view(view: str) -> tuple[str, bool]:
    """'squash_flip' -> ('squash', True). Raises ValueError for an unknown geometry."""
    geometry, _, suffix = view.partition("_")
    if geometry not in GEOMETRIES or suffix not in ("", "flip"):
        raise ValueError(f"unknown view {view!r}; geometries {GEOMETRIES}, optionally with _flip")
    return geometry, suffix == "flip"


def view_image(image: Image.Image, view: str, size: int) -> Image.Image:
    """One size x size RGB view of `image`.

    center: short side resized to `size`, centre crop (what the default backbone sees);
    squash: the whole image resized to a square, aspect ignored (nothing is cropped away);
    zoom / tl / tr / bl / br: a square of ZOOM x the short side at the centre / a corner, resized to `size`;
    zoom60: the same at the centre with ZOOM60 x the short side.
    """
    geometry, flip = parse_view(view)
    image = image.convert("RGB")
    w, h = image.size
    if geometry == "squash":
        out = image.resize((size, size), Image.BILINEAR, reducing_gap=2.0)
    elif geometry == "center":
        side = min(w, h)
        box = ((w - side) // 2, (h - side) // 2)
        out = image.resize((size, size), Image.BILINEAR, box=(*box, box[0] + side, box[1] + side), reducing_gap=2.0)
    else:
        side = round(min(w, h) * (ZOOM60 if geometry == "zoom60" else ZOOM))
        geometry = "zoom" if geometry == "zoom60" else geometry
        x0 = {"zoom": (w - side) // 2, "tl": 0, "bl": 0, "tr": w - side, "br": w - side}[geometry]
        y0 = {"zoom": (h - side) // 2, "tl": 0, "tr": 0, "bl": h - side, "br": h - side}[geometry]
        out = image.resize((size, size), Image.BILINEAR, box=(x0, y0, x0 + side, y0 + side), reducing_gap=2.0)
    return out.transpose(Image.FLIP_LEFT_RIGHT) if flip else out
