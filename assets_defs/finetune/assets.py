"""The `finetuned_backbone` asset: the default backbone fine-tuned on the library's examples, one more
candidate that `backbone_choice` compares with the library's own backbone on the holdout, facet by facet.

It learns from the example photos that are in the *train* split of every facet they are labelled in: a photo
held out in any facet is never seen, so the holdout that chooses between the backbones stays honest. Every
facet gets its own classifier during training (ml/finetune.py); what is kept is the feature extractor, a
backbone of its own (`efficientnet-lite0-ft:<weights>`, model id `efficientnet-lite0-ft@<hash>`) whose
embeddings are cached apart. A training set already fine-tuned on (same photos, tags and settings) is never
trained again (the training-set key, and which fine-tuned backbone the other assets read, are decided in
resources/backbone_plan.py). On by default (a 10-minute budget), off while the library's `finetune.budget_min`
is 0 or its backbone is not the default one.
"""

import json
from pathlib import Path

import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets_defs.common import now_iso
from assets_defs.partitions import library_partitions
from ml.backbones import cached_backbone
from ml.finetune import FinetuneConfig, finetune, shrink
from ml.media import MediaProblem, decode_image
from resources.backbone_plan import BackbonePlan, finetune_key, trained_on, training_rows
from resources.libraries import LibraryConfig, LibraryStore
from resources.media_store import MediaStore
from resources.model_store import ModelStore
from resources.tables import frame
from resources.warehouse import Warehouse


@asset(partitions_def=library_partitions, group_name="training", deps=["examples"], kinds={"pytorch"})
def finetuned_backbone(
    context: AssetExecutionContext,
    libraries: LibraryStore,
    media_store: MediaStore,
    model_store: ModelStore,
    warehouse: Warehouse,
) -> MaterializeResult:
    """The default backbone's last blocks trained on the train-split examples under the library's time budget."""
    library = context.partition_key
    config = libraries.config(library)
    if not config.finetunes:
        why = "finetune.budget_min is 0" if not config.finetune.enabled else "it tunes efficientnet-lite0 only"
        context.log.info(f"{library}: fine-tuning is off ({why})")
        return MaterializeResult(metadata={"enabled": False})
    table = warehouse.read(library, "examples")
    # the single facets' labels: a multi facet's photo may show several tags (ml/region_head.py learns those)
    table = table.filter(~pl.col("facet").is_in(libraries.catalog(library).multi_facets()))
    rows = training_rows(table)
    key = finetune_key(config, rows)
    history = warehouse.read(library, "finetuned_backbone")
    if trained_on(history, key):
        model_id = history.filter(pl.col("key") == key)["model"][-1]
        context.log.info(f"{library}: training set unchanged, reusing {model_id}")
        return MaterializeResult(metadata={"enabled": True, "model": model_id, "reused": True})
    images, kept = [], []
    photos = rows.unique("media_id", keep="first", maintain_order=True).select("media_id", "uri")
    for media_id, uri in photos.iter_rows():
        try:  # drafted at 512 px, kept at 256 px short side: what the augmented crops are cut from
            images.append(shrink(decode_image(media_store.read_bytes(uri), 512), 256))
            kept.append(media_id)
        except (MediaProblem, OSError) as exc:  # examples were inspected; a file changed since is left out
            context.log.warning(f"fine-tuning without {uri}: {getattr(exc, 'reason', exc)}")
    tag_of = {(m, f): t for m, f, t in rows.select("media_id", "facet", "tag_id").iter_rows()}
    facets = sorted(rows["facet"].unique().to_list())
    labels = {f: [tag_of.get((m, f)) for m in kept] for f in facets}
    settings = config.finetune
    context.log.info(
        f"{library}: fine-tuning the last {settings.train_blocks} blocks on {len(kept)} photos "
        f"(train split of every facet; {table['media_id'].n_unique() - len(kept)} held out or unreadable), "
        f"{settings.epochs} epochs within {settings.budget_min} min"
    )
    try:
        result = fit(images, labels, model_store.finetune_dir(library, key), config, context)
    except ValueError as exc:  # nothing to learn from (e.g. every photo of a facet is held out somewhere)
        context.log.warning(f"{library}: no fine-tuned backbone, heads use {config.backbone} only: {exc}")
        return MaterializeResult(metadata={"enabled": True, "model": "", "skipped": str(exc)})
    name = f"efficientnet-lite0-ft:{result.weights_path}"
    model_id = cached_backbone(BackbonePlan(config, model_store, warehouse, library).spec(name=name)).model_id
    row = {
        "key": key,
        "backbone": name,
        "model": model_id,
        "n_images": len(kept),
        "facets": json.dumps({f: len({t for t in labels[f] if t is not None}) for f in facets}),
        "epochs_done": result.epochs_done,
        "seconds": result.seconds,
        "stopped_by": result.stopped_by,
        "images_per_s": result.images_per_s,
        "losses": json.dumps(result.losses),
        "trained_at": now_iso(),
    }
    warehouse.write(library, "finetuned_backbone", pl.concat([history, frame("finetuned_backbone", [row])]))
    if result.stopped_by == "budget":
        context.log.warning(
            f"{library}: the budget of {settings.budget_min} min stopped fine-tuning after "
            f"{result.epochs_done} of {settings.epochs} epochs"
        )
    return MaterializeResult(
        metadata={
            "enabled": True,
            "model": model_id,
            "reused": False,
            "photos": len(kept),
            "epochs_done": result.epochs_done,
            "stopped_by": result.stopped_by,
            "seconds": result.seconds,
            "images_per_s": result.images_per_s,
            "losses": MetadataValue.json(result.losses),
        }
    )


def fit(images, labels: dict, out_dir: Path, config: LibraryConfig, context: AssetExecutionContext):
    settings = config.finetune
    return finetune(
        images,
        labels,
        out_dir,
        FinetuneConfig(
            budget_s=settings.budget_min * 60,
            epochs=settings.epochs,
            train_blocks=settings.train_blocks,
            seed=config.seed,
            device=settings.device,
            augment=settings.augment,
        ),
        on_epoch=lambda epoch, loss, seconds: context.log.info(
            f"fine-tune epoch {epoch}/{settings.epochs}: loss {loss:.4f} ({seconds:.0f} s)"
        ),
    )
