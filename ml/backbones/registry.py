"""The backbone registry: the `Backbone` interface, `BackboneSpec` (the picklable builder) and the families by
name prefix. Each family module (`efficientnet`, `hf_backbone`, `open_clip_backbone`, `ml/views.py`) imports
this module and registers itself; the `ml.backbones` package imports every family, so a name resolves once the
package is imported (importing this module imports the package first). Kept apart from the package's
`__init__` so that a family never imports the module that imports it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

DEFAULT_BACKBONE = "efficientnet-lite0"
# Batch sizes by device: on CPU larger batches stop paying off past ~32 (and delay the decode overlap);
# on a GPU the forward pass is cheap and wants large batches to amortise transfers and kernel launches.
CPU_BATCH = 32
CUDA_BATCH = 256


class BackboneUnavailable(RuntimeError):
    """The backbone's files or libraries are not on this machine (never fixed by downloading)."""


class Backbone:
    """An image encoder. Subclasses set `model_id`, `dim`, `device`; implement `preprocess` and `forward`."""

    model_id: str
    dim: int
    device: str = "cpu"
    batch_size: int = 32
    input_size: int = 224  # the side the model sees: JPEGs are draft-decoded to no less than this

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Images -> model input batch (n, 3, H, W) float32."""
        raise NotImplementedError

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """The raw model forward pass on a preprocessed batch -> (n, dim) features (the benchmark's unit)."""
        raise NotImplementedError

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Images -> L2-normalised float32 embeddings (n, dim), in batches of `batch_size`."""
        out = []
        for start in range(0, len(images), self.batch_size):
            out.append(self.forward(self.preprocess(images[start : start + self.batch_size])))
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(np.concatenate(out))


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'. Explicit values pass through (checked)."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    if device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


Factory = Callable[["BackboneSpec", str], Backbone]
_REGISTRY: dict[str, Factory] = {}


def register_backbone(prefix: str, factory: Factory) -> None:
    """Register a family: names equal to `prefix`, or starting with `prefix:`, build through `factory`."""
    _REGISTRY[prefix] = factory


def _factory_for(name: str) -> tuple[Factory, str]:
    if name in _REGISTRY:
        return _REGISTRY[name], ""
    prefix, sep, arg = name.partition(":")
    if sep and prefix in _REGISTRY:
        return _REGISTRY[prefix], arg
    known = ", ".join(sorted(_REGISTRY))
    raise BackboneUnavailable(f"unknown backbone {name!r}; known families: {known}")


def list_backbones() -> list[str]:
    return sorted(_REGISTRY)


@dataclass(frozen=True)
class BackboneSpec:
    """Picklable recipe for a backbone: what Ray tasks receive; `build()` runs inside the worker."""

    name: str = DEFAULT_BACKBONE
    cache_dir: str = field(default_factory=lambda: str(Path.home() / ".cache" / "tagsmith" / "models"))
    device: str = "auto"
    batch_size: int = 0  # 0 = by device: CPU_BATCH on CPU, CUDA_BATCH on a GPU
    threads: int = 0  # CPU threads for the runtime; 0 = all cores of this process

    def build(self) -> Backbone:
        factory, arg = _factory_for(self.name)
        backbone = factory(self, arg)
        backbone.batch_size = self.batch_size or (CUDA_BATCH if backbone.device == "cuda" else CPU_BATCH)
        log.info("backbone %s ready on %s (dim %d)", backbone.model_id, backbone.device, backbone.dim)
        return backbone


_BUILT: dict[BackboneSpec, Backbone] = {}


def cached_backbone(spec: BackboneSpec) -> Backbone:
    """The backbone for `spec`, built once per process (a Ray worker, a Dagster run, the CLI)."""
    if spec not in _BUILT:
        _BUILT[spec] = spec.build()
    return _BUILT[spec]


def load_backbone(name: str = DEFAULT_BACKBONE, **kwargs) -> Backbone:
    """Build a backbone by name; kwargs are `BackboneSpec` fields (cache_dir, device, batch_size, threads)."""
    return BackboneSpec(name=name, **kwargs).build()
