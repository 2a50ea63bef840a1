"""Two or more backbones read as one: their embeddings side by side (`concat:<name>|<name>`).

Why: backbones that read a photo differently make different mistakes. On grocery-produce's next session
(benchmarks/trust.py) the larger frozen backbone on views and the fine-tuned one on views each read ~85 % top-1,
and a logistic regression on both vectors side by side reads more than either. `backbone_choice` compares the
pair as one more candidate and keeps it only where the group-aware holdout says it wins by a margin; it costs
the sum of its parts per photo.

Each part's features are L2-normalised, put side by side and divided by sqrt(parts), so the result has unit norm
and every part weighs the same. `join` does the same to vectors already embedded by the parts (what
`backbone_choice` probes before anything is embedded by the pair): the two agree to float rounding, which a
test checks. Pure ML: no Dagster, no Ray.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from PIL import Image

from ml.backbones.registry import (
    Backbone,
    BackboneSpec,
    BackboneUnavailable,
    cached_backbone,
    l2_normalise,
    register_backbone,
)

PREFIX = "concat"
SEPARATOR = "|"


def concat_name(names: Sequence[str]) -> str:
    """The backbone name of `names` read side by side, in that order."""
    if len(names) < 2 or any(SEPARATOR in n for n in names):
        raise ValueError(f"concat needs two or more backbone names without {SEPARATOR!r}: {list(names)}")
    return f"{PREFIX}:{SEPARATOR.join(names)}"


def join(parts: Sequence[np.ndarray]) -> np.ndarray:
    """The vectors of the parts (n x d_i each, one row per photo, in the same order) as the pair's vectors."""
    if len(parts) < 2 or len({len(p) for p in parts}) != 1:
        raise ValueError("join needs two or more blocks with the same number of rows")
    scale = np.float32(1.0 / np.sqrt(len(parts)))
    return (np.hstack([l2_normalise(p) for p in parts]) * scale).astype(np.float32)


class Concat(Backbone):
    """The parts' embeddings of the same photos, side by side. `preprocess` packs each image's inputs for
    every part into one flat row (the parts differ in input size and views); `forward` unpacks them."""

    def __init__(self, parts: Sequence[Backbone]):
        self.parts = list(parts)
        self.dim = sum(p.dim for p in self.parts)
        self.device = self.parts[0].device
        self.batch_size = min(p.batch_size for p in self.parts)
        self.input_size = max(p.input_size for p in self.parts)
        self.model_id = f"{PREFIX}({SEPARATOR.join(p.model_id for p in self.parts)})"
        # each part's input shape per image (fixed by the part): how forward unpacks a packed row
        probe = [Image.new("RGB", (self.input_size, self.input_size))]
        self._shapes = [np.asarray(p.preprocess(probe)).shape[1:] for p in self.parts]

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        blocks = [np.asarray(p.preprocess(images), dtype=np.float32) for p in self.parts]
        return np.hstack([b.reshape(len(images), -1) for b in blocks])

    def forward(self, batch: np.ndarray) -> np.ndarray:
        out, start = [], 0
        for part, shape in zip(self.parts, self._shapes, strict=True):
            size = int(np.prod(shape))
            block = batch[:, start : start + size].reshape(len(batch), *shape)
            out.append(np.asarray(part.forward(block), dtype=np.float32))
            start += size
        return join(out)


def _build(spec: BackboneSpec, arg: str) -> Backbone:
    names = [n for n in arg.split(SEPARATOR) if n]
    if len(names) < 2:
        raise BackboneUnavailable(f"concat needs two or more backbone names separated by {SEPARATOR!r}, not {arg!r}")
    # the parts are the ones a run reading them alone builds: built once per process
    return Concat([cached_backbone(dataclasses.replace(spec, name=n)) for n in names])


register_backbone(PREFIX, _build)
