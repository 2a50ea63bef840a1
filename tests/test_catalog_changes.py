"""What changed between two catalogs (ml/catalog_changes.py): the rows `catalog` appends to `catalog_changes`."""

from __future__ import annotations

from ml.catalog_changes import catalog_changes


def tag(tag_id: str, facet: str = "product", name: str | None = None, retired: bool | None = False) -> dict:
    return {"tag_id": tag_id, "facet": facet, "name": name or tag_id.title(), "retired": retired}


def changes(before, after) -> list[tuple]:
    return [(r["tag_id"], r["change"], r["before"]) for r in catalog_changes(before, after, "t1")]


def test_the_first_catalog_adds_every_tag_and_one_added_retired_is_both():
    assert changes([], [tag("a"), tag("b", retired=True)]) == [
        ("a", "added", None),
        ("b", "added", None),
        ("b", "retired", None),
    ]


def test_each_kind_of_change_is_one_row_with_what_it_was_before():
    before = [tag("a"), tag("b"), tag("c", retired=True), tag("d"), tag("e"), tag("same")]
    after = [
        tag("a", name="Aurora"),
        tag("b", retired=True),
        tag("c"),
        tag("d", facet="colorway"),
        tag("new"),
        tag("same"),
    ]
    assert changes(before, after) == [
        ("a", "renamed", "A"),
        ("b", "retired", None),
        ("c", "unretired", None),
        ("d", "moved", "product"),
        ("new", "added", None),
        ("e", "removed", None),
    ]
    row = catalog_changes(before, after, "2026-12-06T16:00:00+00:00")[0]
    assert row == {
        "tag_id": "a",
        "facet": "product",
        "change": "renamed",
        "name": "Aurora",
        "before": "A",
        "seen_at": "2026-12-06T16:00:00+00:00",
    }


def test_an_unchanged_catalog_records_nothing_and_a_table_without_the_retired_column_reads_as_not_retired():
    assert changes([tag("a"), tag("b")], [tag("a"), tag("b")]) == []
    assert changes([tag("a", retired=None)], [tag("a")]) == []  # written before `retired` was declared
