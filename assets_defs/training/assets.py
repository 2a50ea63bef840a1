"""Training inputs: the `catalog` table and the `examples` training set with its group-aware holdout split."""

import polars as pl
from dagster import AssetExecutionContext, AssetOut, MaterializeResult, Output, multi_asset

from assets_defs.common import (
    chunked,
    now_iso,
    progress,
    record_quarantine,
    table_outputs,
    table_outs,
    table_results,
    writes_tables,
)
from assets_defs.embedding_runs import embed_missing
from assets_defs.partitions import library_partitions
from ml.catalog_changes import catalog_changes
from ml.embedding import EmbedItem
from ml.groups import PhotoFacts, holdout_units, shoot_groups
from ml.inspect import inspect_media
from ml.sticky_splits import sticky_holdout_split
from resources.backbone_plan import BackbonePlan
from resources.libraries import LibraryStore
from resources.media_store import MediaStore
from resources.model_store import ModelStore
from resources.ray_runner import TaskRunner
from resources.tables import frame, table_of
from resources.verdicts import verdict_examples
from resources.warehouse import Warehouse


@multi_asset(
    outs={
        "catalog": AssetOut(group_name="training", kinds={"parquet"}, io_manager_key="tables"),
        **table_outs("catalog", group_name="training"),
    },
    partitions_def=library_partitions,
    can_subset=False,
)
def catalog(context: AssetExecutionContext, libraries: LibraryStore, warehouse: Warehouse):
    """The tags to recognise (validated; a catalog with problems is refused with all of them listed). The
    table goes to the `tables` IO manager (resources/table_io.py). What changed since the catalog table of the
    last run (tags added, retired, un-retired, renamed, moved, removed: ml/catalog_changes.py) is appended to
    `catalog_changes`, so a season's changes stay on record after the catalog file forgets them."""
    library = context.partition_key
    parsed = libraries.catalog(library)
    table = frame("catalog", [t.as_row() for t in parsed.tags])
    changes = catalog_changes(warehouse.read(library, "catalog").to_dicts(), table.to_dicts(), now_iso())
    if changes:
        history = warehouse.read(library, "catalog_changes")
        warehouse.write(library, "catalog_changes", pl.concat([history, frame("catalog_changes", changes)]))
        context.log.info(
            f"{library}: catalog changes: "
            + ", ".join(f"{r['change']} {r['tag_id']}" for r in changes[:10])
            + (f" and {len(changes) - 10} more" if len(changes) > 10 else "")
        )
    retired = sorted(parsed.retired())
    per_facet = dict(table.group_by("facet").len().sort("facet").iter_rows())
    yield Output(
        table,
        output_name="catalog",
        metadata={
            "tags": table.height,
            "retired": len(retired),
            "changes": len(changes),
            **{f"facet/{k}": v for k, v in per_facet.items()},
        },
    )
    yield from table_outputs(warehouse, library, "catalog")


@writes_tables("examples", deps=["catalog"], group_name="training")
def examples(
    context: AssetExecutionContext,
    libraries: LibraryStore,
    media_store: MediaStore,
    model_store: ModelStore,
    runner: TaskRunner,
    warehouse: Warehouse,
):
    """Labelled example photos with their groups and a group-aware train/holdout split; bad photos quarantined.

    Groups (ml/groups.py): the manifest's `group`, else shoot folders, EXIF sessions, runs of file numbers and
    near-copies; a tag whose photos are all one group is cut into look-alike clusters. The split (ml/splits.py)
    never puts a group on both sides and holds a photo out in every facet at once, so a fine-tuned backbone
    can learn from every photo in no holdout. The example photos are embedded here with the library's backbone
    (near-copies and clusters need their vectors); `embeddings` finds them done.
    """
    library = context.partition_key
    config = libraries.config(library)
    listed = libraries.examples(library)  # validated against the catalog, every problem listed by line
    # people's verdicts first: a reviewer's label of a photo is the newer truth (one label per photo and facet)
    reviewed, skipped = verdict_examples(libraries.dir(library), libraries.catalog(library))
    for line in skipped:
        context.log.warning(f"verdict not learnt from: {line}")
    listed = reviewed + listed
    if not listed:
        raise ValueError(f"library {library!r} has no examples: `tagsmith examples {library} MANIFEST`")
    uris = sorted({e.uri for e in listed})
    reader = media_store.reader()
    calls = [(list(chunk), reader, config.max_pixels) for chunk in chunked(uris, 128)]
    inspected = {
        r["uri"]: r for rs in runner.map(inspect_media, calls, progress(context, "inspect examples")) for r in rs
    }
    bad = [
        {"uri": r["uri"], "media_id": r["media_id"], "reason": r["error"]}
        for r in inspected.values()
        if r["status"] != "ok"
    ]
    good = [e for e in listed if inspected[e.uri]["status"] == "ok"]
    photos = list({inspected[e.uri]["media_id"]: e.uri for e in good}.items())
    plan = BackbonePlan(config, model_store, warehouse, library)
    results = embed_missing(context, plan, runner, [EmbedItem(m, u) for m, u in photos], reader)
    unembedded = {f["media_id"] for r in results for f in r.failures}
    bad += [{**f, "reason": f"cannot embed: {f['reason']}"} for r in results for f in r.failures]
    record_quarantine(warehouse, library, "examples", bad)
    for r in bad:
        context.log.warning(f"example quarantined {r['uri']}: {r['reason']}")
    rows = [
        {
            "media_id": inspected[e.uri]["media_id"],
            "uri": e.uri,
            "facet": e.facet,
            "tag_id": e.tag_id,
            "source": e.source,
            "split": None,
            "group": e.group,
            "session": inspected[e.uri]["session"],
        }
        for e in good
        if inspected[e.uri]["media_id"] not in unembedded
    ]
    schema = {**table_of("examples").columns, "session": pl.String}
    # a photo under two names is one example: one row per (photo, facet, tag); a single facet's photo keeps its
    # first label, a multi facet's photo every tag it shows (or `none`)
    table = pl.DataFrame(rows, schema=schema).unique(["media_id", "facet", "tag_id"], keep="first", maintain_order=True)
    parsed = libraries.catalog(library)
    table = table.filter(
        pl.col("facet").is_in(parsed.multi_facets()) | pl.col("media_id").is_first_distinct().over("facet")
    )
    # a retired tag is kept in the catalog for history; its examples no longer train or judge a head
    retired = table.filter(pl.col("tag_id").is_in(sorted(parsed.retired())))
    if retired.height:
        per_tag = dict(retired.group_by("tag_id").len().sort("tag_id").iter_rows())
        context.log.info(f"{library}: {retired.height} examples of retired tags left out of training: {per_tag}")
        table = table.filter(~pl.col("tag_id").is_in(sorted(parsed.retired())))
    table = with_groups(
        table,
        *warehouse.read_embeddings(
            library, plan.library_model_id(), table["media_id"].unique(maintain_order=True).to_list()
        ),
    )
    # the last run's split is kept where the groups allow (ml/sticky_splits.py): a facet whose examples did not
    # change keeps its rows, so its head version, and nothing retrains but the facets that changed
    before = warehouse.read(library, "examples")
    split, sticky = sticky_holdout_split(
        table["media_id"].to_list(),
        table["facet"].to_list(),
        table["tag_id"].to_list(),
        table["group"].to_list(),
        previous=dict(before.select("media_id", "split").unique("media_id", keep="first").iter_rows()),
        holdout_frac=config.holdout_frac,
        seed=config.seed,
        previous_labels=set(before.select("facet", "tag_id").iter_rows()),
    )
    if not sticky.fresh:
        context.log.info(
            f"{library}: split kept for {sticky.kept} photos, {sticky.new} new photos placed, "
            f"{len(sticky.moved)} moved ({len(sticky.merged_units)} units merged across sides)"
        )
    table = table.with_columns(pl.Series("split", list(split), dtype=pl.String)).drop("session")
    warehouse.write(library, "examples", table)
    counts = table.group_by("facet", "split").len().sort("facet", "split")
    single = table.filter(pl.col("tag_groups") <= 1).select("facet", "tag_id").unique()
    kinds = dict(table.unique("media_id").group_by("group_kind").len().iter_rows())
    context.log.info(
        f"{library}: {table['group'].n_unique()} holdout groups ({kinds}); {single.height} tags have a single "
        "shoot and are split by look-alike clusters (their figures are optimistic)"
    )
    yield MaterializeResult(
        asset_key="examples",
        metadata={
            "examples": table.height,
            "from_verdicts": table.filter(pl.col("source") != "import").height,
            "quarantined": len(bad),
            "groups": table["group"].n_unique(),
            "single_group_tags": single.height,
            "retired_examples": retired.height,
            "split_kept": sticky.kept,
            "split_moved": len(sticky.moved),
            **{f"group_kind/{k}": v for k, v in sorted(kinds.items())},
            **{f"{f}/{s}": n for f, s, n in counts.iter_rows()},
        },
    )
    yield from table_results(warehouse, library, "examples")


def with_groups(table: pl.DataFrame, ids: list[str], vectors) -> pl.DataFrame:
    """`table` (one row per photo and facet) with `group`, `group_kind` and `tag_groups` (ml/groups.py).

    Every photo of `table` must have a vector in `ids`: a photo without one would silently leave the training
    set, so that is an error naming the first few."""
    missing = sorted(set(table["media_id"].to_list()) - set(ids))
    if missing:
        uris = table.filter(pl.col("media_id").is_in(missing[:3]))["uri"].unique().to_list()
        raise ValueError(f"{len(missing)} example photos have no embedding to group them by, e.g. {uris}")
    labels: dict[str, list[tuple[str, str]]] = {}
    first: dict[str, dict] = {}
    for row in table.iter_rows(named=True):
        labels.setdefault(row["media_id"], []).append((row["facet"], row["tag_id"]))
        seen = first.setdefault(row["media_id"], row)
        if not seen["group"] and row["group"]:  # a photo's manifest group from whichever row names one
            first[row["media_id"]] = {**seen, "group": row["group"]}
    facts = [
        PhotoFacts(m, first[m]["uri"], tuple(sorted(labels[m])), first[m]["group"], first[m]["session"]) for m in ids
    ]
    groups = shoot_groups(facts, vectors)
    units, kinds, n_groups = holdout_units(facts, groups, vectors)
    unit_of = dict(zip(ids, units, strict=True))
    kind_of = dict(zip(ids, kinds, strict=True))
    return table.with_columns(
        group=pl.col("media_id").replace_strict(unit_of, return_dtype=pl.String),
        group_kind=pl.col("media_id").replace_strict(kind_of, return_dtype=pl.String),
        tag_groups=pl.struct("facet", "tag_id").map_elements(
            lambda r: n_groups[(r["facet"], r["tag_id"])], return_dtype=pl.Int64
        ),
    )
