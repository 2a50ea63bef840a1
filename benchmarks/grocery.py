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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ml.backbones import BackboneSpec
from ml.media import decode_image
from ml.views import FEATURE_NAMES, FEATURES_VERSION, HSV_BINS, HSV_SIDE, MultiFeatureModel, extract_view_features

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
        self._memory: dict[tuple[int, str, str], dict[str, np.ndarray]] = {}

    @property
    def model(self) -> MultiFeatureModel:
        if self._model is None:
            self._model = MultiFeatureModel(BackboneSpec().cache_dir, self.threads)
        return self._model

    def path(self, size: int, view: str, kind: str = "net") -> Path:
        """kind 'net': the network's pooled features; 'hsv': the colour histogram (no network involved)."""
        if kind == "hsv":
            bins = "x".join(map(str, HSV_BINS))
            return self.out_dir / f"grocery-{self.data.key}-hsv{bins}-side{HSV_SIDE}-s{size}-{view}.npz"
        weights = self.model.weights.replace("@", "-")
        return self.out_dir / f"grocery-{self.data.key}-{weights}-f{FEATURES_VERSION}-s{size}-{view}.npz"

    def _load_image(self, index: int) -> Image.Image:
        # The pipeline's decoder (draft-scaled JPEG decode), so the benchmark sees the pipeline's pixels.
        return decode_image((self.data.root / self.data.paths[index]).read_bytes(), draft_size=2 * 224)

    def get(self, size: int, views: Sequence[str], hsv: bool = False) -> dict[str, dict[str, np.ndarray]]:
        """{view: {feature: (n, dim)}} for every photo; missing views are extracted together (one decode).

        Network features are always all of FEATURE_NAMES; the colour histogram ('hsv') is added when asked.
        """
        views = list(dict.fromkeys(views))
        out = {view: dict(self._get_kind(size, views, "net")[view]) for view in views}
        if hsv:
            for view, feats in self._get_kind(size, views, "hsv").items():
                out[view].update(feats)
        return out

    def _get_kind(self, size: int, views: list[str], kind: str) -> dict[str, dict[str, np.ndarray]]:
        names = ["hsv"] if kind == "hsv" else list(FEATURE_NAMES)
        missing = [v for v in views if (size, v, kind) not in self._memory and not self.path(size, v, kind).exists()]
        if missing:
            started = time.perf_counter()
            log.info("extracting %s features of %d photos x views %s at %d px", kind, len(self.data.paths),
                     missing, size)
            feats = extract_view_features(self.model, self._load_image, len(self.data.paths), missing, size,
                                          names=names)
            elapsed = time.perf_counter() - started
            log.info("extracted in %.0fs (%.1f views/s)", elapsed, len(self.data.paths) * len(missing) / elapsed)
            self.out_dir.mkdir(parents=True, exist_ok=True)
            for view in missing:
                np.savez(self.path(size, view, kind), **feats[view])
                self._memory[(size, view, kind)] = feats[view]
        for view in views:
            if (size, view, kind) not in self._memory:
                with np.load(self.path(size, view, kind)) as npz:
                    self._memory[(size, view, kind)] = {name: npz[name] for name in names}
        return {view: self._memory[(size, view, kind)] for view in views}
