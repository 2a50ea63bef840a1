"""The `colour` candidate (ml/backbones/colour.py): a photo's colours on the views, as a vector the heads and the
ensemble read. Look-alikes that differ by colour must land apart, the same colours in another light close, and
the ensemble's third part must join like the other two."""

import numpy as np
import pytest
from PIL import Image

from ml.backbones import BackboneUnavailable, load_backbone
from ml.backbones.colour import BINS, SIDE, VIEWS, histograms
from ml.backbones.concat import concat_name, join
from ml.strategies import FITTERS, aligned_proba
from ml.view_geometry import view_image
from ml.views import POOLED_VIEWS


def _fruit(rng: np.random.Generator, rgb: tuple[int, int, int], background=(90, 90, 95)) -> Image.Image:
    """A textured disc of colour `rgb` (+- noise) on a grey background, placed anywhere in a 4:3 photo."""
    h, w = 240, 320
    yy, xx = np.mgrid[:h, :w]
    cy, cx, r = rng.integers(90, 150), rng.integers(110, 210), rng.integers(50, 80)
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
    pixels = np.empty((h, w, 3), dtype=np.float32)
    pixels[:] = background
    pixels[disc] = rgb
    pixels += rng.normal(0, 12, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def test_colours_tell_look_alikes_apart_and_survive_other_light():
    colour = load_backbone("colour-views")
    assert colour.dim == BINS[0] * BINS[1] * BINS[2] == 1024 and colour.input_size == SIDE
    assert colour.model_id == "colour-hsv32x8x4@96:views/center+zoom+zoom60"
    rng = np.random.default_rng(5)
    orange, yellow = (245, 130, 20), (235, 220, 40)
    e = colour.embed([_fruit(rng, orange), _fruit(rng, orange), _fruit(rng, yellow)])
    assert e.shape == (3, 1024) and np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    same, other = float(e[0] @ e[1]), float(e[0] @ e[2])
    assert same > 0.95 and other < same - 0.2, (same, other)  # the grey background is shared by both
    # a shoot in dimmer light keeps the hue: still nearer its own kind than the look-alike
    dim = colour.embed([_fruit(rng, tuple(int(c * 0.75) for c in orange), background=(70, 70, 75))])[0]
    assert float(dim @ e[0]) > float(dim @ e[2]) + 0.03  # value bins move with the light, hue bins do not
    assert colour.embed([]).shape == (0, 1024)
    with pytest.raises(BackboneUnavailable, match="takes no argument"):
        load_backbone("colour-views:64")


def test_a_head_on_colour_reads_a_new_shoot_of_two_look_alikes():
    """Two 'varieties' of the same shape and texture, one a shade greener: a logistic regression on the colour
    vectors of one shoot reads the next shoot (other positions, noise and a 15 % dimmer light)."""
    colour = load_backbone("colour-views")
    rng = np.random.default_rng(11)
    kinds = {"golden": (225, 200, 60), "granny": (160, 205, 70)}
    shoot = [(k, _fruit(rng, rgb)) for k, rgb in kinds.items() for _ in range(12)]
    dimmer = [
        (k, _fruit(rng, tuple(int(c * 0.85) for c in rgb), (75, 75, 80))) for k, rgb in kinds.items() for _ in range(10)
    ]
    y = np.array([k == "granny" for k, _ in shoot], dtype=int)
    model, _ = FITTERS["logreg"](colour.embed([p for _, p in shoot]), y, 0, {"C": 10.0})
    predicted = aligned_proba(model, colour.embed([p for _, p in dimmer]), 2).argmax(1)
    assert (predicted == np.array([k == "granny" for k, _ in dimmer])).mean() == 1.0


def test_the_views_are_pooled_and_the_ensemble_joins_colour_like_any_part(model_root):
    colour = load_backbone("colour-views")
    rng = np.random.default_rng(2)
    photo = _fruit(rng, (200, 40, 60))
    assert VIEWS == POOLED_VIEWS  # the crops every views candidate reads
    crops = np.stack([np.asarray(view_image(photo, v, SIDE), dtype=np.float32).transpose(2, 0, 1) for v in VIEWS])
    by_hand = histograms(crops).mean(axis=0)
    assert np.allclose(colour.embed([photo])[0], by_hand / np.linalg.norm(by_hand), atol=1e-6)
    # the centre crops weigh in: a red disc in the middle counts for more than the whole frame's share of red
    whole = histograms(crops[:1])[0]
    assert not np.allclose(colour.embed([photo])[0], whole, atol=1e-3)

    base = "efficientnet-lite0"
    trio = load_backbone(concat_name([base, "colour-views"]), cache_dir=str(model_root))
    photos = [photo, Image.new("RGB", (90, 200), (10, 200, 30))]
    parts = [load_backbone(base, cache_dir=str(model_root)).embed(photos), colour.embed(photos)]
    assert trio.dim == 1280 + 1024
    assert np.allclose(trio.embed(photos), join(parts), atol=1e-5)
