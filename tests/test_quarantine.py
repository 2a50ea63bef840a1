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


def test_each_stage_writes_its_own_part_and_the_view_unites_them(tmp_path):
    warehouse = Warehouse(root=str(tmp_path), duckdb_path=str(tmp_path / "q.duckdb"))
    record_quarantine(warehouse, "lib", "media", [{"uri": "/m/b.jpg", "media_id": None, "reason": "empty file"}])
    media_part = warehouse.table_path("lib", "quarantine_media")
    before = (media_part.read_bytes(), media_part.stat().st_mtime_ns)
    record_quarantine(warehouse, "lib", "video", [{"uri": "/m/v.mp4", "media_id": "v1", "reason": "no video stream"}])
    assert (media_part.read_bytes(), media_part.stat().st_mtime_ns) == before  # video never rewrote media's rows
    assert sorted(warehouse.read("lib", "quarantine")["stage"].to_list()) == ["media", "video"]
    assert warehouse.view_sources("lib")["quarantine"] == sorted(
        str(warehouse.table_path("lib", f"quarantine_{s}")) for s in ("media", "video")
    )
    with warehouse.reader("lib") as con:
        assert con.sql("SELECT stage, count(*) FROM quarantine GROUP BY 1 ORDER BY 1").fetchall() == [
            ("media", 1), ("video", 1)]
