"""Review: the queue people work through, and their verdicts recorded (the CLI's `tagsmith review`, and the HTTP
API later, come through here).

The queue is every photo tag and video segment waiting for review (status `review`), in a fixed shuffle
(ml/review_order.py: measured, it teaches more than "most uncertain first"). A verdict goes to the library's
verdict log at once (resources/verdicts.py); the next run lays it over the model's tags (people win) and the
facet's head learns from it (examples of source `review` / `correction`, from cached embeddings).
"""

from __future__ import annotations

import csv
import getpass
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from ml.catalog import Catalog, ValidationError
from ml.review_order import review_priority
from ml.search_text import fold
from ml.verdicts import VERDICTS
from resources.verdicts import append_verdicts
from tagsmith.service import require_run, resources

QUEUE_COLUMNS = [
    "kind", "media_id", "uri", "facet", "tag_id", "name", "score", "threshold", "candidates", "start_s", "end_s",
    "priority",
]  # fmt: skip
EXPORT_COLUMNS = [*QUEUE_COLUMNS, "verdict", "new_tag_id"]


def reviewer() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment (a container without one)
        return "unknown"


def thresholds_of(head_versions: pl.DataFrame) -> dict[tuple[str, str], float]:
    """{(head version, tag_id): threshold} from the `head_versions` table."""
    out = {}
    for version, thresholds in head_versions.select("version", "thresholds").iter_rows():
        for tag, value in json.loads(thresholds or "{}").items():
            out[(version, tag)] = float(value)
    return out


def media_uris(library: str) -> dict[str, str]:
    """{media_id: uri} of the library's media (a file under two names: the first name)."""
    media = resources()["warehouse"].read(library, "media")
    return dict(media.group_by("media_id").agg(pl.col("uri").min()).iter_rows())


def queue(library: str, facet: str = "") -> pl.DataFrame:
    """Photo tags and video segments in review, in the review order (QUEUE_COLUMNS)."""
    require_run(library)
    warehouse = resources()["warehouse"]
    names = dict(warehouse.read(library, "catalog").select("tag_id", "name").iter_rows())
    uris = media_uris(library)
    limits = thresholds_of(warehouse.read(library, "head_versions"))
    photos = warehouse.read(library, "tags").filter(pl.col("status") == "review")
    segments = warehouse.read(library, "video_segments").filter(pl.col("status") == "review")
    rows = [
        {**r, "kind": "photo", "start_s": None, "end_s": None}
        for r in photos.select("media_id", "facet", "tag_id", "score", "head_version", "candidates").to_dicts()
    ] + [
        {**r, "kind": "segment", "score": r.pop("peak_score"), "candidates": None}
        for r in segments.select(
            "media_id", "facet", "tag_id", "peak_score", "head_version", "start_s", "end_s"
        ).to_dicts()
    ]
    for row in rows:
        row.update(
            uri=uris.get(row["media_id"]),
            name=names.get(row["tag_id"]),
            threshold=limits.get((row.pop("head_version"), row["tag_id"])),
        )
    schema = {
        "kind": pl.String, "media_id": pl.String, "uri": pl.String, "facet": pl.String, "tag_id": pl.String,
        "name": pl.String, "score": pl.Float64, "threshold": pl.Float64, "candidates": pl.String,
        "start_s": pl.Float64, "end_s": pl.Float64,
    }  # fmt: skip
    table = pl.DataFrame(rows, schema=schema)
    if facet:
        table = table.filter(pl.col("facet") == facet)
    return review_priority(table).select(QUEUE_COLUMNS)


def export_queue(library: str, out: Path, facet: str = "") -> int:
    """The queue as a CSV someone fills in elsewhere (`verdict`: accept / reject / replace, `new_tag_id` for a
    replacement) and gives back with `import_verdicts`."""
    table = queue(library, facet).with_columns(verdict=pl.lit(""), new_tag_id=pl.lit(""))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.select(EXPORT_COLUMNS).write_csv(out)
    return table.height


def resolve_tag(catalog: Catalog, facet: str, typed: str) -> str | None:
    """The facet's tag a person typed: its tag_id, or its name or an alias (case and accents folded)."""
    folded = fold(typed)
    for tag in catalog.tags:
        if tag.facet == facet and (tag.tag_id == typed or folded in {fold(n) for n in (tag.name, *tag.aliases)}):
            return tag.tag_id
    return None


def check_verdict(catalog: Catalog, row: dict) -> str | None:
    """What is wrong with one verdict (None: nothing)."""
    tags = catalog.by_id()
    if row["verdict"] not in VERDICTS:
        return f"verdict {row['verdict']!r} is not one of {', '.join(VERDICTS)} (or empty / skip)"
    tag = tags.get(row["tag_id"] or "")
    if tag is None or tag.facet != row["facet"]:
        return f"tag {row['tag_id']!r} is not in facet {row['facet']!r}"
    if row["verdict"] == "replace":
        new = tags.get(row.get("new_tag_id") or "")
        if new is None or new.facet != row["facet"] or new.tag_id == row["tag_id"]:
            return f"replace needs new_tag_id: another tag of facet {row['facet']!r} (got {row.get('new_tag_id')!r})"
    if row["kind"] == "segment" and (row["start_s"] is None or row["end_s"] is None):
        return "a segment's verdict needs start_s and end_s"
    return None


def record(
    library: str,
    verdicts: list[dict],
    who: str,
    via: str,
    catalog: Catalog | None = None,
    uris: dict[str, str] | None = None,
) -> int:
    """Append verdicts (media_id, facet, tag_id, verdict[, new_tag_id, kind, start_s, end_s, uri]) to the log,
    checked first: every problem refused together (ValidationError), nothing half written. `catalog` and `uris`
    (media_uris): the library's, passed by a caller that records item by item, so they are read once."""
    res = resources()
    catalog = catalog or res["libraries"].catalog(library)
    uris = media_uris(library) if uris is None else uris
    at = datetime.now(UTC).isoformat(timespec="seconds")
    rows, problems = [], []
    for i, v in enumerate(verdicts):
        row = {"kind": "photo", "start_s": None, "end_s": None, "new_tag_id": None, **v}
        row.update(at=at, who=who, via=via, uri=uris.get(row["media_id"]))
        problem = check_verdict(catalog, row)
        if row["uri"] is None:
            problem = f"media_id {row['media_id']!r} is not in library {library!r}"
        if problem:
            problems.append(f"{v.get('_where', f'verdict {i + 1}')}: {problem}")
        rows.append(row)
    if problems:
        raise ValidationError("verdicts", problems)
    return append_verdicts(res["libraries"].dir(library), rows)


def read_verdict_csv(path: Path) -> list[dict]:
    """The rows of a filled-in queue (or a `tagsmith export` file with a `verdict` column) that carry a verdict;
    empty and `skip` verdicts are left out. Problems of shape are refused with their line numbers."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(str(path), [f"{path}: cannot read: {exc}"]) from None
    reader = csv.DictReader(text.splitlines())
    missing = {"media_id", "facet", "tag_id", "verdict"} - set(reader.fieldnames or [])
    if missing:
        raise ValidationError(
            str(path), [f"{path}:1: header needs media_id, facet, tag_id, verdict; missing {sorted(missing)}"]
        )
    out, problems = [], []
    for i, row in enumerate(reader):
        verdict = (row.get("verdict") or "").strip().lower()
        if verdict in ("", "skip"):
            continue
        kind = (row.get("kind") or "photo").strip() or "photo"
        try:
            start, end = (float(row[c]) if (row.get(c) or "").strip() else None for c in ("start_s", "end_s"))
        except ValueError:
            problems.append(f"{path}:{i + 2}: start_s / end_s must be seconds")
            continue
        out.append(
            {
                "_where": f"{path}:{i + 2}",
                "media_id": (row["media_id"] or "").strip(),
                "facet": (row["facet"] or "").strip(),
                "tag_id": (row["tag_id"] or "").strip(),
                "verdict": verdict,
                "new_tag_id": (row.get("new_tag_id") or "").strip() or None,
                "kind": kind,
                "start_s": start,
                "end_s": end,
            }
        )
    if problems:
        raise ValidationError(str(path), problems)
    return out


def import_verdicts(library: str, path: Path, who: str) -> dict[str, int]:
    """Record the verdicts of a filled-in CSV; returns how many of each."""
    require_run(library)
    verdicts = read_verdict_csv(path)
    record(library, verdicts, who, via="csv")
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v["verdict"]] = counts.get(v["verdict"], 0) + 1
    return counts
