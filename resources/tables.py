"""Every table tagsmith writes, declared once: its columns, its key, the asset that writes it, what a row is.

Everything else is derived from this registry: `Warehouse.write` refuses a frame whose columns differ and casts
it to the declared types; `Warehouse.read` returns an empty frame of the declared columns for a table no run
has written yet; the DuckDB views read each table's files by glob (`union_by_name`) and a table without files
gets a typed empty view (`create_views` in resources/warehouse.py); `python -m resources.tables` writes
sql/TABLES.md, the reference analysts read (tests/test_tables.py keeps it current); the asset graph's
table assets (one `AssetSpec` per table, in the writer's `multi_asset`) are checked against `asset` by a test.

A table is stored as one Parquet file (`<name>.parquet`) unless it declares `parts`: then each part is a file
of its own with one writer (an asset or a stage), read together as one table. `quarantine` is such a table:
each stage writes `quarantine_<stage>.parquet`, so no two assets read-modify-write one file. `embeddings` is
append-only and content-addressed (one file per embedding task, named by the hash of its photos, under one
folder per model): assets add files and never rewrite one, which is why it is written by the tasks through
`ml/embedding.py` and not returned by an asset to an IO manager. `heads` is a view over the head versions that
`heads` trains and the promotions that `promoted_heads` records: two writers, two files, one table.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl


@dataclass(frozen=True)
class Table:
    name: str
    row: str  # what one row is
    columns: dict[str, pl.DataType]
    key: tuple[str, ...]
    asset: str | None  # the asset that writes it (None: written in `parts`, or a view over other tables)
    notes: dict[str, str] = field(default_factory=dict)  # column -> what it means, where the name does not say
    parts: dict[str, str] | None = None  # part -> its writer; a part is stored as `<part>.parquet`
    files: tuple[str, ...] = ()  # globs under the library folder (default: the table's file, or its parts')
    view: bool = True  # registered as a DuckDB view analysts query
    empty_view: bool = False  # a typed empty view while no file exists (video tables: joins need no special case)
    sql: str | None = None  # a view over other tables instead of files of its own

    def globs(self) -> tuple[str, ...]:
        if self.files:
            return self.files
        if self.parts:
            return tuple(f"{p}.parquet" for p in self.parts)
        return (f"{self.name}.parquet",)

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.columns)

    def empty_sql(self) -> str:
        cols = ", ".join(f'NULL::{duckdb_type(t)} AS "{c}"' for c, t in self.columns.items())
        return f"SELECT {cols} WHERE false"

    def conform(self, df: pl.DataFrame, part: str, reading: bool = False) -> pl.DataFrame:
        """`df` with the declared columns in order and types; a missing or unknown column is an error, except
        that a file written before a column was declared reads with that column null (`reading`)."""
        missing = [c for c in self.columns if c not in df.columns]
        extra = [c for c in df.columns if c not in self.columns]
        if reading and missing and not extra:
            df = df.with_columns(pl.lit(None, dtype=self.columns[c]).alias(c) for c in missing)
            missing = []
        if missing or extra:
            raise ValueError(f"table {part!r}: columns missing {missing}, not declared {extra} (resources/tables.py)")
        return df.select([pl.col(c).cast(t, strict=True) for c, t in self.columns.items()])


_DUCKDB = {pl.String: "VARCHAR", pl.Int64: "BIGINT", pl.Float64: "DOUBLE", pl.Float32: "FLOAT",
           pl.Boolean: "BOOLEAN", pl.Binary: "BLOB"}


def duckdb_type(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.List):
        return duckdb_type(dtype.inner) + "[]"
    if isinstance(dtype, pl.Struct):
        return "STRUCT(" + ", ".join(f'"{f.name}" {duckdb_type(f.dtype)}' for f in dtype.fields) + ")"
    return _DUCKDB[dtype.base_type()]


S, N, F, B = pl.String, pl.Int64, pl.Float64, pl.Boolean
QUARANTINE_STAGES = {"media": "media", "examples": "examples", "embeddings": "embeddings", "video": "video_frames"}
HEAD_VERSION_COLUMNS = {
    "facet": S, "version": S, "strategy": S, "accuracy": F, "balanced_accuracy": F, "n_train": N, "n_holdout": N,
    "bar": F, "model": S, "metrics": S, "thresholds": S, "trained_at": S,
}



def event_file(table: str, event: str) -> str:
    """Where one event's part of a sponsor table lies under the library folder: each event's report writes its
    own files (one writer per file), and the table's view reads every event's (glob `event = '*'`)."""
    return f"events/{event}/{table}.parquet"


_TABLES = [
    Table("media", "media file (a file under two names: two rows, one media_id)",
          {"media_id": S, "uri": S, "kind": S, "width": N, "height": N, "duration_s": F, "bytes": N, "status": S,
           "error": S, "size": N, "modified": S, "first_seen": S},
          ("uri",), "media",
          {"media_id": "sha256 of the bytes", "kind": "image / video", "status": "ok / quarantined",
           "modified": "what changes with the bytes (time or ETag): unchanged files are not read again"}),
    Table("quarantine", "file a stage refused, with the reason",
          {"uri": S, "media_id": S, "reason": S, "stage": S, "seen_at": S},
          ("stage", "uri", "reason"), None,
          {"stage": "the stage that refused it (its part of the table)", "seen_at": "first time it failed so"},
          parts={f"quarantine_{s}": a for s, a in QUARANTINE_STAGES.items()}, files=("quarantine_*.parquet",)),
    Table("catalog", "tag to recognise",
          {"tag_id": S, "facet": S, "name": S, "aliases": pl.List(S), "identifiers": pl.List(S), "attributes": S,
           "search_text": pl.List(S), "retired": B, "names": pl.List(pl.Struct({"lang": S, "name": S}))},
          ("facet", "tag_id"), "catalog",
          {"attributes": "JSON", "search_text": "id, name, aliases, identifiers, names folded for search",
           "names": "display names by language code, [{lang, name}]: `map_from_entries(names)['fr']`",
           "retired": "`retired: true` in the catalog: kept for history, not trained on, not predicted"}),
    Table("catalog_changes", "change to a tag of the catalog, as a run first saw it (appended, never rewritten)",
          {"tag_id": S, "facet": S, "change": S, "name": S, "before": S, "seen_at": S},
          ("tag_id", "change", "seen_at"), "catalog",
          {"change": "added / retired / unretired / renamed / moved (to another facet) / removed",
           "facet": "the tag's facet (its last one, for removed)", "before": "the earlier name (renamed) or "
           "facet (moved)", "seen_at": "when a run first saw it"}),
    Table("examples", "(example photo, facet) a head learns from or is judged on",
          {"media_id": S, "uri": S, "facet": S, "tag_id": S, "source": S, "split": S, "group": S,
           "group_kind": S, "tag_groups": N},
          ("media_id", "facet"), "examples",
          {"split": "train / holdout", "group": "what the holdout keeps together: a shoot, a manifest group or a "
           "look-alike cluster", "group_kind": "manifest / shoot / cluster / photo",
           "tag_groups": "groups the tag has: 1 = its holdout figures are optimistic"}),
    Table("backbone_choice", "facet: the backbone its head reads",
          {"facet": S, "role": S, "backbone": S, "model": S, "forced": B, "probes": S, "chosen_at": S, "inputs": S},
          ("facet",), "backbone_choice",
          {"role": "base / colour / views / finetuned / finetuned-views / large-views / ensemble",
           "backbone": "the name a backbone is built from",
           "inputs": "hash of the examples and candidates the probes judged: unchanged, the choice is reused",
           "model": "its model id, the key of its embeddings", "forced": "set by the catalog's facets: section",
           "probes": "JSON {role: {top1, balanced, n_holdout, C, seconds, model}}"}),
    Table("finetuned_backbone", "fine-tuning run",
          {"key": S, "backbone": S, "model": S, "n_images": N, "facets": S, "epochs_done": F, "seconds": F,
           "stopped_by": S, "images_per_s": F, "losses": S, "trained_at": S},
          ("key",), "finetuned_backbone",
          {"key": "hash of the training set and settings", "facets": "JSON {facet: tags}",
           "losses": "JSON, mean training loss per epoch"}, view=False),
    Table("embeddings", "vector of a photo (ts null) or a video frame, per model",
          {"media_id": S, "ts": F, "model": S, "vector": pl.List(pl.Float32)},
          ("media_id", "ts", "model"), "embeddings",
          {"vector": "fixed size per model"}, files=("embeddings/*/*.parquet",)),
    Table("head_versions", "trained head version",
          HEAD_VERSION_COLUMNS, ("facet", "version"), "heads",
          {"accuracy": "top-1 on the group-aware holdout (the new-shoot figure)", "metrics": "JSON",
           "thresholds": "JSON {tag_id: score}"}),
    Table("head_promotions", "head version that passed the blocking check (promoted: the one in use per facet)",
          {"facet": S, "version": S, "promoted": B, "promoted_at": S, "pinned": B},
          ("facet", "version"), "promoted_heads",
          {"promoted": "in use now", "promoted_at": "first promoted: only such a version can be restored",
           "pinned": "in use because `tagsmith rollback` pinned it (at the last promotion; pins.yaml)"},
          empty_view=True),
    # `pinned` through UNION ALL BY NAME: a head_promotions file written before the column existed reads it as
    # null instead of failing every view of the library until the next run rewrites the file
    Table("heads", "trained head version, and whether it is the one in use",
          {**HEAD_VERSION_COLUMNS, "promoted": B, "promoted_at": S, "pinned": B},
          ("facet", "version"), None,
          {"promoted": "in use now", "promoted_at": "first promoted", "pinned": "in use by a pin (`tagsmith "
           "rollback`)"},
          sql="SELECT h.*, coalesce(p.promoted, false) AS promoted, p.promoted_at, coalesce(p.pinned, false) AS "
          "pinned FROM head_versions h LEFT JOIN (SELECT * FROM head_promotions UNION ALL BY NAME "
          "SELECT NULL::BOOLEAN AS pinned WHERE false) p USING (facet, version)"),
    Table("tag_metrics", "(head version, tag) on the group-aware holdout",
          {"facet": S, "version": S, "tag_id": S, "n_holdout": N, "precision": F, "recall": F,
           "applied_precision": F, "applied_recall": F, "threshold": F},
          ("version", "tag_id"), "evaluation_report"),
    Table("tags", "(photo, facet, tag): a single facet's top tag; each tag a multi facet found (none: no row)",
          {"media_id": S, "facet": S, "tag_id": S, "score": F, "status": S, "head_version": S, "box": pl.List(F),
           "origin": S, "set_by": S, "set_at": S, "candidates": S},
          ("media_id", "facet", "tag_id"), "tags",
          {"status": "applied (above the tag's threshold) / review / manual (a person set it) / rejected (a person "
           "refused it: never proposed again)",
           "box": "x, y, w, h of the region, 0-1; null: the whole photo",
           "origin": "model / review (a verdict on the model's tag) / correction (a person's replacement)",
           "set_by": "who gave the verdict (null: the model)", "set_at": "when (ISO time)",
           "candidates": "a single facet's best tags with their scores, JSON [[tag_id, score], ...]"}),
    Table("detections", "region a multi facet's head found on a photo (ts null) or a video frame",
          {"media_id": S, "ts": F, "facet": S, "tag_id": S, "score": F, "box": pl.List(F), "head_version": S},
          ("media_id", "ts", "facet", "head_version", "tag_id", "box"), "detections",
          {"tag_id": "null: the head looked and found nothing", "box": "x, y, w, h of the region, 0-1",
           "score": "inliers / (inliers + 15) of the homography (ml/regions.py)"}, empty_view=True),
    Table("ocr_text", "text box read on a photo (ts null) or a video frame",
          {"media_id": S, "ts": F, "text": S, "confidence": F, "box": pl.List(F), "model": S, "image_w": N,
           "image_h": N},
          ("media_id", "ts", "model", "box"), None,
          {"box": "the 4 corners (x0, y0 ... x3, y3) in pixels of the image OCR read",
           "image_w": "width of that image (null: read before it was recorded)",
           "ts": "null on photos; `read(lib, 'ocr_text')` reads the photos' part"},
          parts={"ocr_text": "ocr_text", "frame_text": "video_frames"}, empty_view=True),
    Table("ocr_runs", "photo or frame OCR has read (with none found: boxes 0)",
          {"media_id": S, "ts": F, "boxes": N, "ms": F, "model": S},
          ("media_id", "ts", "model"), "ocr_text", view=False),
    Table("keypoints", "example photo's local features",
          {"media_id": S, "n": N, "xy": pl.Binary, "desc": pl.Binary, "model": S},
          ("media_id", "model"), "keypoints", view=False),
    Table("video_ranges", "time range of a video, embedded per model",
          {"media_id": S, "start_s": F, "end_s": F, "model": S, "frames": N, "error": S, "ocr": S, "keypoints": S},
          ("media_id", "start_s", "model"), "video_frames",
          {"ocr": "the OCR model that read its frames, '' when none", "keypoints": "the keypoint settings, '' "
           "when none"}, view=False),
    Table("frame_keypoints", "video frame's local features (one file per time range and model)",
          {"media_id": S, "ts": F, "xy": pl.Binary, "desc": pl.Binary},
          ("media_id", "ts"), "video_frames", files=("frame_keypoints/*/*.parquet",), view=False),
    Table("frames", "sampled video frame",
          {"media_id": S, "ts": F, "reason": S}, ("media_id", "ts"), "video_frames",
          {"reason": "interval / scene-change"}, empty_view=True),
    Table("frame_tags", "(frame, facet): the heads' top tag, before smoothing (null: nothing recognised)",
          {"media_id": S, "ts": F, "facet": S, "tag_id": S, "score": F, "head_version": S},
          ("media_id", "ts", "facet"), "video_segments", empty_view=True),
    Table("video_segments", "tag on a stretch of video",
          {"media_id": S, "facet": S, "tag_id": S, "start_s": F, "end_s": F, "peak_score": F, "status": S,
           "head_version": S, "origin": S},
          ("media_id", "facet", "tag_id", "start_s"), "video_segments",
          {"status": "applied / review / manual / rejected (a person's verdict on the stretch)",
           "origin": "model / review / correction"}, empty_view=True),
    Table("sponsor_photos", "(event, sponsor, photo): the sponsor's best box on a photo of the event",
          {"event": S, "tag_id": S, "media_id": S, "uri": S, "score": F, "box": pl.List(F), "boxes": N},
          ("event", "tag_id", "media_id"), "sponsor_report",
          {"score": "the photo's best box of the sponsor (applied tags only)", "box": "that box: x, y, w, h, 0-1; "
           "null: the whole photo", "boxes": "the sponsor's boxes on the photo"},
          files=(event_file("sponsor_photos", "*"),), empty_view=True),
    Table("sponsor_segments", "(event, sponsor, video) stretch on screen: the sponsor's applied segments merged "
          "where they overlap or touch, clipped to the video",
          {"event": S, "tag_id": S, "media_id": S, "uri": S, "start_s": F, "end_s": F, "peak_score": F},
          ("event", "tag_id", "media_id", "start_s"), "sponsor_report",
          {"peak_score": "the highest peak of the merged segments"},
          files=(event_file("sponsor_segments", "*"),), empty_view=True),
    Table("sponsor_summary", "(event, sponsor): its figures in the event's sponsor report (ml/sponsor_figures.py)",
          {"event": S, "tag_id": S, "name": S, "photos": N, "mean_score": F, "min_score": F, "video_appearances": N,
           "videos": N, "screen_time_s": F, "photo_share": F, "screen_share": F},
          ("event", "tag_id"), "sponsor_report",
          {"photos": "distinct photos with the sponsor's logo", "mean_score": "over its photos' best boxes",
           "video_appearances": "segments before merging", "videos": "videos it is seen in",
           "screen_time_s": "per video the union of its segments, summed", "photo_share": "its photos / every "
           "sponsor's photos in the event (null: no sponsor in any photo)", "screen_share": "its screen time / "
           "every sponsor's screen time (null: none on screen)"},
          files=(event_file("sponsor_summary", "*"),), empty_view=True),
    Table("vector_index", "photo vector upserted into the library's Qdrant collection",
          {"media_id": S, "model": S}, ("media_id", "model"), "vector_index", view=False),
]
TABLES: dict[str, Table] = {t.name: t for t in _TABLES}
PARTS: dict[str, Table] = {p: t for t in _TABLES for p in (t.parts or {})}


def table_of(name: str) -> Table:
    """The table `name` is, or is a part of."""
    found = PARTS.get(name) or TABLES.get(name)
    if found is None:
        raise KeyError(f"no table {name!r} is declared in resources/tables.py")
    return found


def frame(name: str, rows=None) -> pl.DataFrame:
    """A frame of table (or part) `name`'s declared columns holding `rows`: dicts, a dict of columns or a
    frame; a column left out is null."""
    columns = table_of(name).columns
    if isinstance(rows, pl.DataFrame):
        rows = rows.to_dict(as_series=False)
    if isinstance(rows, dict):
        unknown = set(rows) - set(columns)
        if unknown:
            raise ValueError(f"table {name!r}: columns not declared {sorted(unknown)} (resources/tables.py)")
        n = len(next(iter(rows.values()))) if rows else 0
        rows = {c: rows.get(c, [None] * n) for c in columns}
    return pl.DataFrame(rows, schema=columns)


def writers() -> dict[str, list[str]]:
    """{asset: the stored tables and parts it writes} (derived views have no file of their own)."""
    out: dict[str, list[str]] = {}
    for t in _TABLES:
        if t.sql:
            continue
        for part, asset in (t.parts or {t.name: t.asset}).items():
            out.setdefault(asset, []).append(part)
    return out


def asset_path(part: str) -> list[str]:
    """The asset key (as a path) of a stored table or part: a stage's part of `quarantine` is
    `quarantine/<stage>`, so the asset catalog lists the parts under one folder, each with its writer."""
    spec = table_of(part)
    if spec.parts and spec.files == (f"{spec.name}_*.parquet",):
        return [spec.name, part.removeprefix(f"{spec.name}_")]
    return [part]


def view_assets() -> list[list[str]]:
    """The asset keys (as paths) of every stored table or part a DuckDB view reads: what the views depend on."""
    out = []
    for t in _TABLES:
        if t.view and not t.sql:
            out += [asset_path(p) for p in (t.parts or {t.name: t.asset})]
    return out


def side_tables(asset: str) -> list[str]:
    """The tables and parts `asset` writes besides the one that bears its name: the other asset specs of its
    multi_asset."""
    return [p for p in writers().get(asset, []) if p != asset]


def markdown() -> str:
    """sql/TABLES.md: the tables and views analysts query, from this registry."""
    lines = ["# Tables", "", "Generated by `python -m resources.tables` from resources/tables.py; do not edit.",
             "Each library is a DuckDB schema of these views (`tagsmith sql LIB`, or the shared DuckDB file).", ""]
    for t in _TABLES:
        if not t.view:
            continue
        if t.sql:
            writer = f"a view over other tables: `{t.sql}`"
        elif t.parts:
            writer = "; ".join(f"{a} (`{p}.parquet`)" for p, a in t.parts.items())
        else:
            writer = f"asset `{t.asset}`"
        lines += [f"## {t.name}", "", f"One row per {t.row}. Key: {', '.join(t.key)}. Written by {writer}.", ""]
        lines += ["| column | type | meaning |", "|---|---|---|"]
        lines += [f"| {c} | {duckdb_type(d)} | {t.notes.get(c, '')} |" for c, d in t.columns.items()]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    out = Path(__file__).resolve().parents[1] / "sql" / "TABLES.md"
    out.write_text(markdown(), encoding="utf-8")
    sys.stdout.write(f"wrote {out}\n")
