"""The grocery-produce data set and its cached features, shared by the accuracy benchmark and its notebooks.

Why a cache: embedding 3.7k photos under several views and input sizes costs minutes per (size, view) on
2 cores, while every head experiment afterwards costs seconds. Features are stored one .npz per
(weights, feature-graph version, input size, view), each holding every pooled feature of
`ml.views.FEATURE_NAMES`, and keyed by a hash of the manifest so a changed data set never reuses them.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ml.backbones import BackboneSpec
from ml.media import decode_image
from ml.views import FEATURE_NAMES, FEATURES_VERSION, MultiFeatureModel, extract_view_features

log = logging.getLogger(__name__)

DATASET = Path("/work/shared/datasets/grocery-produce")
OUT_DIR = Path(__file__).resolve().parent / "out"


@dataclass
class Dataset:
    """Paths, fine labels and splits of the manifest, in manifest order."""

    root: Path
    paths: list[str]
    labels: np.ndarray
    splits: np.ndarray
    key: str  # short hash of the manifest: part of every cache file name

    def mask(self, *splits: str) -> np.ndarray:
        return np.isin(self.splits, splits)


def load_dataset(root: Path = DATASET) -> Dataset:
    """Read manifest.csv (path,label,coarse_label,split); fails clearly when the data set is absent."""
    manifest = root / "manifest.csv"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: the accuracy benchmark needs the grocery-produce data set")
    raw = manifest.read_bytes()
    rows = list(csv.DictReader(raw.decode("utf-8").splitlines()))
    return Dataset(
        root=root,
        paths=[r["path"] for r in rows],
        labels=np.array([r["label"] for r in rows]),
        splits=np.array([r["split"] for r in rows]),
        key=hashlib.sha256(raw).hexdigest()[:10],
    )


class FeatureCache:
    """Features of every photo of a data set under (size, view), computed on first use and kept as .npz."""

    def __init__(self, data: Dataset, out_dir: Path = OUT_DIR, threads: int = 0):
        self.data, self.out_dir, self.threads = data, out_dir, threads
        self._model: MultiFeatureModel | None = None
        self._memory: dict[tuple[int, str], dict[str, np.ndarray]] = {}

    @property
    def model(self) -> MultiFeatureModel:
        if self._model is None:
            self._model = MultiFeatureModel(BackboneSpec().cache_dir, self.threads)
        return self._model

    def path(self, size: int, view: str) -> Path:
        weights = self.model.weights.replace("@", "-")
        return self.out_dir / f"grocery-{self.data.key}-{weights}-f{FEATURES_VERSION}-s{size}-{view}.npz"

    def _load_image(self, index: int) -> Image.Image:
        # The pipeline's decoder (draft-scaled JPEG decode), so the benchmark sees the pipeline's pixels.
        return decode_image((self.data.root / self.data.paths[index]).read_bytes(), draft_size=2 * 224)

    def get(self, size: int, views: list[str] | tuple[str, ...]) -> dict[str, dict[str, np.ndarray]]:
        """{view: {feature: (n, dim)}} for every photo; missing views are extracted together (one decode)."""
        missing = [v for v in views if (size, v) not in self._memory and not self.path(size, v).exists()]
        if missing:
            started = time.perf_counter()
            log.info("extracting %d photos x views %s at %d px", len(self.data.paths), missing, size)
            feats = extract_view_features(self.model, self._load_image, len(self.data.paths), missing, size)
            elapsed = time.perf_counter() - started
            log.info("extracted in %.0fs (%.1f views/s)", elapsed, len(self.data.paths) * len(missing) / elapsed)
            self.out_dir.mkdir(parents=True, exist_ok=True)
            for view in missing:
                np.savez(self.path(size, view), **feats[view])
                self._memory[(size, view)] = feats[view]
        for view in views:
            if (size, view) not in self._memory:
                with np.load(self.path(size, view)) as npz:
                    self._memory[(size, view)] = {name: npz[name] for name in FEATURE_NAMES}
        return {view: self._memory[(size, view)] for view in views}
