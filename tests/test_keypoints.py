"""ORB keypoints with RANSAC: the same print matches across photos, a different print does not."""

import zlib

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ml.keypoints import Features, KeypointSpec, extract, inliers, keypoint_evidence, top_candidates


def packshot(text: str, shift=(0, 0), scale=1.0, seed=0) -> Image.Image:
    """A textured package print on a plain background, placed and scaled differently per photo."""
    rng = np.random.default_rng(seed)
    art = Image.new("RGB", (200, 200), (250, 250, 245))
    draw = ImageDraw.Draw(art)
    # crc32, not hash(): str hashes change with every process (PYTHONHASHSEED), and the print with them
    pattern = np.random.default_rng(zlib.crc32(text.encode()))
    for _ in range(40):  # the print: shapes that depend on the product
        x, y = pattern.integers(0, 180, 2)
        draw.rectangle(
            (x, y, x + pattern.integers(5, 25), y + pattern.integers(5, 25)), fill=tuple(pattern.integers(0, 255, 3))
        )
    draw.text((20, 80), text, fill=(0, 0, 0), font=ImageFont.load_default(size=30))
    side = int(200 * scale)
    photo = Image.new("RGB", (320, 320), tuple(int(v) for v in rng.integers(200, 240, 3)))
    photo.paste(art.resize((side, side)), (40 + shift[0], 40 + shift[1]))
    return photo


def test_same_print_matches_and_a_different_print_does_not():
    a1 = extract(packshot("H500", seed=1))
    a2 = extract(packshot("H500", shift=(30, -20), scale=1.1, seed=2))
    b = extract(packshot("X300", seed=3))
    assert len(a1.desc) > 50
    same, other = inliers(a1, a2), inliers(a1, b)
    assert same >= 20 and same > 3 * other, (same, other)  # measured: 126 and 11
    restored = Features.from_bytes(*a1.to_bytes())
    assert inliers(restored, a2) == same


def test_evidence_only_for_candidates_and_never_against_itself():
    spec = KeypointSpec()
    feats = {k: extract(packshot(k, seed=i), spec) for i, k in enumerate(["H500", "X300"])}
    gallery = {"h500": [("m1", feats["H500"])], "x300": [("m2", feats["X300"])]}
    query = [extract(packshot("H500", shift=(10, 10), seed=9), spec)]
    both = keypoint_evidence(query, gallery, ["h500", "x300"], np.array([[0, 1]]))
    assert both[0, 0] > 0.5 and both[0, 0] > both[0, 1] and both[0, 1] < 0.5, both  # measured: 0.94 and 0.38
    only_second = keypoint_evidence(query, gallery, ["h500", "x300"], np.array([[1]]))
    assert only_second[0, 0] == 0.0  # not a candidate: not matched
    itself = keypoint_evidence([feats["H500"]], gallery, ["h500", "x300"], np.array([[0, 1]]), exclude=["m1"])
    assert itself[0, 0] == 0.0
    assert top_candidates(np.array([[0.1, 0.7, 0.2]]), k=2).tolist() == [[1, 2]]
