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
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetOut,
    MetadataValue,
    Output,
    multi_asset,
)

from assets_defs.common import now_iso, table_outputs, table_outs
from assets_defs.keypoints.assets import keypoint_spec, read_features
from assets_defs.partitions import library_partitions
from ml.contact_sheet import thumbnail_jpeg
from ml.heads import train_facet_head
from ml.media import MediaProblem, decode_image
from ml.ocr import OcrSpec
from ml.report import THUMB, promise_figures, render_evaluation, tag_metrics
from resources.backbone_plan import BackbonePlan
from resources.libraries import LibraryStore
from resources.media_store import MediaStore
from resources.model_store import ModelStore
from resources.tables import frame
from resources.warehouse import Warehouse

CHECK = "holdout_accuracy_bar"

# part of every head version: bumped when a FacetHead gains what heads saved before lack (2: familiarity)
HEAD_FORMAT = "8"  # 3: printed text; 4: mistake-free thresholds pooled; 5: holdout; 6: keypoints; 7: backbone;
# 8: group-aware holdout, thresholds with a lower bound, the new-shoot promise, text learnt from the print


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
    model_store: ModelStore,
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
    candidates: dict[str, str] = {}
    rows, problems = [], []
    for facet in sorted(training["facet"].unique().to_list()):
        group = training.filter(pl.col("facet") == facet)
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
                head = train_on(warehouse, library, picked["model"], group, config, force, evidence, target)
            except ValueError as exc:  # the examples' problem
                problems.append(f"{facet}: {exc}")
                continue
            head.model_id = picked["model"]
            head.metrics["backbone"] = picked["role"]
            head.metrics["backbone_forced"] = picked["forced"]
            head.metrics["backbones"] = picked["probes"]  # each candidate's linear probe on the holdout
            model_store.save_head(library, facet, version, head)
            row = {
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
            rows.append(row)
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
    model: str,
    group: pl.DataFrame,
    config,
    force,
    evidence: Evidence,
    target_precision: float,
):
    """One facet's head on one backbone's embeddings, its strategies compared on the holdout (ml/heads.py)."""
    ids, X = warehouse.read_embeddings(library, model, group["media_id"].to_list())
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
        groups_train=labelled["group"].to_numpy()[is_train],
        groups_hold=labelled["group"].to_numpy()[~is_train],
        **extra,
    )
    for row, media_id in zip(head.holdout or [], ids_hold, strict=False):
        row["media_id"] = media_id
    # a tag with one shoot was held out by look-alike clusters of that shoot: its figures are optimistic
    single = group.filter(pl.col("tag_groups") <= 1)["tag_id"].unique().sort().to_list()
    head.metrics["single_group_tags"] = single
    return head


@multi_asset(
    outs={
        "evaluation_report": AssetOut(group_name="heads", kinds={"html"}),
        **table_outs("evaluation_report", "heads"),
    },
    deps=["head_versions", "examples", "catalog"],
    partitions_def=library_partitions,
    can_subset=False,
    check_specs=[
        AssetCheckSpec(
            CHECK,
            asset="evaluation_report",
            blocking=True,
            description="every facet's head meets the library's bar on the group-aware holdout (top-1)",
        )
    ],
)
def evaluation_report(
    context: AssetExecutionContext,
    heads: dict[str, str],
    libraries: LibraryStore,
    media_store: MediaStore,
    model_store: ModelStore,
    warehouse: Warehouse,
):
    """The candidates' evaluation as HTML (strategy chosen and why, per-tag precision/recall, the confusions
    with thumbnails) and `tag_metrics`; and the blocking `holdout_accuracy_bar` check that gates promotion.

    The check lives here, not on `heads`, so the report is written when a facet fails its bar: that is
    when a person needs to look. The bar is the library's current one (a head is versioned by what it learns
    from, not by the bar: a bar changed in library.yaml applies to the head already trained).
    """
    library = context.partition_key
    config = libraries.config(library)
    table = warehouse.read(library, "head_versions")  # empty when no facet could be trained yet
    table = table.filter(pl.col("version").is_in(list(heads.values()))).unique("version")
    training = warehouse.read(library, "examples")
    missing = sorted(set(training["facet"].unique().to_list()) - set(heads))
    uri_of = dict(training.select("media_id", "uri").unique("media_id").iter_rows())
    example_of = (
        dict(training.filter(pl.col("split") == "train").unique("tag_id").select("tag_id", "media_id").iter_rows())
        if training is not None
        else {}
    )
    catalog_table = warehouse.read(library, "catalog")
    names = dict(catalog_table.select("tag_id", "name").iter_rows())

    def thumbnail(media_id: str) -> bytes | None:
        uri = uri_of.get(media_id)
        if uri is None:
            return None
        try:
            return thumbnail_jpeg(decode_image(media_store.read_bytes(uri), 256), width=THUMB)
        except (MediaProblem, OSError):
            return None

    facets, failing, metric_rows = [], [], []
    for row in table.sort("facet").iter_rows(named=True):
        head = model_store.load_head(library, row["facet"], row["version"])
        bar = config.bar_for(row["facet"])
        passed = row["accuracy"] >= bar  # the group-aware holdout's top-1: the new-shoot figure
        if not passed:
            failing.append(f"{row['facet']} group-aware holdout top-1 {row['accuracy']:.3f} < {bar:.2f}")
        facets.append(
            {
                "facet": row["facet"],
                "version": row["version"],
                "strategy": row["strategy"],
                "bar": bar,
                "passed": passed,
                "metrics": head.metrics,
                "thresholds": head.thresholds,
                "holdout": head.holdout or [],
            }
        )
        for m in tag_metrics(head.holdout or [], head.thresholds):
            metric_rows.append({"facet": row["facet"], "version": row["version"], **m})
    out = warehouse.reports_dir(library) / "evaluation.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_evaluation(library, facets, names, thumbnail, example_of), encoding="utf-8")
    warehouse.write(library, "tag_metrics", frame("tag_metrics", metric_rows))
    problems = [f"{facet}: no head could be trained (see the heads step's log)" for facet in missing]
    accuracy = {f["facet"]: f["metrics"].get("accuracy", 0.0) for f in facets}
    promise = promise_figures(table.sort("facet").iter_rows(named=True))
    report = {"report": MetadataValue.path(str(out)), **promise}
    yield Output(None, output_name="evaluation_report", metadata=report)
    yield from table_outputs(warehouse, library, "evaluation_report")
    yield AssetCheckResult(
        asset_key="evaluation_report",
        check_name=CHECK,
        passed=not failing and not problems and bool(heads),
        severity=AssetCheckSeverity.ERROR,
        description="; ".join(failing + problems) or "all facets meet their bar",
        metadata={f"holdout_top1/{f}": round(a, 4) for f, a in sorted(accuracy.items())},
    )


@multi_asset(
    outs={"promoted_heads": AssetOut(group_name="heads", kinds={"parquet"}), **table_outs("promoted_heads", "heads")},
    deps=["evaluation_report"],
    partitions_def=library_partitions,
    can_subset=False,
)
def promoted_heads(context: AssetExecutionContext, heads: dict[str, str], warehouse: Warehouse):
    """The heads in use ({facet: version}): the candidates that passed the blocking holdout check."""
    library = context.partition_key
    # its own table: `heads` (the asset) writes head_versions, this asset the promotions; the `heads` table is
    # the view over both (resources/tables.py), so no two assets read-modify-write one file
    table = warehouse.read(library, "head_promotions")
    stamp = now_iso()
    chosen = sorted(heads.values())
    first = dict(table.select("version", "promoted_at").iter_rows())
    rows = [
        {"facet": f, "version": v, "promoted": True, "promoted_at": first.get(v) or stamp} for f, v in heads.items()
    ]
    kept = table.filter(~pl.col("version").is_in(chosen)).with_columns(promoted=pl.lit(False))
    promotions = pl.concat([kept, frame("head_promotions", rows)]).sort("facet", "version")
    warehouse.write(library, "head_promotions", promotions)
    yield Output(heads, output_name="promoted_heads", metadata={"promoted": MetadataValue.json(heads)})
    yield from table_outputs(warehouse, library, "promoted_heads")
