"""Multi-view, multi-resolution, multi-layer embeddings from a frozen EfficientNet-Lite0.

Why: a frozen ImageNet backbone read through one 224 px centre crop throws away what a fine-grained product
head needs - the image border (the crop), fine texture (the resolution) and mid-level colour/texture
features (only the last layer is pooled). This module gets them back without training the backbone:

- *views*: deterministic geometric variants of a photo (centre crop, whole image squashed to a square,
  a tighter zoom, corner crops, each optionally mirrored); averaging their features is test-time
  augmentation, and adding them as extra training rows is training-time augmentation;
- *input size*: EfficientNet is fully convolutional, so the same weights run at 256-384 px; the ONNX
  graph exported here has a dynamic spatial size (any multiple of 32, where TF "SAME" padding is the same
  for every size);
- *features*: several poolings from one forward pass - the head's average pool (the default embedding),
  its GeM and max pools, and average pools of intermediate blocks (multi-scale features) - plus an HSV
  colour histogram of the same view, computed outside the network.

On grocery-produce (50 fine-grained classes, `benchmarks/accuracy.py`) three of these paid: tighter centre
crops pooled with the whole frame (center+zoom+zoom60, 80 % and 60 % of the short side: +7.8 points top-1,
+9.1 on the group-aware holdout, for 3 views), 320 px input (+2.6) and the colour histogram (+2). Flips, the
squashed whole image, corner crops as training rows, block pools and GeM stayed within noise or lost.

`extract_view_features` is the cached-feature workhorse of `benchmarks/accuracy.py`; `EfficientNetViews` is
the same thing as a `Backbone`, so the pipeline's `embed_chunk` can run a chosen configuration unchanged
(its `preprocess` returns one (views, 3, S, S) block per image, `forward` pools over the views).
Pure ML: no Dagster, no Ray.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from ml.backbones.colour import hellinger_hsv
from ml.backbones.efficientnet import (
    MEAN,
    STD,
    _weights_tag,
    build_torch_feature_model,
    cpu_session,
    weights_path,
    write_onnx_atomically,
)
from ml.backbones.registry import Backbone, BackboneSpec, BackboneUnavailable, _factory_for, register_backbone
from ml.view_geometry import parse_view, view_image

log = logging.getLogger(__name__)

# Bump when the exported graph's outputs change: it is part of the ONNX file name and of `model_id`.
FEATURES_VERSION = 1
# Block outputs pooled as multi-scale features: last block of each stage from stride 8 on
# (block index -> channels: 4 -> 40, 7 -> 80, 10 -> 112, 14 -> 192, 15 -> 320).
BLOCK_TAPS: tuple[int, ...] = (4, 7, 10, 14, 15)
# Outputs of the exported graph, in order.
ONNX_FEATURES: dict[str, int] = {"avg": 1280, "gem": 1280, "max": 1280, "b4": 40, "b7": 80, "b10": 112,
                                 "b14": 192, "b15": 320}
FEATURE_NAMES: tuple[str, ...] = tuple(ONNX_FEATURES)
# Colour histogram of the view's pixels (hue 16 x saturation 4 x value 4 bins), computed outside the graph:
# ImageNet features are trained to be colour-robust, while a Granny Smith and a Golden Delicious differ mostly
# by colour.
HSV_BINS = (16, 4, 4)
HSV_SIDE = 80  # the histogram reads every k-th pixel so that about 80 x 80 are counted: 10x cheaper at 320 px
FEATURE_DIMS: dict[str, int] = {**ONNX_FEATURES, "hsv": HSV_BINS[0] * HSV_BINS[1] * HSV_BINS[2]}
GEM_P = 3.0


# ------------------------------------------------------------------------------------------------ views
def view_pixels(image: Image.Image, views: Sequence[str], size: int) -> np.ndarray:
    """(len(views), 3, size, size) float32 model input in the Lite weights' range, (x - 127) / 128."""
    out = np.empty((len(views), 3, size, size), dtype=np.float32)
    for i, view in enumerate(views):
        out[i] = np.asarray(view_image(image, view, size), dtype=np.float32).transpose(2, 0, 1)
    out -= MEAN
    out /= STD
    return out


def hsv_histogram(pixels: np.ndarray) -> np.ndarray:
    """(n, 3, S, S) model input -> (n, 256) square-rooted HSV histograms (unit L2 norm: Hellinger mapping).

    Computed from the model input, so it sees exactly the view the network sees and needs no extra decode.
    A histogram hardly changes with resolution, so only every k-th pixel (about HSV_SIDE per side) is counted.
    """
    step = max(1, pixels.shape[-1] // HSV_SIDE)
    rgb = np.clip(pixels[:, :, ::step, ::step] * STD + MEAN + 0.5, 0, 255).astype(np.uint8)
    out = np.empty((len(rgb), FEATURE_DIMS["hsv"]), dtype=np.float32)
    for i, arr in enumerate(rgb):
        out[i] = hellinger_hsv(arr.transpose(1, 2, 0), HSV_BINS)
    return out


# --------------------------------------------------------------------------------------- feature model
def build_torch_multi_feature_model():
    """Torch module (n, 3, H, W) -> tuple of pooled features in FEATURE_NAMES order."""
    import torch

    net = build_torch_feature_model().net

    class MultiFeatures(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            net = self.net
            x = net._swish(net._bn0(net._conv_stem(x)))
            taps = {}
            for index, block in enumerate(net._blocks):
                x = block(x)
                if index in BLOCK_TAPS:
                    taps[index] = x.mean(dim=(2, 3))
            x = net._swish(net._bn1(net._conv_head(x)))  # ReLU6: non-negative, so GeM is defined
            gem = x.clamp(min=1e-6).pow(GEM_P).mean(dim=(2, 3)).pow(1.0 / GEM_P)
            return (x.mean(dim=(2, 3)), gem, x.amax(dim=(2, 3)), *(taps[i] for i in BLOCK_TAPS))

    return MultiFeatures(net).eval()


def export_multi_feature_onnx(cache_dir: Path) -> Path:
    """Export once per weights version and FEATURES_VERSION, with dynamic batch and spatial size."""
    target = Path(cache_dir) / f"efficientnet-lite0-{_weights_tag(weights_path())}-multi-v{FEATURES_VERSION}.onnx"
    if target.exists():
        return target
    axes = {"pixels": {0: "batch", 2: "height", 3: "width"}, **{name: {0: "batch"} for name in ONNX_FEATURES}}
    return write_onnx_atomically(build_torch_multi_feature_model(), target, list(FEATURE_NAMES), axes)


class MultiFeatureModel:
    """onnxruntime session returning every pooled feature of FEATURE_NAMES for a pixel batch."""

    def __init__(self, cache_dir: str | Path, threads: int = 0):
        self.session = cpu_session(export_multi_feature_onnx(Path(cache_dir)), threads)
        self.weights = f"efficientnet-lite0@{_weights_tag(weights_path())}"

    def run(self, pixels: np.ndarray, names: Sequence[str] = FEATURE_NAMES) -> dict[str, np.ndarray]:
        """pixels (n, 3, S, S) with S a multiple of 32 -> {name: (n, dim) float32}."""
        if pixels.shape[2] % 32 or pixels.shape[3] % 32:
            raise ValueError(f"input size {pixels.shape[2:]} is not a multiple of 32")
        outs = self.session.run(list(names), {"pixels": np.ascontiguousarray(pixels, dtype=np.float32)})
        return dict(zip(names, outs, strict=True))


# ------------------------------------------------------------------------------------ batch extraction
def extract_view_features(
    model: MultiFeatureModel,
    load_image: Callable[[int], Image.Image],
    n_items: int,
    views: Sequence[str],
    size: int,
    batch_images: int = 16,
    decode_threads: int = 2,
    names: Sequence[str] = FEATURE_NAMES,
) -> dict[str, dict[str, np.ndarray]]:
    """Features of every item under every view: {view: {feature: (n_items, dim)}}; `names` may include 'hsv'.

    Each image is decoded once for all its views; decoding the next batch overlaps the current forward
    pass (PIL and onnxruntime release the GIL), as in `ml.embedding.embed_chunk`.
    """
    out = {v: {f: np.empty((n_items, FEATURE_DIMS[f]), dtype=np.float32) for f in names} for v in views}
    starts = list(range(0, n_items, batch_images))
    with ThreadPoolExecutor(max_workers=max(1, decode_threads)) as pool:

        def submit(start: int):
            idx = range(start, min(n_items, start + batch_images))
            return [pool.submit(lambda i: view_pixels(load_image(i), views, size), i) for i in idx]

        pending = submit(starts[0]) if starts else []
        for k, start in enumerate(starts):
            block = np.stack([f.result() for f in pending])  # (b, v, 3, S, S)
            pending = submit(starts[k + 1]) if k + 1 < len(starts) else []
            feats = _run_features(model, block.reshape(-1, 3, size, size), names)
            for name, values in feats.items():
                values = values.reshape(len(block), len(views), -1)
                for j, view in enumerate(views):
                    out[view][name][start : start + len(block)] = values[:, j]
    return out


def _run_features(model: MultiFeatureModel, pixels: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    feats = model.run(pixels, [n for n in names if n in ONNX_FEATURES]) if set(names) & set(ONNX_FEATURES) else {}
    if "hsv" in names:
        feats["hsv"] = hsv_histogram(pixels)
    return feats


# ----------------------------------------------------------------------------------------- combination
def l2n(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def combine_features(
    per_view: Sequence[dict[str, np.ndarray]],
    features: Sequence[str],
    weights: dict[str, float] | None = None,
) -> np.ndarray:
    """Average each feature over views, L2-normalise it per group, weight and concatenate, re-normalise.

    Per-group normalisation matters because the groups live on different scales (a 40-d block pool has a
    small norm next to the 1280-d head pool); without it the concatenation is just the largest group.
    Data-independent on purpose: the result can be stored as the embedding, with no fitted transform.
    """
    weights = weights or {}
    parts = []
    for name in features:
        mean = np.mean([l2n(view[name]) for view in per_view], axis=0)
        parts.append(l2n(mean) * float(weights.get(name, 1.0)))
    return l2n(np.concatenate(parts, axis=-1))


# ---------------------------------------------------------------------------------- pipeline backbone
class EfficientNetViews(Backbone):
    """EfficientNet-Lite0 at `size` px, features pooled over `views` and concatenated over `features`.

    A drop-in `Backbone` for `ml.embedding.embed_chunk`: `preprocess` gives each image a (views, 3, S, S)
    block, `forward` takes (n, views, 3, S, S) and returns (n, dim). `model_id` names the whole
    configuration, so embeddings of different configurations never mix in the store.
    """

    def __init__(self, cache_dir: str | Path, size: int, features: Sequence[str], views: Sequence[str] = ("center",),
                 threads: int = 0, weights: dict[str, float] | None = None):
        if size % 32:
            raise BackboneUnavailable(f"input size {size} is not a multiple of 32")
        unknown = [f for f in features if f not in FEATURE_DIMS]
        if unknown or not features:
            raise BackboneUnavailable(f"unknown features {unknown or features}; known: {tuple(FEATURE_DIMS)}")
        for view in views:
            parse_view(view)
        self.model = MultiFeatureModel(cache_dir, threads)
        self.size, self.features, self.views = size, tuple(features), tuple(views)
        self.input_size = size
        self.weights = dict(weights or {})
        self.dim = sum(FEATURE_DIMS[f] for f in self.features)
        self.device = "cpu"
        config = view_config_name(size, self.features, self.views, self.weights)
        self.model_id = f"{self.model.weights}:views-v{FEATURES_VERSION}/{config}"

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        return np.stack([view_pixels(image, self.views, self.size) for image in images])

    def forward(self, batch: np.ndarray) -> np.ndarray:
        n, v = batch.shape[:2]
        feats = _run_features(self.model, batch.reshape(n * v, 3, self.size, self.size), self.features)
        per_view = [{name: feats[name].reshape(n, v, -1)[:, j] for name in self.features} for j in range(v)]
        return combine_features(per_view, self.features, self.weights)


def view_config_name(size: int, features: Iterable[str], views: Iterable[str],
                     weights: dict[str, float] | None = None) -> str:
    """'320/avg+hsv*0.5/center': the configuration as text, usable as a backbone argument.

    A feature's weight other than 1 follows it after '*'; weights change the vectors, so they are part of
    the name (and of `model_id`).
    """
    weights = weights or {}
    feats = "+".join(f if weights.get(f, 1.0) == 1.0 else f"{f}*{weights[f]:g}" for f in features)
    return f"{size}/{feats}/{'+'.join(views)}"


def parse_view_config(arg: str) -> tuple[int, list[str], list[str], dict[str, float]]:
    """Inverse of `view_config_name`: (size, features, views, weights); BackboneUnavailable when malformed."""
    try:
        size, feats, views = arg.split("/")
        features, weights = [], {}
        for token in feats.split("+"):
            name, star, weight = token.partition("*")
            features.append(name)
            if star:
                weights[name] = float(weight)
        return int(size), features, views.split("+"), weights
    except ValueError as exc:
        raise BackboneUnavailable(
            f"expected efficientnet-lite0-views:SIZE/FEAT[*W]+FEAT/VIEW+VIEW, not {arg!r}"
        ) from exc


def _build(spec: BackboneSpec, arg: str) -> Backbone:
    size, features, views, weights = parse_view_config(arg)
    return EfficientNetViews(spec.cache_dir, size, features, views, spec.threads, weights)


class PooledViews(Backbone):
    """Any backbone read on several views of each photo, its embeddings averaged (each L2-normalised first):
    the views candidate of a backbone that `EfficientNetViews` cannot build, the fine-tuned one."""

    def __init__(self, inner: Backbone, views: Sequence[str]):
        for view in views:
            parse_view(view)
        self.inner, self.views = inner, tuple(views)
        self.dim, self.device, self.input_size = inner.dim, inner.device, inner.input_size
        self.model_id = f"{inner.model_id}:views/{'+'.join(self.views)}"

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        side = self.input_size
        crops = [view_image(image, view, side) for image in images for view in self.views]
        batch = self.inner.preprocess(crops)
        return batch.reshape(len(images), len(self.views), *batch.shape[1:])

    def forward(self, batch: np.ndarray) -> np.ndarray:
        n, v = batch.shape[:2]
        feats = np.asarray(self.inner.forward(batch.reshape(n * v, *batch.shape[2:])), dtype=np.float32)
        return l2n(l2n(feats).reshape(n, v, -1).mean(axis=1))


# The views a pooled candidate reads: the whole frame and centre crops keeping 80 % and 60 % of it.
POOLED_VIEWS: tuple[str, ...] = ("center", "zoom", "zoom60")


def _build_finetuned_views(spec: BackboneSpec, arg: str) -> Backbone:
    """`efficientnet-lite0-ft-views:<weights file>`: the fine-tuned backbone on the whole frame and centre crops
    keeping 80 % and 60 % of it, pooled."""
    factory, inner_arg = _factory_for(f"efficientnet-lite0-ft:{arg}")
    return PooledViews(factory(spec, inner_arg), POOLED_VIEWS)


def _build_large_views(spec: BackboneSpec, arg: str) -> Backbone:
    """`efficientnet-lite2-views`: the largest shipped member of the family (frozen, 260 px) on the same views,
    pooled: 85.6 % top-1 on grocery-produce's next session against 82.5 % for the default one on views
    (ml/backbone_choice.py, benchmarks/ensembles.py)."""
    if arg:
        raise BackboneUnavailable(f"efficientnet-lite2-views takes no argument, not {arg!r}")
    factory, inner_arg = _factory_for("efficientnet-lite2")
    return PooledViews(factory(spec, inner_arg), POOLED_VIEWS)


# Importing this module makes e.g. "efficientnet-lite0-views:320/avg+hsv*0.5/center" a backbone name.
register_backbone("efficientnet-lite0-views", _build)
register_backbone("efficientnet-lite0-ft-views", _build_finetuned_views)
register_backbone("efficientnet-lite2-views", _build_large_views)
