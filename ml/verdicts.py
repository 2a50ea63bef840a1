"""People's verdicts on tags, and what they make of the tags a model proposes.

A verdict (accept / reject / replace, by someone, at a time) is kept forever in the library's verdict log
(resources/verdicts.py). This module turns the log into *person labels* and lays them over a model's rows:

- accept X: X is `manual` on the photo (origin `review`);
- reject X: X is `rejected` on the photo (origin `review`): no model may propose it there again;
- replace X by Y: X `rejected` and Y `manual` (origin `correction`).

The latest verdict on a (photo, facet, tag) wins, so someone can change their mind. A single facet holds one tag
per photo: a `manual` tag there displaces the model's row and any earlier `manual` tag of that facet on the photo.
Video segments get the same verdicts, keyed by their stretch (start_s, end_s).

Pure polars: no Dagster.
"""

from __future__ import annotations

from collections.abc import Collection

import polars as pl

VERDICTS = ("accept", "reject", "replace")
LOG_SCHEMA = {
    "at": pl.String,  # ISO time of the verdict
    "who": pl.String,
    "kind": pl.String,  # photo / segment
    "media_id": pl.String,
    "uri": pl.String,
    "facet": pl.String,
    "tag_id": pl.String,  # the tag judged (the model's proposal)
    "verdict": pl.String,
    "new_tag_id": pl.String,  # replace: the right tag
    "start_s": pl.Float64,  # segments only
    "end_s": pl.Float64,
    "via": pl.String,  # terminal / csv / api
}
LABEL_SCHEMA = {
    "media_id": pl.String,
    "uri": pl.String,
    "facet": pl.String,
    "tag_id": pl.String,
    "start_s": pl.Float64,
    "end_s": pl.Float64,
    "status": pl.String,  # manual / rejected
    "origin": pl.String,  # review / correction
    "set_by": pl.String,
    "set_at": pl.String,
}


def person_labels(log: pl.DataFrame, multi: Collection[str] = ()) -> pl.DataFrame:
    """The labels people have set, one row per (media, facet, tag[, stretch]): the latest verdict on each wins.

    `multi`: the facets that hold any number of tags per photo (there `manual` displaces nothing)."""
    state: dict[tuple, dict] = {}
    for row in log.sort("at", maintain_order=True).iter_rows(named=True):
        if row["verdict"] == "accept":
            _put(state, row, row["tag_id"], "manual", "review", multi)
        elif row["verdict"] == "reject":
            _put(state, row, row["tag_id"], "rejected", "review", multi)
        elif row["verdict"] == "replace":
            _put(state, row, row["tag_id"], "rejected", "correction", multi)
            _put(state, row, row["new_tag_id"], "manual", "correction", multi)
    return pl.DataFrame(list(state.values()), schema=LABEL_SCHEMA)


def _put(state: dict, row: dict, tag: str, status: str, origin: str, multi: Collection[str]) -> None:
    """Set one label from a log row; a single facet's `manual` tag displaces the photo's (or stretch's) other."""
    stretch = (row["start_s"], row["end_s"]) if row["kind"] == "segment" else (None, None)
    if status == "manual" and row["facet"] not in multi:
        for key in [k for k in state if k[:2] == (row["media_id"], row["facet"]) and k[3:] == stretch]:
            if state[key]["status"] == "manual":
                del state[key]
    state[(row["media_id"], row["facet"], tag, *stretch)] = {
        "media_id": row["media_id"],
        "uri": row["uri"],
        "facet": row["facet"],
        "tag_id": tag,
        "start_s": stretch[0],
        "end_s": stretch[1],
        "status": status,
        "origin": origin,
        "set_by": row["who"],
        "set_at": row["at"],
    }


def apply_labels(model: pl.DataFrame, labels: pl.DataFrame, multi: Collection[str] = ()) -> pl.DataFrame:
    """`model` (rows of the `tags` table a head proposed) with people's labels laid over it: a labelled
    (photo, facet, tag) takes the label's status and origin (keeping the model's score, box and version where the
    model proposed the same tag), a single facet's `manual` tag removes the model's other tag on that photo, and
    a `rejected` tag is never proposed again. Only photos in `model`'s `media_ids` or labelled keep labels: the
    caller passes labels of photos still in the library."""
    labels = labels.filter(pl.col("start_s").is_null()).drop("start_s", "end_s", "uri")
    keys = ["media_id", "facet", "tag_id"]
    model = model.with_columns(
        origin=pl.lit("model", pl.String), set_by=pl.lit(None, pl.String), set_at=pl.lit(None, pl.String)
    )
    if labels.height == 0:
        return model
    displaced = (
        labels.filter((pl.col("status") == "manual") & ~pl.col("facet").is_in(list(multi)))
        .select("media_id", "facet")
        .unique()
    )
    kept = model.join(labels.select(keys), on=keys, how="anti").join(displaced, on=["media_id", "facet"], how="anti")
    labelled = labels.join(model.drop("status", "origin", "set_by", "set_at"), on=keys, how="left")
    return pl.concat([kept, labelled.select(model.columns)], how="vertical_relaxed")


def apply_segment_labels(segments: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """Video segments with people's verdicts on them: a segment judged (same video, facet, tag, and a stretch
    that overlaps the judged one) takes the label's status; a `manual` segment whose tag the model did not find
    there (a replacement) is added with the judged stretch."""
    labels = labels.filter(pl.col("start_s").is_not_null())
    segments = segments.with_columns(origin=pl.lit("model", pl.String))
    if labels.height == 0 or segments.height == 0:
        return segments
    rows = segments.to_dicts()
    added = []
    for label in labels.iter_rows(named=True):
        hit = False
        for row in rows:
            if (row["media_id"], row["facet"], row["tag_id"]) != (label["media_id"], label["facet"], label["tag_id"]):
                continue
            if row["start_s"] < label["end_s"] and label["start_s"] < row["end_s"]:
                row.update(status=label["status"], origin=label["origin"])
                hit = True
        if not hit and label["status"] == "manual":
            added.append(
                {
                    **{c: None for c in segments.columns},
                    **{k: label[k] for k in ("media_id", "facet", "tag_id", "start_s", "end_s", "status", "origin")},
                }
            )
    return pl.DataFrame(rows + added, schema=segments.schema)
