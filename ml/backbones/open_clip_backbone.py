"""open_clip backbones from a local checkpoint file: ``open_clip:<arch>@<path>``.

``open_clip:ViT-B-32@/models/vitb32.pt`` builds the open_clip architecture ``ViT-B-32`` and loads the
weights from the file, the same call as ``open_clip.create_model_and_transforms(arch, pretrained=<file>)``.
Only a file that exists is ever passed on, so open_clip never falls back to a download by tag. The
embedding key (`model_id`) names the architecture and a hash of the checkpoint's bytes, so a re-trained or
replaced file gets a new id and its vectors never mix with the old ones. CLIP-style models also encode
text, which is what free-text search needs later.
"""

from __future__ import annotations

import hashlib
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

PREFIX = "open_clip"


def file_sha256(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Full sha256 hex digest of a file, read in chunks (checkpoints can be several GB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def parse_arg(arg: str) -> tuple[str, Path]:
    """``<arch>@<path>`` -> (arch, path), split on the first ``@``: arch names never hold one, paths may."""
    arch, sep, path = arg.partition("@")
    if not sep or not arch or not path:
        raise BackboneUnavailable(
            f"open_clip backbones are named open_clip:<arch>@<checkpoint file>, e.g. "
            f"open_clip:ViT-B-32@/models/vitb32.pt; got {PREFIX}:{arg!r}"
        )
    # open_clip itself reads "ViT-B/32" as "ViT-B-32"; normalise so both spellings share one model_id.
    return arch.replace("/", "-"), Path(path).expanduser()


class OpenClipBackbone(Backbone):
    """An open_clip model's image tower (and text tower, for `encode_text`), in torch on CPU or CUDA."""

    def __init__(self, arch: str, checkpoint: Path, device: str, threads: int = 0):
        try:
            import open_clip
            import torch
        except ImportError as exc:
            raise BackboneUnavailable("open_clip backbones need packages open_clip_torch and torch") from exc
        if not checkpoint.is_file():
            raise BackboneUnavailable(
                f"open_clip checkpoint {str(checkpoint)!r} is not a file on this machine; "
                "nothing is downloaded, copy the checkpoint there first"
            )
        if arch not in open_clip.list_models():
            raise BackboneUnavailable(
                f"open_clip has no architecture {arch!r}; register its config with open_clip.add_model_config"
            )
        if threads and device == "cpu":
            torch.set_num_threads(threads)
        self.torch = torch
        self.device = device
        self.arch = arch
        self.checkpoint = checkpoint
        # Hash before loading: the id then names exactly the bytes that were read.
        self.model_id = f"{PREFIX}:{arch}@{file_sha256(checkpoint)[:12]}"
        model, _, self.transform = open_clip.create_model_and_transforms(
            arch, pretrained=str(checkpoint), device=device
        )
        self.model = model.eval()
        self.dim = int(self._embed_dim())
        self._tokenizer = None

    def _embed_dim(self) -> int:
        """Output width of the image tower; towers that do not record it are measured by a dummy forward."""
        output_dim = getattr(self.model.visual, "output_dim", None)
        if isinstance(output_dim, int):
            return output_dim
        size = self.model.visual.image_size
        h, w = (size, size) if isinstance(size, int) else size
        zeros = np.zeros((1, 3, h, w), dtype=np.float32)
        return self.forward(zeros).shape[1]

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        """open_clip's own validation transform (resize, centre crop, mean/std), as the model was trained."""
        return np.stack([self.transform(image.convert("RGB")).numpy() for image in images]).astype(np.float32)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device, non_blocking=True)
        with torch.inference_mode(), torch.autocast(self.device, enabled=self.device == "cuda"):
            return self.model.encode_image(x).float().cpu().numpy()

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """Texts -> L2-normalised float32 vectors (n, dim) in the image embedding space (free-text search)."""
        torch = self.torch
        if self._tokenizer is None:
            import open_clip

            try:
                self._tokenizer = open_clip.get_tokenizer(self.arch)
            except Exception as exc:  # an HF tokenizer not in the local cache: fail loudly, never download
                raise BackboneUnavailable(f"no local tokenizer for open_clip:{self.arch}: {exc}") from exc
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        tokens = self._tokenizer(list(texts)).to(self.device)
        with torch.inference_mode(), torch.autocast(self.device, enabled=self.device == "cuda"):
            features = self.model.encode_text(tokens).float().cpu().numpy()
        return l2_normalise(features)


def _build(spec: BackboneSpec, arg: str) -> Backbone:
    arch, checkpoint = parse_arg(arg)
    return OpenClipBackbone(arch, checkpoint, resolve_device(spec.device), spec.threads)


register_backbone(PREFIX, _build)
