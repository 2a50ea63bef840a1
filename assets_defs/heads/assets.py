"""Heads: per-facet classifiers trained on cached embeddings, evaluated, gated by a blocking holdout check.

`heads` trains one candidate per facet (strategies compared on the holdout split, the best kept with its
metrics and per-tag thresholds). `evaluation_report` writes the HTML evaluation and carries the
`holdout_accuracy_bar` check, which is *blocking*: if any facet's candidate is below the library's bar,
`promoted_heads` (and so `tags`) does not run, and the heads promoted earlier stay in use. A candidate is
versioned by a hash of what it was trained on, so a rerun with unchanged examples and backbone reuses it
instead of retraining.
"""

import hashlib
import json
from dataclasses import dataclass, field

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetOut,
    MetadataValue,
    Output,
    multi_asset,
)

from assets_defs.common import now_iso, table_outputs, table_outs, usable
from assets_defs.heads.multi import region_extra, train_multi, word_marks_of
from assets_defs.keypoints.assets import keypoint_spec, read_features
from assets_defs.partitions import library_partitions
from ml.backbone_choice import probe_c, train_key
from ml.heads import train_facet_head
from ml.ocr import OcrSpec
from ml.report import promise_figures
from ml.self_training import pool_sample
from resources.backbone_plan import BackbonePlan
from resources.libraries import LibraryStore
from resources.media_store import MediaStore
from resources.model_store import ModelStore
from resources.ray_runner import TaskRunner
from resources.tables import frame
from resources.warehouse import Warehouse

# part of every head version: bumped when a FacetHead gains what heads saved before lack (2: familiarity)
HEAD_FORMAT = "10"  # 3: printed text; 4: mistake-free thresholds pooled; 5: holdout; 6: keypoints; 7: backbone;
# 8: group-aware holdout, thresholds with a lower bound, the new-shoot promise, text learnt from the print;
# 9: logreg trained to convergence on facets of many tags (ml/strategies.py LOGREG_TOL), no LightGBM over 200;
# 10: logreg self-trained on the library's photos where the holdout says it wins (ml/self_training.py). The
# photos it learnt from are those in the library when it was trained: new photos do not retrain a head


def head_version(
    facet: str, model: str, rows: pl.DataFrame, config, extra: str = "", target_precision: float | None = None
) -> str:
    """A hash of everything a head is trained from; `extra`: the OCR model, identifiers and tag names, a forced
    strategy; `target_precision`: the facet's (the catalog's or its default), else the library's."""
    digest = hashlib.sha256()
    for part in (
        HEAD_FORMAT,
        extra,
        facet,
        model,
        json.dumps(sorted(config.head_strategies)),
        str(config.target_precision if target_precision is None else target_precision),
        str(config.seed),
    ):
        digest.update(part.encode())
    for media_id, tag_id, split in rows.select("media_id", "tag_id", "split").sort("media_id").iter_rows():
        digest.update(f"{media_id}:{tag_id}:{split};".encode())
    return f"{facet}-{digest.hexdigest()[:12]}"


def ocr_boxes(ocr_table: pl.DataFrame) -> dict[str, list[tuple[str, float]]]:
    """{media_id: [(text, confidence), ...]} of photos (not video frames) from the `ocr_text` table."""
    if ocr_table.height == 0:
        return {}
    # the current OCR settings' reading only: rows of earlier settings stay in the table but are not evidence
    photos = ocr_table.filter(pl.col("ts").is_null() & (pl.col("model") == OcrSpec().model_id))
    out: dict[str, list[tuple[str, float]]] = {}
    for media_id, text, confidence in photos.select("media_id", "text", "confidence").iter_rows():
        out.setdefault(media_id, []).append((text, confidence))
    return out


@multi_asset(
    outs={
        "heads": AssetOut(group_name="heads", kinds={"scikitlearn", "lightgbm"}),
        **table_outs("heads", group_name="heads"),
    },
    deps=["examples", "backbone_choice", "embeddings", "ocr_text", "keypoints"],
    partitions_def=library_partitions,
    can_subset=False,
)
def heads(
    context: AssetExecutionContext,
    libraries: LibraryStore,
    media_store: MediaStore,
    model_store: ModelStore,
    runner: TaskRunner,
    warehouse: Warehouse,
):
    """Candidate heads per facet ({facet: version}); each compared across strategies on the holdout."""
    library = context.partition_key
    config = libraries.config(library)
    plan = BackbonePlan(config, model_store, warehouse, library)
    choice = plan.chosen_roles()
    base_model = plan.library_model_id()
    training = warehouse.read(library, "examples")
    if training.height == 0:
        raise ValueError(f"library {library!r} has no usable examples")
    history = warehouse.read(library, "head_versions")
    parsed = libraries.catalog(library)
    identifiers = {t.tag_id: list(t.identifiers) for t in parsed.tags}
    names = {t.tag_id: [t.name, *t.aliases] for t in parsed.tags}  # weak identifiers of the learned text channel
    boxes_of = ocr_boxes(warehouse.read(library, "ocr_text"))  # the photos' part of the table
    ocr_ran = warehouse.exists(library, "ocr_text")
    kp_spec = keypoint_spec(config)
    features_of = read_features(warehouse, library, kp_spec) if kp_spec else {}
    photos = usable(warehouse.read(library, "media"), "image")["media_id"].unique(maintain_order=True).to_list()
    candidates: dict[str, str] = {}
    rows, problems = [], []
    for facet in sorted(training["facet"].unique().to_list()):
        group = training.filter(pl.col("facet") == facet)
        if parsed.mode(facet) == "multi":  # any number of tags per photo, found where they are
            target = parsed.target_precision(facet, config.target_precision)
            marks = word_marks_of(parsed, facet)
            extra = region_extra(marks, OcrSpec().model_id if ocr_ran else "")
            version = head_version(facet, base_model, group, config, extra, target)
            if (
                history.filter(pl.col("version") == version).height
                and model_store.head_path(library, facet, version).exists()
            ):
                context.log.info(f"{facet}: training set unchanged, reusing {version}")
            else:
                try:
                    head = train_multi(
                        warehouse,
                        library,
                        base_model,
                        group,
                        media_store,
                        runner,
                        target,
                        config.seed,
                        context.log.warning,
                        plan.spec(),
                        marks,
                    )
                except ValueError as exc:  # the examples' problem
                    problems.append(f"{facet}: {exc}")
                    continue
                model_store.save_head(library, facet, version, head)
                rows.append(version_row(facet, version, head, config.bar_for(facet)))
                context.log.info(
                    f"{facet} (multi): {head.strategy}, exact-set accuracy {head.metrics['accuracy']:.3f} over "
                    f"{head.metrics['folds']} group-aware folds (strategies: {json.dumps(head.metrics['strategies'])})"
                )
            candidates[facet] = version
            continue
        force = parsed.forced_strategy(facet)
        facet_tags = group["tag_id"].unique().sort().to_list()
        facet_ids = {t: identifiers.get(t, []) for t in facet_tags}
        # printed text is evidence where the catalog lists identifiers to match, and wherever OCR read text on
        # the facet's photos: what separates the tags is then learnt from the examples' print (ml/text_model.py)
        read = any(m in boxes_of for m in group["media_id"].unique().to_list())
        reads_text = ocr_ran and (read or any(facet_ids.values()))
        facet_names = {t: names.get(t, []) for t in facet_tags} if reads_text else {}
        ocr_model = OcrSpec().model_id if reads_text else ""
        keypoint_model = kp_spec.model_id if features_of else ""
        forced_backbone = parsed.forced_backbone(facet)
        if facet not in choice and forced_backbone:
            problems.append(
                f"{facet}: the catalog forces the {forced_backbone} backbone but the library has none "
                "(finetune.budget_min is 0, or fine-tuning was skipped: see finetuned_backbone's log)"
            )
            continue
        # a facet no probe could judge gets the base backbone, and training says what is wrong with its examples
        picked = choice.get(facet) or {"role": "base", "model": base_model, "forced": False, "probes": {}}
        extra = json.dumps(
            {
                "ocr": ocr_model,
                "identifiers": facet_ids if reads_text else {},
                "names": facet_names,
                "force": force,
                "kp": keypoint_model,
                "backbone": forced_backbone,
            }
        )
        # evidence beyond the picture: the same whatever the backbone
        evidence = Evidence(boxes_of if reads_text else None, facet_ids, features_of, facet_names)
        # the chosen backbone and what it was chosen against: a new candidate means a new comparison on record
        compared = "|".join(sorted(p["model"] for p in picked["probes"].values()))
        target = parsed.target_precision(facet, config.target_precision)
        version = head_version(facet, f"{picked['model']}<{compared}", group, config, extra, target)
        bar = config.bar_for(facet)
        existing = history.filter(pl.col("version") == version)
        if existing.height and model_store.head_path(library, facet, version).exists():
            context.log.info(f"{facet}: training set unchanged, reusing {version}")
        else:
            try:
                head = train_on(warehouse, library, picked, group, config, force, evidence, target, photos)
            except ValueError as exc:  # the examples' problem
                problems.append(f"{facet}: {exc}")
                continue
            head.model_id = picked["model"]
            head.metrics["backbone"] = picked["role"]
            head.metrics["backbone_forced"] = picked["forced"]
            head.metrics["backbones"] = picked["probes"]  # each candidate's linear probe on the holdout
            model_store.save_head(library, facet, version, head)
            rows.append(version_row(facet, version, head, bar))
            context.log.info(
                f"{facet}: {head.strategy} on the {picked['role']} backbone, holdout accuracy "
                f"{head.metrics['accuracy']:.3f} (strategies: {json.dumps(head.metrics['strategies'])})"
            )
        candidates[facet] = version
    if rows:
        warehouse.write(library, "head_versions", pl.concat([history, frame("head_versions", rows)]))
    for problem in problems:
        context.log.warning(problem)
    current = pl.concat([history, frame("head_versions", rows)])
    current = current.filter(pl.col("version").is_in(list(candidates.values()))).unique("version").sort("facet")
    promise = promise_figures(current.iter_rows(named=True))
    yield Output(candidates, output_name="heads", metadata={"candidates": MetadataValue.json(candidates), **promise})
    yield from table_outputs(warehouse, library, "heads")


def version_row(facet: str, version: str, head, bar: float) -> dict:
    """The `head_versions` row of a newly trained head."""
    return {
        "facet": facet,
        "version": version,
        "strategy": head.strategy,
        "accuracy": head.metrics["accuracy"],
        "balanced_accuracy": head.metrics["balanced_accuracy"],
        "n_train": head.metrics["n_train"],
        "n_holdout": head.metrics["n_holdout"],
        "bar": bar,
        "model": head.model_id,
        "metrics": json.dumps(head.metrics),
        "thresholds": json.dumps(head.thresholds),
        "trained_at": now_iso(),
    }


@dataclass(frozen=True)
class Evidence:
    """What a facet's heads get beyond the picture: OCR boxes per photo (None: the facet reads no text), the
    facet's identifiers per tag, ORB features per photo (empty: keypoints off), the tags' names and aliases
    (weak identifiers of the text learnt from the examples)."""

    boxes_of: dict[str, list[tuple[str, float]]] | None
    identifiers: dict[str, list[str]]
    features_of: dict
    names: dict[str, list[str]] = field(default_factory=dict)


def train_on(
    warehouse: Warehouse,
    library: str,
    picked: dict,
    group: pl.DataFrame,
    config,
    force,
    evidence: Evidence,
    target_precision: float,
    photos: list[str],
):
    """One facet's head on the embeddings of its `picked` backbone (its `backbone_choice` row: role, model,
    probes), its strategies compared on the holdout (ml/heads.py); `photos`: the library's usable photos."""
    ids, X = warehouse.read_embeddings(library, picked["model"], group["media_id"].to_list())
    labelled = pl.DataFrame({"media_id": ids}, schema={"media_id": pl.String}).join(group, on="media_id", how="left")
    is_train = (labelled["split"] == "train").to_numpy()
    y = labelled["tag_id"].to_numpy()
    ids_train = [m for m, t in zip(ids, is_train, strict=True) if t]
    ids_hold = [m for m, t in zip(ids, is_train, strict=True) if not t]
    extra = {}
    if evidence.boxes_of is not None:  # the printed-text strategy is evaluated too (ml/fusion.py)
        extra.update(
            ocr_train=[evidence.boxes_of.get(m, []) for m in ids_train],
            ocr_hold=[evidence.boxes_of.get(m, []) for m in ids_hold],
            identifiers=evidence.identifiers,
            tag_names=evidence.names,
        )
    if evidence.features_of:  # the keypoint strategies are evaluated too (ml/keypoints.py)
        extra.update(
            keypoints_train=[evidence.features_of.get(m) for m in ids_train],
            keypoints_hold=[evidence.features_of.get(m) for m in ids_hold],
            ids_train=ids_train,
            ids_hold=ids_hold,
        )
    groups_train = labelled["group"].to_numpy()[is_train]
    # the library's own photos (not examples) that the head may learn from (ml/self_training.py)
    examples = set(group["media_id"].to_list())
    pool = [m for m in photos if m not in examples]
    pool = [pool[i] for i in pool_sample(len(pool), config.seed)]
    X_pool = warehouse.read_embeddings(library, picked["model"], pool)[1] if pool else None
    key = train_key(X[is_train], y[is_train], groups_train, config.seed)
    head = train_facet_head(
        group["facet"][0],
        X[is_train],
        y[is_train],
        X[~is_train],
        y[~is_train],
        strategies=tuple(config.head_strategies),
        seed=config.seed,
        target_precision=target_precision,
        force=force,
        groups_train=groups_train,
        logreg_c=probe_c(picked["probes"], picked["role"], key),  # the probe's C: searched on these rows
        X_pool=X_pool if X_pool is not None and len(X_pool) else None,
        **extra,
    )
    for row, media_id in zip(head.holdout or [], ids_hold, strict=False):
        row["media_id"] = media_id
    # a tag with one shoot was held out by look-alike clusters of that shoot: its figures are optimistic
    single = group.filter(pl.col("tag_groups") <= 1)["tag_id"].unique().sort().to_list()
    head.metrics["single_group_tags"] = single
    return head
