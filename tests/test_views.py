"""The accuracy-oriented backbone family (320 px, colour histogram) loads by name through the registry."""

import numpy as np
import pytest
from PIL import Image

from assets_defs.embedding_runs import balanced_chunk
from ml.backbones import BackboneUnavailable, load_backbone


def test_views_backbone_by_name(model_root):
    backbone = load_backbone("efficientnet-lite0-views:320/avg+hsv*0.5/center", cache_dir=str(model_root))
    assert backbone.input_size == 320 and backbone.dim == 1280 + 256
    assert "views" in backbone.model_id and "320" in backbone.model_id
    rng = np.random.default_rng(0)
    red = Image.new("RGB", (400, 300), (200, 30, 30))
    noise = Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8))
    vectors = backbone.embed([red, noise, red])
    assert vectors.shape == (3, 1536)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors[0], vectors[2]) and not np.allclose(vectors[0], vectors[1])


def test_crops_at_two_scales_by_the_name_the_readme_gives(model_root):
    # the whole frame and centre crops keeping 80 % and 60 % of the short side, pooled (README "Models")
    backbone = load_backbone("efficientnet-lite0-views:224/avg/center+zoom+zoom60", cache_dir=str(model_root))
    single = load_backbone("efficientnet-lite0-views:224/avg/center", cache_dir=str(model_root))
    assert backbone.dim == 1280 and "center+zoom+zoom60" in backbone.model_id
    rng = np.random.default_rng(1)
    photo = Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    pooled, whole = backbone.embed([photo]), single.embed([photo])
    assert np.allclose(np.linalg.norm(pooled, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(pooled, whole, atol=1e-3)  # the crops count


def test_pooled_views_of_any_backbone_match_the_built_in_views(model_root):
    """PooledViews reads any backbone on the same views (how the fine-tuned backbone gets its views candidate):
    over the default weights it gives the vectors of the built-in views backbone."""
    from ml.views import PooledViews

    built_in = load_backbone("efficientnet-lite0-views:224/avg/center+zoom+zoom60", cache_dir=str(model_root))
    pooled = PooledViews(load_backbone("efficientnet-lite0", cache_dir=str(model_root)), ("center", "zoom", "zoom60"))
    assert pooled.dim == 1280 and pooled.model_id.endswith(":views/center+zoom+zoom60")
    rng = np.random.default_rng(2)
    photos = [Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)) for _ in range(2)]
    photos.append(Image.new("RGB", (320, 240), (20, 90, 200)))
    a, b = built_in.embed(photos), pooled.embed(photos)
    assert a.shape == b.shape == (3, 1280)
    assert np.all(np.sum(a * b, axis=1) > 0.99)


def test_balanced_chunks_keep_every_slot_busy():
    assert balanced_chunk(768, 2) == 192  # 4 equal tasks, not 256+256+256 with one slot idle at the end
    assert balanced_chunk(100, 2) == 50
    assert balanced_chunk(10_000, 8) <= 256
    assert balanced_chunk(1, 4) == 1


def test_large_views_and_a_concat_of_backbones_by_name(model_root):
    """`efficientnet-lite2-views` (the large-views candidate) and `concat:` (the ensemble candidate): the concat's
    embedding of a photo equals its parts' embeddings joined, which is how backbone_choice writes the ensemble's
    example vectors without embedding them again (assets_defs/backbones)."""
    from ml.backbones.concat import concat_name, join

    large = load_backbone("efficientnet-lite2-views", cache_dir=str(model_root))
    assert large.input_size == 260 and large.model_id.startswith("efficientnet-lite2@")
    other = "efficientnet-lite0-views:224/avg/center+zoom+zoom60"
    pair = load_backbone(concat_name(["efficientnet-lite2-views", other]), cache_dir=str(model_root))
    assert pair.dim == 2560 and pair.input_size == 260
    assert pair.model_id == f"concat({large.model_id}|{load_backbone(other, cache_dir=str(model_root)).model_id})"
    rng = np.random.default_rng(3)
    photos = [Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)), Image.new("RGB", (90, 200))]
    both = pair.embed(photos)
    parts = [large.embed(photos), load_backbone(other, cache_dir=str(model_root)).embed(photos)]
    assert both.shape == (2, 2560) and np.allclose(np.linalg.norm(both, axis=1), 1.0, atol=1e-5)
    assert np.allclose(both, join(parts), atol=1e-5)
    with pytest.raises(BackboneUnavailable, match="two or more backbone names"):
        load_backbone("concat:efficientnet-lite0", cache_dir=str(model_root))
    with pytest.raises(BackboneUnavailable, match="takes no argument"):
        load_backbone("efficientnet-lite2-views:320", cache_dir=str(model_root))
