"""The order people review in: the verdicts that teach most first.

A verdict teaches most where the model is least sure (a score near the tag's threshold: the head could go either
way) and where it is frequent (a tag with many photos waiting: what is learnt from one verdict moves many). The
priority is the product of the two:

    uncertainty = 1 - |score - threshold| / max(threshold, 1 - threshold)      (1 at the threshold, 0 at 0 or 1)
    frequency   = 1 + ln(photos of the same facet and tag in the queue)
    priority    = uncertainty * frequency

Ties go to the lower score, then the media_id, so an order is the same on every machine. Pure: no Dagster.
"""

from __future__ import annotations

import polars as pl


def review_priority(queue: pl.DataFrame) -> pl.DataFrame:
    """`queue` (facet, tag_id, score, threshold, media_id, ...) with `priority`, sorted most useful first. A row
    without a threshold (a tag the promoted head has none for) counts as one at 0.5."""
    if queue.height == 0:
        return queue.with_columns(priority=pl.lit(None, pl.Float64))
    threshold = pl.col("threshold").fill_null(0.5).clip(0.0, 1.0)
    span = pl.max_horizontal(threshold, 1.0 - threshold).clip(lower_bound=1e-6)
    uncertainty = (1.0 - (pl.col("score").fill_null(0.0) - threshold).abs() / span).clip(0.0, 1.0)
    frequency = 1.0 + pl.len().over("facet", "tag_id").cast(pl.Float64).log()
    return queue.with_columns(priority=(uncertainty * frequency).round(6)).sort(
        ["priority", "score", "media_id"], descending=[True, False, False], nulls_last=True
    )
