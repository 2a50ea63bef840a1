"""Search: one folding for query and catalog (ml/search_text.py), sql/search.sql on hand-made tables, and every
demo product and colourway found by each of its names on a pipeline-tagged demo library."""

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from ml.catalog import CatalogTag
from ml.search_text import fold, search_terms, tag_search_text
from resources import build_resources
from resources.sql_files import load_sql
from tagsmith import service
from tagsmith.cli import app
from tagsmith.demo_products import COLORWAYS, PRODUCTS


def test_fold_is_case_accent_width_and_punctuation_blind():
    assert fold("SKU-4411") == fold("sku 4411") == fold("Sku/4411") == fold("ＳＫＵ－４４１１") == "sku 4411"
    assert fold("hydra-500") == fold("Hydra 500") == "hydra 500"
    assert fold("Moosgrün") == fold("MOOSGRUN") == "moosgrun"
    assert fold("Straße") == "strasse" and fold("Écouteurs") == "ecouteurs" and fold("Ёлка") == "елка"
    assert fold("Flocons d'avoine\tCrisp\n") == "flocons d avoine crisp"
    assert fold("ﬁle") == "file" and fold("a\u200db") == "ab"  # ligature; a zero-width joiner is no break
    # Japanese keeps its voiced marks (グ is not ク) and half-width katakana become the usual ones
    assert fold("グレイシャー") == "グレイシャー" != fold("クレイシャー")
    assert fold("ｸﾞﾚｲｼｬｰ") == "グレイシャー"
    assert fold("नमस्ते") == "नमस्ते"  # Devanagari's marks are part of its letters


def test_search_terms_keep_a_typed_word_whole():
    assert search_terms("SKU-4411, hydra 500  Hydra") == ["sku 4411", "hydra", "500"]
    assert search_terms(" - , ") == []
    assert tag_search_text("hydra-500", "Hydra 500", ["Gourde Hydra 500"], ["H500", "SKU-4411"]) == [
        "hydra 500",
        "gourde hydra 500",
        "h500",
        "sku 4411",
    ]


def _search(con, text, statuses=("applied",), facets=(), lang="", limit=50, offset=0):
    params = {"terms": search_terms(text), "statuses": list(statuses), "facets": list(facets), "lang": lang,
              "limit": limit, "offset": offset}
    return pl.from_arrow(con.sql(load_sql("search"), params=params).to_arrow_table())


def _con():
    con = duckdb.connect()
    catalog = pl.DataFrame(
        [
            CatalogTag("aurora-shell", "product", "Aurora Shell", ("Aurora Jacke", "オーロラシェル"), ("AS-1",))
            .as_row(),
            CatalogTag("hydra-500", "product", "Hydra 500", ("Gourde Hydra 500",), ("H500", "SKU-4411")).as_row(),
            CatalogTag("hydra-750", "product", "Hydra 750", ("Gourde Hydra 750",), ("H750", "SKU-4448")).as_row(),
            CatalogTag("storm-blue", "colorway", "Storm Blue", ("navy", "Sturmblau"), ()).as_row(),
            CatalogTag("packshot", "shot_type", "Packshot", ("studio",), ()).as_row(),
        ]
    )
    con.register("catalog_rows", catalog.to_arrow())
    con.execute("CREATE TABLE catalog AS SELECT * FROM catalog_rows")
    con.execute(
        "CREATE TABLE media AS SELECT * FROM (VALUES ('v1', '/m/event.mp4', 'video'), ('p1', '/m/a.jpg', 'image'),"
        " ('p2', '/m/b.jpg', 'image'), ('p3', '/m/c.jpg', 'image')) t(media_id, uri, kind)"
    )
    con.execute(
        "CREATE TABLE tags AS SELECT * FROM (VALUES ('p1', 'product', 'aurora-shell', 0.9, 'applied'),"
        " ('p2', 'product', 'hydra-500', 0.8, 'applied'), ('p2', 'colorway', 'storm-blue', 0.7, 'applied'),"
        " ('p3', 'product', 'hydra-750', 0.8, 'applied')) t(media_id, facet, tag_id, score, status)"
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
    both = _search(con, "aurora packshot").filter(pl.col("kind") == "video")
    assert sorted(zip(both["start_s"], both["end_s"], strict=True)) == [(7.0, 15.0), (18.0, 28.0)]
    three = _search(con, "aurora storm blue packshot")
    assert list(zip(three["start_s"], three["end_s"], strict=True)) == [(20.0, 28.0)]  # no photo has all
    one = _search(con, "aurora")
    assert set(one["kind"]) == {"image", "video"} and one.height == 3
    assert _search(con, "navy").height == 2  # a photo and a segment; the review segment is left out
    assert _search(con, "navy", statuses=("applied", "review")).height == 3
    assert _search(con, "aurora zzzz").height == 0


@pytest.mark.parametrize(
    "text",
    ["SKU-4411", "sku4411", "ＳＫＵ－４４１１", "hydra-500", "Hydra 500", "HYDRA-500", "h500", "H-500"]
    + ["Gourde Hydra 500", "gourde-hydra 500"],
)
def test_identifiers_and_tag_ids_are_found_however_they_are_typed(text):
    hits = _search(_con(), text)
    assert hits["media_id"].to_list() == ["p2"], text


def test_a_typed_word_is_matched_whole_and_short_words_exactly():
    con = _con()
    assert set(_search(con, "hydra")["media_id"]) == {"p2", "p3"}
    assert set(_search(con, "hyd")["media_id"]) == {"p2", "p3"}  # a prefix of 3+ letters
    assert _search(con, "hy").height == 0  # shorter: whole words only
    assert _search(con, "SKU-44").height == 0  # a last word under 3 letters is whole, never begun
    assert set(_search(con, "SKU-444")["media_id"]) == {"p3"}  # begun: SKU-4448
    assert _search(con, "hydra-storm").height == 0  # one typed word: one tag, never two tags' words
    assert _search(con, "hydra storm")["media_id"].to_list() == ["p2"]  # two words: two tags of one photo
    assert set(_search(con, "シェル")["media_id"]) == {"p1", "v1"}  # a script without spaces: any part
    assert set(_search(con, "sturmblau")["media_id"]) == {"p2", "v1"}


# --- every demo product, on a library the pipeline tagged (tests/conftest.py tagged_demo) ---


def _tagged(tags, tag_id):
    return set(tags.filter(pl.col("tag_id") == tag_id)["media_id"])


def _found(text):
    return set(service.search("demo", text, limit=1000, include_review=True)["media_id"])


def test_every_demo_product_is_found_by_name_alias_identifier_and_tag_id(tagged_demo, monkeypatch):
    env, tags = tagged_demo.env, tagged_demo.used_tags
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for product in PRODUCTS:
        expected = _tagged(tags, product.tag_id)
        assert expected, f"the pipeline put {product.name} on no photo"
        for text in (product.name, *product.aliases, product.model, product.sku, product.tag_id):
            assert _found(text) == expected, f"{product.name}: {text!r}"
        colorway = product.colorways[0]
        both = expected & _tagged(tags, colorway)
        assert _found(f"{product.name} {COLORWAYS[colorway][0]}") == both
    for tag_id, (name, _, aliases) in COLORWAYS.items():
        expected = _tagged(tags, tag_id)
        assert expected, f"the pipeline put {name} on no photo"
        for text in (name, *aliases, tag_id):
            assert _found(text) == expected, f"{name}: {text!r}"


def test_the_readme_search_examples_through_the_cli(tagged_demo, monkeypatch):
    env, tags = tagged_demo.env, tagged_demo.used_tags
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    hydra = next(p for p in PRODUCTS if p.tag_id == "hydra-500")
    assert hydra.sku == "SKU-4411"
    media = build_resources(env)["warehouse"].read("demo", "media")
    hydra_media = media.filter(pl.col("media_id").is_in(list(_tagged(tags, "hydra-500"))))
    names = set(hydra_media["uri"].str.split("/").list.last())
    for text in ("SKU-4411", "hydra-500", "H500", "hydra 500"):
        args = ["search", "demo", text, "--include-review", "--limit", "50"]
        result = runner.invoke(app, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        shown = {name for name in names if name in result.output}
        assert shown == names, (text, result.output)
