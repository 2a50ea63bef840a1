"""Trained artefacts: exported backbones (ONNX) and versioned heads, per library."""

from __future__ import annotations

import os
from pathlib import Path

import joblib
from dagster import ConfigurableResource


class ModelStore(ConfigurableResource):
    root: str

    def backbone_cache_dir(self) -> str:
        return str(Path(self.root) / "backbones")

    def finetune_dir(self, library: str, key: str) -> Path:
        """Where the backbone fine-tuned on one training set (`key`) keeps its weights."""
        return Path(self.root) / library / "finetuned" / key

    def head_path(self, library: str, facet: str, version: str) -> Path:
        return Path(self.root) / library / "heads" / facet / f"{version}.joblib"

    def save_head(self, library: str, facet: str, version: str, head: object) -> Path:
        path = self.head_path(library, facet, version)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        joblib.dump(head, tmp)
        os.replace(tmp, path)
        return path

    def load_head(self, library: str, facet: str, version: str):
        path = self.head_path(library, facet, version)
        if not path.exists():
            raise FileNotFoundError(f"head {facet}/{version} of library {library!r} not found at {path}")
        return joblib.load(path)
