"""The `ocr_text` asset: text printed on products, per photo, cached per (media_id, OCR model).

OCR costs about as much per photo as embedding does many times over (ml/ocr.py), so it runs only for a
library that asks for it: `ocr: auto` (the default) reads photos when some catalog tag has `identifiers`
(model numbers, SKUs, variant words), `on` always, `off` never. New photos and examples are read in chunks
fanned out on the task runner; a photo already read with the same OCR settings is never read again.
"""

import polars as pl
from dagster import AssetExecutionContext, MaterializeResult

from assets_defs.common import table_results, writes_tables
from assets_defs.photo_runs import items_to_embed, missing, run_missing
from ml.ocr import OcrSpec, ocr_chunk
from resources.libraries import LibraryStore
from resources.media_store import MediaStore
from resources.ray_runner import TaskRunner
from resources.tables import frame
from resources.warehouse import Warehouse

CHUNK = 64


def ocr_wanted(mode: str, catalog_table: pl.DataFrame) -> bool:
    if mode == "on":
        return True
    if mode == "off":
        return False
    return bool(catalog_table["identifiers"].list.len().sum())


def ocr_spec(config, catalog_table: pl.DataFrame | None, runner: TaskRunner) -> OcrSpec | None:
    """The OCR settings photos and video frames are read with, or None when the library reads no text."""
    return OcrSpec(threads=runner.threads_per_task() or 1) if ocr_wanted(config.ocr, catalog_table) else None


@writes_tables("ocr_text", deps=["catalog", "media", "examples"], group_name="ocr", kinds={"parquet", "ray"})
def ocr_text(
    context: AssetExecutionContext,
    libraries: LibraryStore,
    media_store: MediaStore,
    runner: TaskRunner,
    warehouse: Warehouse,
):
    """Text boxes read on photos and example photos (`ocr_text`), and which photos were read (`ocr_runs`)."""
    library = context.partition_key
    config = libraries.config(library)
    spec = ocr_spec(config, warehouse.read(library, "catalog"), runner)
    if spec is None:
        context.log.info(f"{library}: OCR is {config.ocr!r} and no catalog tag has identifiers: nothing to read")
        yield MaterializeResult(asset_key="ocr_text", metadata={"enabled": False})
        return
    model = spec.model_id
    runs = warehouse.read(library, "ocr_runs")
    done = set(runs.filter(pl.col("model") == model)["media_id"].to_list())
    todo = missing(items_to_embed(warehouse, library), done)
    context.log.info(f"{library}: {len(done)} photos already read with {model}, {len(todo)} to read")
    results = run_missing(context, runner, ocr_chunk, spec, todo, CHUNK, media_store.reader(), "ocr")
    new_rows = frame("ocr_text", [{**r, "model": model} for res in results for r in res.rows])
    new_runs = frame("ocr_runs", [{**d, "model": model} for res in results for d in res.done])
    # keyed by photo and model: a photo read again replaces its boxes, so no rerun duplicates a row
    warehouse.upsert(library, "ocr_text", new_rows, ["media_id", "ts", "model"])
    warehouse.upsert(library, "ocr_runs", new_runs, ["media_id", "ts", "model"])
    errors = [e for res in results for e in res.errors]
    # a photo that cannot be decoded is already quarantined by `media` or `examples`; one the engine failed on
    # is tagged without its text this time and read again next run (it has no `ocr_runs` row)
    for e in errors:
        context.log.warning(f"not read {e['uri']}: {e['reason']}")
    ms = new_runs["ms"]
    yield MaterializeResult(
        asset_key="ocr_text",
        metadata={
            "enabled": True,
            "model": model,
            "read_now": new_runs.height,
            "cached": len(done),
            "boxes_now": new_rows.height,
            "photos_with_text_now": int((new_runs["boxes"] > 0).sum()) if new_runs.height else 0,
            "ms_per_photo_median": float(ms.median()) if ms.len() else 0.0,
            "failed": len(errors),
        },
    )
    yield from table_results(warehouse, library, "ocr_text")
