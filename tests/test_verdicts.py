"""People's verdicts: the log's rules (ml/verdicts.py), the review order (ml/review_order.py), the log file and the
examples it makes (resources/verdicts.py), and the shape checks of a filled-in CSV (tagsmith/review.py)."""

import numpy as np
import polars as pl
import pytest

from ml.catalog import ValidationError, parse_catalog
from ml.review_order import review_priority
from ml.verdicts import LOG_SCHEMA, apply_labels, apply_segment_labels, person_labels
from resources.tables import frame
from resources.verdicts import append_verdicts, read_verdicts, verdict_examples
from tagsmith.review import check_verdict, read_verdict_csv, resolve_tag

CATALOG = parse_catalog(
    """
tags:
  - {tag_id: aurora, facet: product, name: Aurora Shell, aliases: [Veste Aurore]}
  - {tag_id: borealis, facet: product, name: Borealis Down}
  - {tag_id: cirrus, facet: product, name: Cirrus Fleece}
  - {tag_id: acme, facet: sponsor, name: Acme}
  - {tag_id: zenit, facet: sponsor, name: Zenit}
"""
)


def log(*rows) -> pl.DataFrame:
    """Log rows (at, who, media_id, facet, tag_id, verdict[, new_tag_id][, start_s, end_s])."""
    out = []
    for r in rows:
        at, who, media, facet, tag, verdict, *rest = r
        new = rest[0] if rest and isinstance(rest[0], str) else None
        stretch = [x for x in rest if not isinstance(x, str)]
        out.append(
            {
                "at": at,
                "who": who,
                "kind": "segment" if stretch else "photo",
                "media_id": media,
                "uri": f"/m/{media}.jpg",
                "facet": facet,
                "tag_id": tag,
                "verdict": verdict,
                "new_tag_id": new,
                "start_s": stretch[0] if stretch else None,
                "end_s": stretch[1] if stretch else None,
                "via": "csv",
            }
        )
    return pl.DataFrame(out, schema=LOG_SCHEMA)


def test_the_latest_verdict_wins_and_a_single_facet_keeps_one_manual_tag():
    labels = person_labels(
        log(
            ("2026-01-01T10:00:00", "ana", "p1", "product", "aurora", "reject"),
            ("2026-01-01T10:05:00", "ben", "p1", "product", "aurora", "accept"),  # changed their mind
            ("2026-01-01T10:00:00", "ana", "p2", "product", "aurora", "replace", "borealis"),
            ("2026-01-01T11:00:00", "ana", "p2", "product", "borealis", "replace", "cirrus"),
            ("2026-01-01T10:00:00", "ana", "p3", "sponsor", "acme", "accept"),
            ("2026-01-01T10:01:00", "ana", "p3", "sponsor", "zenit", "accept"),  # multi: both stay
        ),
        multi=["sponsor"],
    )
    got = {(r["media_id"], r["tag_id"]): (r["status"], r["origin"], r["set_by"]) for r in labels.to_dicts()}
    assert got == {
        ("p1", "aurora"): ("manual", "review", "ben"),
        ("p2", "aurora"): ("rejected", "correction", "ana"),
        ("p2", "borealis"): ("rejected", "correction", "ana"),  # replaced in turn: refused, no longer manual
        ("p2", "cirrus"): ("manual", "correction", "ana"),
        ("p3", "acme"): ("manual", "review", "ana"),
        ("p3", "zenit"): ("manual", "review", "ana"),
    }


def test_people_win_over_the_model():
    model = frame(
        "tags",
        [
            {"media_id": "p1", "facet": "product", "tag_id": "aurora", "score": 0.4, "status": "review",
             "head_version": "v2"},
            {"media_id": "p2", "facet": "product", "tag_id": "aurora", "score": 0.9, "status": "applied",
             "head_version": "v2"},
            {"media_id": "p3", "facet": "product", "tag_id": "cirrus", "score": 0.8, "status": "applied",
             "head_version": "v2"},
            {"media_id": "p4", "facet": "sponsor", "tag_id": "acme", "score": 0.7, "status": "applied",
             "head_version": "v2", "box": [0.1, 0.1, 0.2, 0.2]},
        ],
    )  # fmt: skip
    labels = person_labels(
        log(
            ("t1", "ana", "p1", "product", "aurora", "accept"),
            ("t1", "ana", "p2", "product", "aurora", "replace", "borealis"),
            ("t1", "ana", "p3", "product", "aurora", "reject"),  # the model now says cirrus there: it stays
            ("t1", "ana", "p4", "sponsor", "zenit", "reject"),
        ),
        multi=["sponsor"],
    )
    out = apply_labels(model, labels, multi=["sponsor"]).sort("media_id", "tag_id")
    rows = {(r["media_id"], r["tag_id"]): r for r in out.to_dicts()}
    assert set(rows) == {("p1", "aurora"), ("p2", "aurora"), ("p2", "borealis"), ("p3", "aurora"),
                         ("p3", "cirrus"), ("p4", "acme"), ("p4", "zenit")}  # fmt: skip
    assert rows[("p1", "aurora")]["status"] == "manual" and rows[("p1", "aurora")]["set_by"] == "ana"
    assert rows[("p1", "aurora")]["score"] == 0.4 and rows[("p1", "aurora")]["head_version"] == "v2"
    assert (rows[("p2", "aurora")]["status"], rows[("p2", "borealis")]["status"]) == ("rejected", "manual")
    assert rows[("p2", "borealis")]["origin"] == "correction" and rows[("p2", "borealis")]["score"] is None
    assert rows[("p3", "cirrus")]["status"] == "applied" and rows[("p3", "cirrus")]["origin"] == "model"
    assert rows[("p4", "acme")]["box"] == [0.1, 0.1, 0.2, 0.2] and rows[("p4", "zenit")]["status"] == "rejected"
    assert out.height == len(rows)  # one row per (photo, facet, tag): the key of `tags`


def test_verdicts_on_video_stretches():
    segments = frame(
        "video_segments",
        [{"media_id": "v1", "facet": "sponsor", "tag_id": "acme", "start_s": 10.0, "end_s": 15.0,
          "peak_score": 0.5, "status": "review", "head_version": "v"}],
    )  # fmt: skip
    labels = person_labels(
        log(
            ("t1", "ana", "v1", "sponsor", "acme", "reject", 9.0, 12.0),
            ("t1", "ana", "v1", "sponsor", "zenit", "accept", 30.0, 31.0),
        ),
        multi=["sponsor"],
    )
    out = {r["tag_id"]: r for r in apply_segment_labels(segments, labels).to_dicts()}
    assert out["acme"]["status"] == "rejected" and out["acme"]["origin"] == "review"
    assert (out["zenit"]["status"], out["zenit"]["start_s"], out["zenit"]["end_s"]) == ("manual", 30.0, 31.0)


def test_the_queue_order_is_a_fixed_shuffle():
    """The queue is shuffled by a hash of each item (ml/review_order.py: measured, a uniform draw taught more than
    "uncertain and frequent first"): the same order whatever order the rows come in, on every machine, not by
    score and not by tag; a verdict taken leaves the others in their order."""
    rows = [{"media_id": f"m{i:03d}", "facet": "product", "tag_id": ["aurora", "borealis", "cirrus"][i % 3],
             "score": i / 300} for i in range(300)]  # fmt: skip
    queue = pl.DataFrame(rows)
    order = review_priority(queue)["media_id"].to_list()
    assert (
        sorted(order) == sorted(queue["media_id"]) and order == review_priority(queue.reverse())["media_id"].to_list()
    )
    assert order[:3] == ["m250", "m150", "m163"]  # sha256: the same on every machine (never Python's hash())
    assert review_priority(queue.filter(pl.col("media_id") != order[0]))["media_id"].to_list() == order[1:]
    ranks = {m: k for k, m in enumerate(order)}
    assert abs(np.corrcoef([ranks[r["media_id"]] for r in rows], [r["score"] for r in rows])[0, 1]) < 0.2
    first_100 = {r["tag_id"] for r in rows if ranks[r["media_id"]] < 100}
    assert first_100 == {"aurora", "borealis", "cirrus"}


def test_the_log_keeps_every_verdict_and_makes_examples(tmp_path):
    first = log(("t1", "ana", "p1", "product", "aurora", "replace", "borealis")).to_dicts()
    assert append_verdicts(tmp_path, first) == 1
    append_verdicts(tmp_path, log(("t2", "ben", "p3", "sponsor", "acme", "accept")).to_dicts())
    append_verdicts(tmp_path, log(("t3", "ben", "p4", "product", "gone", "accept")).to_dicts())
    table = read_verdicts(tmp_path)
    assert table.height == 3 and table["who"].to_list() == ["ana", "ben", "ben"]
    assert table["start_s"].null_count() == 3 and table["new_tag_id"].to_list() == ["borealis", None, None]
    examples, skipped = verdict_examples(tmp_path, CATALOG)
    # the correction is an example; the sponsor (multi facet) is a label only; a tag gone from the catalog is said
    assert [(e.uri, e.tag_id, e.source) for e in examples] == [("/m/p1.jpg", "borealis", "correction")]
    assert len(skipped) == 1 and "'gone' is no longer in facet 'product'" in skipped[0]


def test_a_filled_in_csv_is_checked_line_by_line(tmp_path):
    assert resolve_tag(CATALOG, "product", "veste aurore") == "aurora"
    assert resolve_tag(CATALOG, "product", "Acme") is None
    row = {"media_id": "p", "facet": "product", "tag_id": "aurora", "kind": "photo", "start_s": None, "end_s": None}
    assert check_verdict(CATALOG, {**row, "verdict": "accept"}) is None
    assert "not one of" in check_verdict(CATALOG, {**row, "verdict": "maybe"})
    assert "replace needs new_tag_id" in check_verdict(CATALOG, {**row, "verdict": "replace", "new_tag_id": "acme"})
    assert "not in facet" in check_verdict(CATALOG, {**row, "tag_id": "acme", "verdict": "reject"})
    path = tmp_path / "v.csv"
    path.write_text("media_id,facet,tag_id,verdict,start_s\np,product,aurora,accept,\nq,product,aurora,,\n"
                    "r,product,aurora,skip,\ns,product,aurora,reject,abc\n")  # fmt: skip
    with pytest.raises(ValidationError, match=r"v.csv:5: start_s / end_s must be seconds"):
        read_verdict_csv(path)
    path.write_text("media_id,tag_id\np,aurora\n")
    with pytest.raises(ValidationError, match=r"missing \['facet', 'verdict'\]"):
        read_verdict_csv(path)
