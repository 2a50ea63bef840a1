"""The one place that decides which backbones a library's assets embed with and read: the library's own
(base) backbone, the candidates `backbone_choice` compares (views, fine-tuned, fine-tuned views), those in use
after its choice, and the backbone fine-tuned on the current training set.

Read by every asset that embeds or reads vectors: `examples`, `finetuned_backbone`, `backbone_choice`,
`embeddings`, `video_frames`, `video_segments`, `heads`, `vector_index` and `tags` (assets_defs/), and by the
tests that check what they wrote. The assets run the embedding (assets_defs/embedding_runs.py); what to embed
with is decided here, below them, so no asset module asks another which backbones a library uses.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ml.backbone_choice import (
    COLOUR_BACKBONE,
    ENSEMBLE_OF,
    finetuned_views_backbone,
    large_views_backbone,
    views_backbone,
)
from ml.backbones import BackboneSpec, cached_backbone
from ml.backbones.concat import concat_name
from resources.libraries import LibraryConfig
from resources.model_store import ModelStore
from resources.warehouse import Warehouse

FORMAT = "1"  # part of the training-set key: bumped when training changes in a way that needs a rerun


def training_rows(table: pl.DataFrame) -> pl.DataFrame:
    """Example rows of the photos that are in the train split of every facet they are labelled in."""
    held = table.filter(pl.col("split") == "holdout")["media_id"].unique()
    return table.filter(~pl.col("media_id").is_in(held.implode()))


def finetune_key(config: LibraryConfig, rows: pl.DataFrame) -> str:
    """The key of a training set: its photos, facets and tags, the library's backbone, seed and fine-tune
    settings, and FORMAT; a backbone fine-tuned on the same key is never trained again."""
    digest = hashlib.sha256()
    settings = config.finetune.model_dump(exclude={"device"})
    digest.update(json.dumps([FORMAT, config.backbone, config.seed, settings], sort_keys=True).encode())
    for media_id, facet, tag_id in rows.select("media_id", "facet", "tag_id").sort("media_id", "facet").iter_rows():
        digest.update(f"{media_id}:{facet}:{tag_id};".encode())
    return digest.hexdigest()[:16]


def trained_on(history: pl.DataFrame, key: str) -> str | None:
    """The backbone name fine-tuned on the training set `key`, while its weights file exists."""
    names = history.filter(pl.col("key") == key)["backbone"].to_list()
    return names[-1] if names and Path(names[-1].split(":", 1)[1]).is_file() else None


@dataclass(frozen=True)
class BackbonePlan:
    """Which backbones one library embeds with and reads. Nothing is cached here but the built backbones
    (per process, by ml/backbones.py): each call reads the warehouse as it is now."""

    config: LibraryConfig
    model_store: ModelStore
    warehouse: Warehouse
    library: str

    def spec(self, name: str | None = None, threads: int = 0) -> BackboneSpec:
        """The library's backbone, or the backbone `name` (a candidate: the fine-tuned one)."""
        return BackboneSpec(
            name=name or self.config.backbone, cache_dir=self.model_store.backbone_cache_dir(), threads=threads
        )

    def library_model_id(self) -> str:
        """The embedding key of the library's backbone (the model is built once per process)."""
        return cached_backbone(self.spec()).model_id

    def finetuned_name(self) -> str | None:
        """The backbone fine-tuned on the current training set, if any (a candidate of `backbone_choice`).

        Only a backbone trained on the current train split counts: one trained on an earlier split may have
        seen photos that are in today's holdout.
        """
        table = self.warehouse.read(self.library, "examples")
        if not self.config.finetunes or table.height == 0:
            return None
        history = self.warehouse.read(self.library, "finetuned_backbone")
        return trained_on(history, finetune_key(self.config, training_rows(table)))

    def candidates(self) -> dict[str, str]:
        """{role: backbone name} of the candidates: base, views, large-views and colour (when views are on),
        finetuned (when trained), finetuned-views (both), and the ensemble of ENSEMBLE_OF (when all of them exist)."""
        config = self.config
        out = {"base": config.backbone}
        if config.views:
            named = {"views": views_backbone(config.backbone), "large-views": large_views_backbone(config.backbone)}
            out |= {role: name for role, name in named.items() if name} | {"colour": COLOUR_BACKBONE}
        tuned = self.finetuned_name()
        if tuned:
            out["finetuned"] = tuned
            if config.views:
                out["finetuned-views"] = finetuned_views_backbone(tuned)
        if all(role in out for role in ENSEMBLE_OF):
            out["ensemble"] = concat_name([out[role] for role in ENSEMBLE_OF])
        return out

    def candidate_models(self) -> dict[str, tuple[str, str]]:
        """{role: (backbone name, model id)} of every candidate. Building each once also exports its ONNX file
        before workers need it."""
        return {
            role: (name, cached_backbone(self.spec(name=name)).model_id) for role, name in self.candidates().items()
        }

    def in_use(self, with_base: bool = True) -> dict[str, tuple[str, str]]:
        """{role: (backbone name, model id)} of the backbones the library's media are embedded with: those
        `backbone_choice` picked for some facet, and the base one (`with_base`: photos, which `vector_index` and
        `similar` read with it; video frames are read by the heads only). Before any choice: the base one."""
        chosen = self.warehouse.read(self.library, "backbone_choice")
        roles = set(chosen["role"].to_list())
        if with_base or not roles:
            roles.add("base")
        return {r: m for r, m in self.candidate_models().items() if r in roles}

    def chosen_roles(self) -> dict[str, dict]:
        """{facet: its row of the `backbone_choice` table, probes parsed}."""
        table = self.warehouse.read(self.library, "backbone_choice")
        return {r["facet"]: {**r, "probes": json.loads(r["probes"])} for r in table.iter_rows(named=True)}
