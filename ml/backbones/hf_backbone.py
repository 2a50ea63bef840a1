"""transformers vision backbones from a local folder: ``hf:<directory>``.

The folder is what ``save_pretrained`` writes (config, weights, image processor, maybe a tokenizer). Every
``from_pretrained`` call passes ``local_files_only=True``, so a missing file fails here instead of reaching
for the hub. What the model outputs depends on its kind, read from its config:

- contrastive image-text models (CLIP, SigLIP ...): ``get_image_features``, plus `encode_text` when the folder
  holds a tokenizer - the same space, so free-text search works;
- ``CLIPVisionModelWithProjection`` checkpoints: their ``image_embeds``;
- other vision models (DINOv2, ViT, ConvNeXt ...): ``pooler_output`` when the checkpoint has the pooler's
  weights (DINOv2: the normed CLS token; BEiT: mean of patches; CNNs: global pool), else the CLS token of
  ``last_hidden_state``. A randomly initialised pooler would make every worker's vectors different.

The embedding key (`model_id`) is the model type plus a hash of the folder's weight files, so replacing the
weights gives new ids.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ml.backbones.registry import (
    Backbone,
    BackboneSpec,
    BackboneUnavailable,
    l2_normalise,
    register_backbone,
    resolve_device,
)

log = logging.getLogger(__name__)

PREFIX = "hf"
WEIGHT_PATTERNS = ("*.safetensors", "*.bin")
# Trained with fixed-length text (padding to max_length); padding=True would shift their text vectors.
PAD_TO_MAX_LENGTH = {"siglip", "siglip2"}


def weights_sha256(directory: Path, chunk_bytes: int = 1 << 20) -> str:
    """sha256 over the sorted weight files' names and bytes: names the weights, not configs or tokenizers."""
    files = sorted({p for pattern in WEIGHT_PATTERNS for p in directory.glob(pattern) if p.is_file()})
    if not files:
        raise BackboneUnavailable(f"no *.safetensors or *.bin weight files in {str(directory)!r}")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as f:
            while chunk := f.read(chunk_bytes):
                digest.update(chunk)
    return digest.hexdigest()


def _pooled(output):
    """transformers 4.x returns a tensor from get_*_features, 5.x an output whose pooler_output is it."""
    return output if hasattr(output, "ndim") else output.pooler_output


class HFBackbone(Backbone):
    """A transformers vision model from a local folder, in torch on CPU or CUDA (fp16 autocast)."""

    def __init__(self, directory: Path, device: str, threads: int = 0):
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise BackboneUnavailable("hf backbones need the packages transformers and torch") from exc
        if not directory.is_dir():
            raise BackboneUnavailable(
                f"hf model folder {str(directory)!r} is not a directory on this machine; "
                "nothing is downloaded, copy a save_pretrained folder there first"
            )
        if threads and device == "cpu":
            torch.set_num_threads(threads)
        self.torch = torch
        self.device = device
        self.directory = directory
        try:
            self.config = transformers.AutoConfig.from_pretrained(directory, local_files_only=True)
            self.processor = transformers.AutoImageProcessor.from_pretrained(directory, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise BackboneUnavailable(f"cannot read an hf vision model in {str(directory)!r}: {exc}") from exc
        self.model_id = f"{PREFIX}:{self.config.model_type}@{weights_sha256(directory)[:12]}"
        self.model, self.kind, self.use_pooler = self._load_model(transformers)
        self.model = self.model.float().to(device).eval()
        self._tokenizer = None
        self.dim = int(self.forward(self.preprocess([Image.new("RGB", (64, 64))])).shape[1])

    def _load_model(self, transformers):
        """(model, kind, use_pooler): kind is 'contrastive', 'projection' or 'vision' (see module doc)."""
        directory = self.directory
        if "CLIPVisionModelWithProjection" in (self.config.architectures or []):
            model, info = transformers.CLIPVisionModelWithProjection.from_pretrained(
                directory, local_files_only=True, output_loading_info=True
            )
            kind = "projection"
        else:
            model, info = transformers.AutoModel.from_pretrained(
                directory, local_files_only=True, output_loading_info=True
            )
            contrastive = hasattr(model, "get_image_features") and hasattr(model, "get_text_features")
            kind = "contrastive" if contrastive else "vision"
        missing = list(info.get("missing_keys", []))
        pooler_missing = any(key.startswith("pooler.") for key in missing)
        others = [key for key in missing if not key.startswith("pooler.")]
        if others:
            raise BackboneUnavailable(
                f"{str(directory)!r} lacks weights for {others[:5]}...; those would be random per load"
            )
        use_pooler = kind == "vision" and not pooler_missing
        if kind == "vision" and pooler_missing:
            log.info("%s has no pooler weights; embedding the CLS token instead", directory)
        return model, kind, use_pooler

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        """The folder's own image processor: the resize, crop and normalisation the model was trained with."""
        rgb = [image.convert("RGB") for image in images]
        pixels = self.processor(images=rgb, return_tensors="pt")["pixel_values"]
        return pixels.float().numpy()

    def forward(self, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device, non_blocking=True)
        with torch.inference_mode(), torch.autocast(self.device, enabled=self.device == "cuda"):
            if self.kind == "contrastive":
                features = _pooled(self.model.get_image_features(pixel_values=x))
            elif self.kind == "projection":
                features = self.model(pixel_values=x).image_embeds
            else:
                out = self.model(pixel_values=x)
                if self.use_pooler and getattr(out, "pooler_output", None) is not None:
                    features = out.pooler_output
                else:
                    hidden = out.last_hidden_state
                    features = hidden[:, 0] if hidden.ndim == 3 else hidden.mean(dim=(2, 3))
            return features.flatten(1).float().cpu().numpy()

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """Texts -> L2-normalised float32 vectors in the image space (image-text models with a tokenizer)."""
        if self.kind != "contrastive":
            raise BackboneUnavailable(f"{self.model_id} is not an image-text model; it has no text encoder")
        torch = self.torch
        if self._tokenizer is None:
            import transformers

            try:
                self._tokenizer = transformers.AutoTokenizer.from_pretrained(
                    self.directory, local_files_only=True
                )
            except (OSError, ValueError) as exc:
                raise BackboneUnavailable(f"no tokenizer files in {str(self.directory)!r}: {exc}") from exc
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        max_length = self.config.text_config.max_position_embeddings
        padding = "max_length" if self.config.model_type in PAD_TO_MAX_LENGTH else True
        inputs = self._tokenizer(
            list(texts), padding=padding, truncation=True, max_length=max_length, return_tensors="pt"
        )
        inputs = {k: v.to(self.device) for k, v in inputs.items() if k in ("input_ids", "attention_mask")}
        with torch.inference_mode(), torch.autocast(self.device, enabled=self.device == "cuda"):
            features = _pooled(self.model.get_text_features(**inputs))
        return l2_normalise(features.float().cpu().numpy())


def _build(spec: BackboneSpec, arg: str) -> Backbone:
    if not arg:
        raise BackboneUnavailable("hf backbones are named hf:<local directory written by save_pretrained>")
    return HFBackbone(Path(arg).expanduser(), resolve_device(spec.device), spec.threads)


register_backbone(PREFIX, _build)
