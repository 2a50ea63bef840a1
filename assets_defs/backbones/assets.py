"""The `backbone_choice` asset: per facet, the backbone its head reads, chosen on the group-aware holdout.

Candidates (ml/backbone_choice.py): "base", the library's backbone; "views", the default backbone on the whole
frame and centre crops at two scales (while `views` is on in library.yaml and the library's backbone is the
default one); "finetuned", when `finetuned_backbone` trained one on the current split (on by default, with a
budget); "finetuned-views", that one on the same views; "large-views", the largest shipped member of the family
on the same views; "colour", a colour histogram of the same views; "ensemble", the last three side by side. The
examples are embedded with every candidate (missing vectors only: the base ones come from `examples`; the
ensemble's are joined from its parts'), each facet is probed on each candidate but the colour part, which only
the ensemble reads (ml/backbone_choice.py PARTS_ONLY), and the picks go to the `backbone_choice` table. A facet
with a single candidate (views off, no fine-tuning) is not probed: there is nothing to compare, and the probe's C
search is most of its cost. Each probe records its C with the rows it was searched on, which the facet's head
takes instead of searching again (ml/backbone_choice.py probe_c).

The library's photos and video frames are then embedded only with the backbones that some facet reads, plus the
base one that `vector_index` and `similar` read: a candidate that loses costs the examples' embedding, never
the library's. Which candidates there are and which are in use is decided in resources/backbone_plan.py.
"""

import hashlib
import json

import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets_defs.common import now_iso, progress
from assets_defs.embedding_runs import calls_per_model, ensemble_parts, join_ensemble
from assets_defs.partitions import library_partitions
from ml.backbone_choice import choose, judged, probe
from ml.embedding import EmbedItem, embed_chunk
from resources.backbone_plan import BackbonePlan
from resources.libraries import LibraryStore
from resources.media_store import MediaStore
from resources.model_store import ModelStore
from resources.ray_runner import TaskRunner
from resources.tables import frame
from resources.warehouse import Warehouse


@asset(
    partitions_def=library_partitions,
    group_name="training",
    deps=["examples", "finetuned_backbone"],
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
    if table.height == 0:
        raise ValueError(f"library {library!r} has no usable examples")
    # a multi facet's head reads regions and whole photos on the library's backbone (ml/region_head.py)
    table = table.filter(~pl.col("facet").is_in(parsed.multi_facets()))
    plan = BackbonePlan(config, model_store, warehouse, library)
    models = plan.candidate_models()
    photos = table.unique("media_id", keep="first", maintain_order=True).select("media_id", "uri")
    items = [EmbedItem(m, u) for m, u in photos.iter_rows()]
    # the ensemble's example vectors are its parts' side by side: joined below, never embedded again
    calls, _ = calls_per_model(plan, ensemble_parts(models, models).values(), items, runner, media_store.reader())
    context.log.info(f"{library}: candidates {json.dumps({r: m for r, (_, m) in models.items()})}")
    results = runner.map(embed_chunk, calls, on_result=progress(context, "embed examples per candidate"))
    for failure in (f for r in results for f in r.failures):
        context.log.warning(f"example not embedded by a candidate {failure['uri']}: {failure['reason']}")
    if "ensemble" in models:
        join_ensemble(warehouse, library, models, [i.media_id for i in items])
    rows, now = [], now_iso()
    # a facet whose examples, split and candidates are unchanged keeps its choice: the probes would say the same
    previous = {r["facet"]: r for r in warehouse.read(library, "backbone_choice").to_dicts()}
    for facet in sorted(table["facet"].unique().to_list()):
        group = table.filter(pl.col("facet") == facet)
        forced = parsed.forced_backbone(facet)
        if forced and forced not in models:
            context.log.warning(f"{facet}: the catalog forces the {forced} backbone but the library has none")
            continue
        inputs = probe_inputs(group, models, forced, config.seed)
        if previous.get(facet, {}).get("inputs") == inputs:
            rows.append(previous[facet])
            context.log.info(f"{facet}: examples and candidates unchanged, {previous[facet]['role']} backbone kept")
            continue
        roles = judged(list(models), forced)
        if len(roles) == 1 and not forced:  # nothing to compare: a probe would cost a C search and decide nothing
            rows.append(choice_row(facet, roles[0], models, False, {}, now, inputs))
            context.log.info(f"{facet}: {roles[0]} backbone, the only candidate (not probed)")
            continue
        probes = {}
        for role in roles:
            try:
                probes[role] = {**probe_facet(warehouse, library, models[role][1], group, config.seed)}
                probes[role]["model"] = models[role][1]
            except ValueError as exc:  # the facet's examples cannot be judged; heads says why in its own words
                context.log.warning(f"{facet}: no probe on {role}: {exc}")
        if not probes:
            continue
        role = choose(probes, forced)
        rows.append(choice_row(facet, role, models, bool(forced), probes, now, inputs))
        compared = ", ".join(f"{r} {p['balanced']:.3f}" for r, p in probes.items())
        context.log.info(f"{facet}: {role} backbone (probe balanced accuracy on the group-aware holdout: {compared})")
    warehouse.write(library, "backbone_choice", frame("backbone_choice", rows))
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


def choice_row(facet: str, role: str, models: dict, forced: bool, probes: dict, now: str, inputs: str) -> dict:
    """The `backbone_choice` row of one facet."""
    return {
        "facet": facet,
        "role": role,
        "backbone": models[role][0],
        "model": models[role][1],
        "forced": forced,
        "probes": json.dumps(probes, sort_keys=True),
        "chosen_at": now,
        "inputs": inputs,
    }


def probe_inputs(group: pl.DataFrame, models: dict, forced: str | None, seed: int) -> str:
    """A hash of what a facet's probes judge: its examples (photo, tag, split, group), the candidates, the
    catalog's forced backbone and the seed."""
    digest = hashlib.sha256(json.dumps([sorted(models.items()), forced, seed], default=str).encode())
    for row in group.select("media_id", "tag_id", "split", "group").sort("media_id", "tag_id").iter_rows():
        digest.update("|".join(str(v) for v in row).encode())
    return digest.hexdigest()[:16]


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
