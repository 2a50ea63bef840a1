"""The `backbone_choice` asset: per facet, the backbone its head reads, chosen on the group-aware holdout.

Candidates (ml/backbone_choice.py): "base", the library's backbone; "views", the default backbone on the whole
frame and centre crops at two scales (while `views` is on in library.yaml and the library's backbone is the
default one); "finetuned", when `finetuned_backbone` trained one on the current split (on by default, with a
budget); "finetuned-views", that one on the same views. The examples are embedded with every candidate
(missing vectors only: the base ones come from `examples`), each facet is probed on each candidate, and the
picks go to the `backbone_choice` table.

The library's photos and video frames are then embedded only with the backbones that some facet reads, plus the
base one that `vector_index` and `similar` read: a candidate that loses costs the examples' embedding, never
the library's.
"""

import json

import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets_defs.common import now_iso, progress
from assets_defs.embedding_runs import backbone_spec, calls_per_model
from assets_defs.finetune.assets import finetuned_backbone, finetuned_name
from assets_defs.partitions import library_partitions
from assets_defs.training.assets import examples
from ml.backbone_choice import choose, finetuned_views_backbone, probe, views_backbone
from ml.backbones import cached_backbone
from ml.embedding import EmbedItem, embed_chunk
from resources.libraries import LibraryConfig, LibraryStore
from resources.media_store import MediaStore
from resources.model_store import ModelStore
from resources.ray_runner import TaskRunner
from resources.warehouse import Warehouse

CHOICE_SCHEMA = {
    "facet": pl.String,
    "role": pl.String,  # base | views | finetuned | finetuned-views
    "backbone": pl.String,  # the name BackboneSpec takes
    "model": pl.String,  # its model id, the key of its embeddings
    "forced": pl.Boolean,  # chosen by the catalog's facets: section
    "probes": pl.String,  # JSON {role: {top1, balanced, n_holdout, C, seconds, model}}
    "chosen_at": pl.String,
}


def candidate_backbones(config: LibraryConfig, warehouse: Warehouse, library: str) -> dict[str, str]:
    """{role: backbone name} of the candidates: base, views (when on), finetuned (when trained), and
    finetuned-views (both)."""
    out = {"base": config.backbone}
    views = views_backbone(config.backbone) if config.views else None
    if views:
        out["views"] = views
    tuned = finetuned_name(config, warehouse, library)
    if tuned:
        out["finetuned"] = tuned
        if config.views:
            out["finetuned-views"] = finetuned_views_backbone(tuned)
    return out


def candidate_models(config, model_store: ModelStore, warehouse: Warehouse, library: str) -> dict[str, tuple[str, str]]:
    """{role: (backbone name, model id)} of every candidate. Building each once also exports its ONNX file
    before workers need it."""
    return {
        role: (name, cached_backbone(backbone_spec(config, model_store, name=name)).model_id)
        for role, name in candidate_backbones(config, warehouse, library).items()
    }


def models_in_use(
    config, model_store: ModelStore, warehouse: Warehouse, library: str, with_base: bool = True
) -> dict[str, tuple[str, str]]:
    """{role: (backbone name, model id)} of the backbones the library's media are embedded with: those
    `backbone_choice` picked for some facet, and the base one (`with_base`: photos, which `vector_index` and
    `similar` read with it; video frames are read by the heads only). Before any choice: the base one."""
    chosen = warehouse.read(library, "backbone_choice")
    roles = set() if chosen is None else set(chosen["role"].to_list())
    if with_base or not roles:
        roles.add("base")
    return {r: m for r, m in candidate_models(config, model_store, warehouse, library).items() if r in roles}


def chosen_roles(warehouse: Warehouse, library: str) -> dict[str, dict]:
    """{facet: its row of the `backbone_choice` table, probes parsed}."""
    table = warehouse.read(library, "backbone_choice")
    if table is None:
        return {}
    return {r["facet"]: {**r, "probes": json.loads(r["probes"])} for r in table.iter_rows(named=True)}


@asset(
    partitions_def=library_partitions,
    group_name="training",
    deps=[examples, finetuned_backbone],
    kinds={"scikitlearn", "ray"},
)
def backbone_choice(
    context: AssetExecutionContext,
    libraries: LibraryStore,
    media_store: MediaStore,
    model_store: ModelStore,
    runner: TaskRunner,
    warehouse: Warehouse,
) -> MaterializeResult:
    """Per facet, the candidate backbone a linear probe reads best on the group-aware holdout; a costlier one
    only where it wins by a margin (ml/backbone_choice.py)."""
    library = context.partition_key
    config = libraries.config(library)
    parsed = libraries.catalog(library)
    table = warehouse.read(library, "examples")
    if table is None or table.height == 0:
        raise ValueError(f"library {library!r} has no usable examples")
    models = candidate_models(config, model_store, warehouse, library)
    photos = table.unique("media_id", keep="first", maintain_order=True).select("media_id", "uri")
    items = [EmbedItem(m, u) for m, u in photos.iter_rows()]
    calls, _ = calls_per_model(
        config, model_store, models.values(), items, warehouse, library, runner, media_store.reader()
    )
    context.log.info(f"{library}: candidates {json.dumps({r: m for r, (_, m) in models.items()})}")
    results = runner.map(embed_chunk, calls, on_result=progress(context, "embed examples per candidate"))
    for failure in (f for r in results for f in r.failures):
        context.log.warning(f"example not embedded by a candidate {failure['uri']}: {failure['reason']}")
    rows, now = [], now_iso()
    for facet in sorted(table["facet"].unique().to_list()):
        group = table.filter(pl.col("facet") == facet)
        forced = parsed.forced_backbone(facet)
        if forced and forced not in models:
            context.log.warning(f"{facet}: the catalog forces the {forced} backbone but the library has none")
            continue
        probes = {}
        for role in [forced] if forced else list(models):
            try:
                probes[role] = {**probe_facet(warehouse, library, models[role][1], group, config.seed)}
                probes[role]["model"] = models[role][1]
            except ValueError as exc:  # the facet's examples cannot be judged; heads says why in its own words
                context.log.warning(f"{facet}: no probe on {role}: {exc}")
        if not probes:
            continue
        role = choose(probes, forced)
        rows.append(
            {
                "facet": facet,
                "role": role,
                "backbone": models[role][0],
                "model": models[role][1],
                "forced": bool(forced),
                "probes": json.dumps(probes, sort_keys=True),
                "chosen_at": now,
            }
        )
        compared = ", ".join(f"{r} {p['balanced']:.3f}" for r, p in probes.items())
        context.log.info(f"{facet}: {role} backbone (probe balanced accuracy on the group-aware holdout: {compared})")
    warehouse.write(library, "backbone_choice", pl.DataFrame(rows, schema=CHOICE_SCHEMA))
    return MaterializeResult(
        metadata={
            "candidates": MetadataValue.json({r: m for r, (_, m) in models.items()}),
            "embedded_now": sum(r.n_embedded for r in results),
            **{f"backbone/{r['facet']}": r["role"] for r in rows},
            **{
                f"probe_balanced/{r['facet']}": MetadataValue.json(
                    {k: v["balanced"] for k, v in json.loads(r["probes"]).items()}
                )
                for r in rows
            },
        }
    )


def probe_facet(warehouse: Warehouse, library: str, model: str, group: pl.DataFrame, seed: int) -> dict:
    """The probe of one facet's examples on one backbone's vectors; every example must have one."""
    wanted = group["media_id"].to_list()
    ids, X = warehouse.read_embeddings(library, model, wanted)
    if len(ids) != len(wanted):
        raise ValueError(f"{len(wanted) - len(ids)} of {len(wanted)} examples have no vector from {model}")
    is_train = (group["split"] == "train").to_numpy()
    y = group["tag_id"].to_numpy()
    groups = group["group"].to_numpy()
    return probe(X[is_train], y[is_train], X[~is_train], y[~is_train], groups[is_train].tolist(), seed)
