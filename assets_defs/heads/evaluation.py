"""The candidates' evaluation (HTML, `tag_metrics`, the blocking `holdout_accuracy_bar` check) and the
promotion of the heads that pass it, or of the version a person pinned (resources/pins.py)."""

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetOut,
    Config,
    MetadataValue,
    Output,
    multi_asset,
)
from pydantic import Field

from assets_defs.common import now_iso, table_outputs, table_outs
from assets_defs.partitions import library_partitions
from ml.contact_sheet import thumbnail_jpeg
from ml.media import MediaProblem, decode_image
from ml.multi_report import multi_section, tag_metric_rows
from ml.report import THUMB, promise_figures, render_evaluation, tag_metrics
from resources.libraries import LibraryStore
from resources.media_store import MediaStore
from resources.model_store import ModelStore
from resources.pins import choose_promotions, read_pins
from resources.tables import frame
from resources.warehouse import Warehouse

CHECK = "holdout_accuracy_bar"


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

    facets, failing, metric_rows, multi = [], [], [], []
    pinned = read_pins(libraries.dir(library))
    for row in table.sort("facet").iter_rows(named=True):
        head = model_store.load_head(library, row["facet"], row["version"])
        bar = config.bar_for(row["facet"])
        passed = row["accuracy"] >= bar  # the group-aware holdout's top-1 (multi: exact set): the new-shoot figure
        if not passed:
            what = "exact-set accuracy" if getattr(head, "multi", False) else "top-1"
            below = f"{row['facet']} group-aware holdout {what} {row['accuracy']:.3f} < {bar:.2f}"
            if row["facet"] in pinned:  # its candidate is not promoted anyway: it holds back no other facet
                context.log.warning(f"{below}; the facet is pinned to {pinned[row['facet']]}, which stays in use")
            else:
                failing.append(below)
        if getattr(head, "multi", False):  # any number of tags per photo (ml/region_head.py)
            entry = {**row, "bar": bar, "passed": passed, "metrics": head.metrics, "holdout": head.holdout}
            multi.append(multi_section(entry, lambda t: names.get(t, t), thumbnail))
            metric_rows += [
                {"facet": row["facet"], "version": row["version"], **m} for m in tag_metric_rows(head.metrics)
            ]
            continue
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
    out.write_text(render_evaluation(library, facets, names, thumbnail, example_of, multi), encoding="utf-8")
    warehouse.write(library, "tag_metrics", frame("tag_metrics", metric_rows))
    problems = [f"{facet}: no head could be trained (see the heads step's log)" for facet in missing]
    accuracy = dict(table.select("facet", "accuracy").iter_rows())
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


class PromotionConfig(Config):
    """How `promoted_heads` picks the facets no pin decides."""

    keep_in_use: bool = Field(
        default=False,
        description="Keep the versions in use instead of promoting this run's candidates: the `retag` job sets it "
        "(its run has no `heads` step and no blocking check, so only a pin's change reaches the tags).",
    )


@multi_asset(
    outs={"promoted_heads": AssetOut(group_name="heads", kinds={"parquet"}), **table_outs("promoted_heads", "heads")},
    deps=["evaluation_report"],
    partitions_def=library_partitions,
    can_subset=False,
)
def promoted_heads(
    context: AssetExecutionContext,
    config: PromotionConfig,
    heads: dict[str, str],
    libraries: LibraryStore,
    model_store: ModelStore,
    warehouse: Warehouse,
):
    """The heads in use ({facet: version}): the candidates that passed the blocking holdout check, except where
    a person pinned a version (`tagsmith rollback`, resources/pins.py): that facet keeps its pinned version, which
    passed the check when it was first promoted, and the candidate is named in the log as not promoted."""
    library = context.partition_key
    # its own table: `heads` (the asset) writes head_versions, this asset the promotions; the `heads` table is
    # the view over both (resources/tables.py), so no two assets read-modify-write one file
    table = warehouse.read(library, "head_promotions")
    in_use = dict(table.filter(pl.col("promoted")).select("facet", "version").iter_rows())
    pins = read_pins(libraries.dir(library))
    check_pins(library, pins, table, model_store)
    choice = choose_promotions(heads, in_use, pins, keep_in_use=config.keep_in_use)
    for note in choice.notes:
        context.log.warning(note)
    stamp = now_iso()
    first = dict(table.select("version", "promoted_at").iter_rows())
    rows = [
        {
            "facet": f,
            "version": v,
            "promoted": True,
            "promoted_at": first.get(v) or stamp,
            "pinned": f in choice.pinned,
        }
        for f, v in choice.chosen.items()
    ]
    kept = table.filter(~pl.col("version").is_in(sorted(choice.chosen.values())))
    kept = kept.with_columns(promoted=pl.lit(False), pinned=pl.lit(False))
    promotions = pl.concat([kept, frame("head_promotions", rows)]).sort("facet", "version")
    warehouse.write(library, "head_promotions", promotions)
    metadata = {
        "promoted": MetadataValue.json(choice.chosen),
        "pinned": MetadataValue.json(choice.pinned),
        "not_promoted_pinned": MetadataValue.json(choice.held_back),
        "kept_in_use": config.keep_in_use,
    }
    yield Output(choice.chosen, output_name="promoted_heads", metadata=metadata)
    yield from table_outputs(warehouse, library, "promoted_heads")


class PinError(ValueError):
    """A pin that cannot be honoured (its version never passed the check, or its model file is gone)."""


def check_pins(library: str, pins: dict[str, str], promotions: pl.DataFrame, model_store: ModelStore) -> None:
    """A pinned version must have been promoted before (it passed the blocking check then) and its model file
    must exist; otherwise the step fails with one line that says what to do, and nothing is promoted."""
    passed = set(promotions.filter(pl.col("promoted_at").is_not_null())["version"].to_list())
    for facet, version in sorted(pins.items()):
        if version not in passed:
            raise PinError(
                f"{facet} is pinned to {version}, which never passed the blocking check (pins.yaml): "
                f"`tagsmith rollback {library} {facet} --release`, or pin a version `tagsmith heads {library}` lists"
            )
        path = model_store.head_path(library, facet, version)
        if not path.exists():
            raise PinError(
                f"{facet} is pinned to {version}, but its model file is missing ({path}): restore the file, or "
                f"`tagsmith rollback {library} {facet} --release`"
            )
