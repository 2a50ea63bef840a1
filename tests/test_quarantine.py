from assets_defs.common import record_quarantine
from resources.warehouse import Warehouse


def test_quarantine_keeps_one_row_per_failure_and_its_first_sighting(tmp_path):
    warehouse = Warehouse(root=str(tmp_path), duckdb_path=str(tmp_path / "q.duckdb"))
    bad = {"uri": "/m/a.jpg", "media_id": "m1", "reason": "truncated image"}
    record_quarantine(warehouse, "lib", "media", [{"uri": "/m/b.jpg", "media_id": None, "reason": "empty file"}])
    first = record_quarantine(warehouse, "lib", "embeddings", [bad])
    seen = first.filter(first["stage"] == "embeddings")["seen_at"][0]
    again = record_quarantine(
        warehouse, "lib", "embeddings", first.filter(first["stage"] == "embeddings").to_dicts() + [bad]
    )
    rows = again.sort("stage").to_dicts()
    assert [(r["stage"], r["uri"]) for r in rows] == [("embeddings", "/m/a.jpg"), ("media", "/m/b.jpg")]
    assert rows[0]["seen_at"] == seen
    cleared = record_quarantine(warehouse, "lib", "media", [])
    assert cleared["stage"].to_list() == ["embeddings"]
