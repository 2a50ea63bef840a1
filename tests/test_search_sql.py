"""sql/search.sql on hand-made tables: video hits are the stretch where every term is on screen."""

import duckdb
import polars as pl

from tagsmith.sql import load_sql


def _search(con, terms, statuses=("applied",)):
    params = {"terms": list(terms), "statuses": list(statuses), "limit": 50}
    return pl.from_arrow(con.sql(load_sql("search"), params=params).to_arrow_table())


def _con():
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE catalog AS SELECT * FROM (VALUES "
        "('product', 'aurora-shell', 'Aurora Shell', ['Aurora Jacke'], ['AS-1']), "
        "('colorway', 'storm-blue', 'Storm Blue', ['navy'], []::VARCHAR[]), "
        "('shot_type', 'packshot', 'Packshot', ['studio'], []::VARCHAR[])"
        ") t(facet, tag_id, name, aliases, identifiers)"
    )
    con.execute(
        "CREATE TABLE media AS SELECT * FROM (VALUES ('v1', '/m/event.mp4', 'video'), ('p1', '/m/a.jpg', 'image'))"
        " t(media_id, uri, kind)"
    )
    con.execute(
        "CREATE TABLE tags AS SELECT * FROM (VALUES ('p1', 'product', 'aurora-shell', 0.9, 'applied'))"
        " t(media_id, facet, tag_id, score, status)"
    )
    con.execute(
        "CREATE TABLE video_segments AS SELECT * FROM (VALUES "
        "('v1', 'shot_type', 'packshot', 0.0, 40.0, 0.8, 'applied'), "
        "('v1', 'product', 'aurora-shell', 7.0, 15.0, 0.9, 'applied'), "
        "('v1', 'product', 'aurora-shell', 18.0, 28.0, 0.7, 'applied'), "
        "('v1', 'colorway', 'storm-blue', 20.0, 33.0, 0.6, 'applied'), "
        "('v1', 'colorway', 'storm-blue', 50.0, 55.0, 0.6, 'review')"
        ") t(media_id, facet, tag_id, start_s, end_s, peak_score, status)"
    )
    return con


def test_video_hits_are_where_all_terms_are_on_screen():
    con = _con()
    both = _search(con, ["aurora", "packshot"]).filter(pl.col("kind") == "video")
    assert sorted(zip(both["start_s"], both["end_s"], strict=True)) == [(7.0, 15.0), (18.0, 28.0)]
    three = _search(con, ["aurora", "storm", "blue", "packshot"])
    assert list(zip(three["start_s"], three["end_s"], strict=True)) == [(20.0, 28.0)]  # no photo has all
    one = _search(con, ["aurora"])
    assert set(one["kind"]) == {"image", "video"} and one.height == 3
    assert _search(con, ["navy"]).height == 1  # the review segment is left out unless asked for
    assert _search(con, ["navy"], statuses=("applied", "review")).height == 2
    assert _search(con, ["aurora", "zzzz"]).height == 0
