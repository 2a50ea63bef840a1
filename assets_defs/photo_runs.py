"""The incremental cache every per-photo stage shares: which photos and examples a stage still has to do under
one model, and running those in chunks on the task runner.

`embeddings`, `ocr_text` and `keypoints` each keep their results keyed by (media_id, model): a photo done once
with the same settings is never done again. They differ in how they store what was done (embedding part files,
`ocr_runs`, the `keypoints` rows) and in the task they fan out; what they share is written here once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import polars as pl

from assets_defs.common import chunked, progress, usable
from ml.embedding import EmbedItem
from ml.media import MediaReader
from resources.ray_runner import TaskRunner
from resources.warehouse import Warehouse


def items_to_embed(warehouse: Warehouse, library: str) -> list[EmbedItem]:
    """Usable photos of the library and its examples, one item per distinct media_id."""
    photos = usable(warehouse.read(library, "media"), "image").select("media_id", "uri")
    both = pl.concat([photos, warehouse.read(library, "examples").select("media_id", "uri")])
    both = both.unique("media_id", keep="first", maintain_order=True)
    return [EmbedItem(m, u) for m, u in both.iter_rows()]


def missing(items: Iterable[EmbedItem], done: set[str]) -> list[EmbedItem]:
    """The items whose media_id is not in `done`, in their order."""
    return [i for i in items if i.media_id not in done]


def run_missing(
    context,
    runner: TaskRunner,
    task: Callable,
    spec,
    todo: list[EmbedItem],
    chunk_size: int,
    reader: MediaReader,
    what: str,
) -> list:
    """`task(spec, [(media_id, uri), ...], reader)` on the runner for `todo`, `chunk_size` items a task,
    progress logged as `what`; the task results in chunk order (none when there is nothing to do)."""
    calls = [(spec, [(i.media_id, i.uri) for i in chunk], reader) for chunk in chunked(todo, chunk_size)]
    return runner.map(task, calls, on_result=progress(context, what))
