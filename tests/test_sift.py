"""RootSIFT keypoints: unit non-negative descriptors, matched by FLANN + ratio test + RANSAC across a rotation and
a change of scale; their own model id, while ORB's stays what caches were written under."""

import hashlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from ml.keypoints import Features, KeypointSpec, extract, inliers, keypoint_evidence, root_sift

ROOTSIFT = KeypointSpec(kind="rootsift")


def texture(seed: int, side: int = 320) -> Image.Image:
    """A print-like picture: blurred noise under random rectangles and ellipses, different per seed."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 255, (side // 8, side // 8), dtype=np.uint8)
    image = Image.fromarray(noise).resize((side, side), Image.BICUBIC).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = rng.integers(0, side - 20, 2)
        w, h = rng.integers(6, 40, 2)
        shape = draw.rectangle if rng.random() < 0.5 else draw.ellipse
        shape((x, y, x + w, y + h), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    return image.filter(ImageFilter.SMOOTH)


def rotated_and_scaled(image: Image.Image, degrees: float, scale: float) -> Image.Image:
    side = round(image.width * scale)
    return image.resize((side, side), Image.BICUBIC).rotate(degrees, Image.BICUBIC, expand=True, fillcolor=(128,) * 3)


def test_rootsift_descriptors_are_non_negative_and_l2_unit():
    features = extract(texture(0), ROOTSIFT)
    assert len(features.desc) > 50
    assert features.desc.dtype == np.float32 and features.desc.shape[1] == 128
    assert (features.desc >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(features.desc, axis=1), 1.0, atol=1e-4)
    raw = np.array([[3.0, 1.0, 0.0, 0.0]], np.float32)  # the root step itself: sqrt of the L1-normalised
    np.testing.assert_allclose(root_sift(raw), [[np.sqrt(0.75), 0.5, 0.0, 0.0]], atol=1e-6)
    restored = Features.from_bytes(*features.to_bytes())
    assert restored.desc.dtype == np.float32 and np.array_equal(restored.desc, features.desc)
    assert np.array_equal(restored.xy, features.xy)


def test_rotated_scaled_copy_matches_and_an_unrelated_picture_does_not():
    original = texture(1)
    a = extract(original, ROOTSIFT)
    moved = extract(rotated_and_scaled(original, 30, 0.8), ROOTSIFT)
    other = extract(texture(2), ROOTSIFT)
    same, unrelated = inliers(a, moved), inliers(a, other)
    assert same >= 100 and unrelated < 8, (same, unrelated)
    gallery = {"one": [("m1", moved)], "two": [("m2", other)]}
    evidence = keypoint_evidence([a], gallery, ["one", "two"], np.array([[0, 1]]))
    assert evidence[0, 0] > 0.7 and evidence[0, 1] < 0.35, evidence


def test_orb_model_id_unchanged_and_kinds_never_share_one():
    key = f"orb|{cv2.__version__}|300|320"  # the key every cached ORB row was written under
    expected = f"orb@{hashlib.sha256(key.encode()).hexdigest()[:8]}"
    assert KeypointSpec().model_id == KeypointSpec(kind="orb").model_id == expected
    assert ROOTSIFT.model_id.startswith("rootsift@") and ROOTSIFT.model_id != expected
    with pytest.raises(ValueError):
        KeypointSpec(kind="surf")


def test_orb_and_rootsift_features_are_not_matched_against_each_other():
    image = texture(3)
    orb, sift = extract(image), extract(image, ROOTSIFT)
    assert Features.from_bytes(*orb.to_bytes()).desc.dtype == np.uint8
    with pytest.raises(ValueError):
        inliers(orb, sift)


def test_a_library_set_to_rootsift_extracts_and_matches_rootsift(local_resources, small_demo, add_library):
    """`keypoints: rootsift` in library.yaml: the keypoints asset stores RootSIFT descriptors under their own model
    id, and heads evaluate the +keypoints strategies on them."""
    import json

    import polars as pl
    import yaml
    from dagster import DagsterInstance, materialize

    from assets_defs.backbones.assets import backbone_choice
    from assets_defs.embeddings.assets import embeddings
    from assets_defs.heads.assets import heads
    from assets_defs.keypoints.assets import keypoints
    from assets_defs.media.assets import media
    from assets_defs.partitions import library_partitions
    from assets_defs.training.assets import catalog, examples
    from resources.libraries import LibraryConfig

    res = local_resources
    name = add_library(res, small_demo, name="sift", views=False)
    path = res["libraries"].dir(name) / "library.yaml"
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "keypoints": "rootsift"}))
    assert res["libraries"].config(name).keypoint_kind == "rootsift"
    assert LibraryConfig(name="x", media="m", keypoints=True).keypoint_kind == "orb"
    assert LibraryConfig(name="x", media="m", keypoints=False).keypoint_kind is None

    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(library_partitions.name, [name])
        # a subset on purpose: up to the heads that match keypoints, without tags, search and video
        assets = [catalog, media, examples, backbone_choice, embeddings, keypoints, heads]
        assert materialize(assets, resources=res, partition_key=name, instance=instance).success
    table = res["warehouse"].read(name, "keypoints")
    assert set(table["model"]) == {ROOTSIFT.model_id}
    some = table.filter(pl.col("n") > 0).row(0, named=True)
    assert len(some["desc"]) == some["n"] * 128 * 4  # float32 RootSIFT descriptors, not ORB's 32 bytes
    metrics = [json.loads(m) for m in res["warehouse"].read(name, "heads")["metrics"]]
    assert any("+keypoints" in s for m in metrics for s in m["strategies"])
