"""Multilingual catalogs and search: names per language parsed and refused by line (ml/catalog_names.py), one
folding for French, German, Japanese, Arabic and Hebrew (ml/search_text.py), and service.search with a language,
facets and pages on a library whose tables are written through the warehouse (no pipeline run)."""

import threading
import unicodedata

import polars as pl
import pytest

from ml.catalog import ValidationError, load_catalog, parse_catalog
from ml.catalog_names import LanguageError, display_name, requested_language
from ml.search_text import fold, search_terms
from resources import build_resources
from resources.libraries import LibraryConfig, LibraryError
from resources.library_readers import READERS
from resources.tables import frame
from tagsmith import service

CATALOG = """
tags:
  - tag_id: aurora-jacket
    facet: product
    name: Aurora Jacket
    names: {fr: Veste Aurore, de: Aurora Übergangsjacke, ja: オーロラジャケット, ar: سترة أورورا, pt: Jaqueta Aurora}
    aliases: [Aurora Shell]
  - tag_id: glacier-boot
    facet: product
    name: Glacier Boot
    name_fr: Botte Glacière
    name_DE: Gletscherstiefel
    aliases: [グレイシャーブーツ]
  - tag_id: sakura-tee
    facet: product
    name: 桜Tシャツ
    aliases: [Sakura Tee]
  - tag_id: storm-parka
    facet: product
    name: Storm Parka
  - tag_id: storm-blue
    facet: colorway
    name: Storm Blue
    names: {fr: Bleu Orage, de: Sturmblau, ja: ストームブルー, ar: أزرق عاصف}
"""


# --- catalog ---------------------------------------------------------------------------------------------------
def test_names_by_language_from_a_mapping_and_flat_keys():
    tags = parse_catalog(CATALOG, "catalog.yaml").by_id()
    assert tags["aurora-jacket"].names["fr"] == "Veste Aurore"
    assert tags["glacier-boot"].names == {"de": "Gletscherstiefel", "fr": "Botte Glacière"}  # codes folded
    assert tags["storm-parka"].names == {}
    row = tags["storm-blue"].as_row()
    assert row["names"][0] == {"lang": "ar", "name": "أزرق عاصف"}
    assert {"bleu orage", "sturmblau", "ストームブルー", "ازرق عاصف"} <= set(row["search_text"])


def test_csv_catalog_takes_name_columns(tmp_path):
    path = tmp_path / "catalog.csv"
    path.write_text("tag_id,facet,name,name_fr,name_pt_BR\nveste,product,Jacket,Veste,\nbotte,product,Boot,,Bota\n")
    tags = load_catalog(path).by_id()
    assert tags["veste"].names == {"fr": "Veste"}  # an empty cell is no name in that language
    assert tags["botte"].names == {"pt-br": "Bota"}


def test_bad_names_are_refused_with_every_problem_by_line():
    text = """tags:
  - {tag_id: a, facet: product, name: A, names: {french: Veste}}
  - {tag_id: b, facet: product, name: B, names: {no: Jakke}}
  - {tag_id: c, facet: product, name: C, names: [Veste]}
  - {tag_id: d, facet: product, name: D, names: {fr: Veste}, name_fr: Blouson}
  - {tag_id: e, facet: product, name: E, name_1: X, names: {de: [Jacke]}}
"""
    with pytest.raises(ValidationError) as info:
        parse_catalog(text, "catalog.yaml")
    problems = info.value.problems
    assert len(problems) == 6, problems
    assert "catalog.yaml:2: names: french: 'french' is not a language code" in problems[0]
    assert problems[1].startswith("catalog.yaml:3:") and "quote the code" in problems[1]  # YAML's no = false
    assert problems[2].startswith("catalog.yaml:4: names must map language codes")
    assert problems[3] == "catalog.yaml:5: two names in 'fr': 'Veste' and 'Blouson'"
    assert problems[4].startswith("catalog.yaml:6: names: de: the name must be text")
    assert problems[5].startswith("catalog.yaml:6: name_1: '1' is not a language code")


def test_display_name_falls_back_to_the_base_language_then_the_name():
    names = {"fr": "Veste", "pt": "Jaqueta"}
    assert display_name("Jacket", names, "FR") == "Veste"
    assert display_name("Jacket", names, "pt_BR") == "Jaqueta"
    assert display_name("Jacket", names, "ja") == display_name("Jacket", names, None) == "Jacket"
    assert requested_language(" ") == ""
    with pytest.raises(LanguageError, match="'français' is not a language code"):
        requested_language("français")


# --- folding ---------------------------------------------------------------------------------------------------
def test_french_and_german_fold_case_accents_and_normal_forms():
    nfd = unicodedata.normalize("NFD", "Botte Glacière")
    assert nfd != "Botte Glacière" and fold(nfd) == fold("BOTTE GLACIERE") == "botte glaciere"
    assert fold("Übergangsjacke") == fold("ubergangsjacke") and fold("Weiß") == fold("WEISS") == "weiss"
    assert fold("Ｖｅｓｔｅ　Ａｕｒｏｒｅ") == "veste aurore"  # full-width letters and space


def test_japanese_keeps_its_marks_and_width_forms_meet():
    assert fold("ｸﾞﾚｲｼｬｰﾌﾞｰﾂ") == fold("グレイシャーブーツ") == "グレイシャーブーツ"
    assert fold(unicodedata.normalize("NFD", "グレイシャー")) == "グレイシャー" != fold("クレイシャー")
    assert fold("桜Ｔシャツ") == "桜tシャツ"


def test_arabic_drops_harakat_and_tatweel_and_reads_alef_forms_as_alef():
    assert fold("أَزْرَق") == fold("أزرق") == fold("ازرق") == fold("إزرق") == fold("آزرق") == "ازرق"
    assert fold("ســـترة") == fold("سترة") == "سترة"  # tatweel stretches a word, it is no letter
    assert fold("سترةٌ") == "سترة" and fold("رحمٰن") == "رحمن"  # tanween; superscript alef
    assert fold("ﺳﺘﺮﺓ") == "سترة"  # presentation forms (NFKC)
    assert fold("مؤسسة") != fold("موسسة") and fold("شاطئ") != fold("شاطي")  # hamza seats are letters
    assert fold("مدرسة") != fold("مدرسه")  # teh marbuta is not heh


def test_hebrew_drops_niqqud():
    assert fold("שָׁלוֹם") == fold("שלום") == "שלום"


# --- search through the service --------------------------------------------------------------------------------
PHOTOS = [  # media, tags (facet, tag_id, score)
    ("p-aurora", [("product", "aurora-jacket", 0.9), ("colorway", "storm-blue", 0.8)]),
    ("p-boot", [("product", "glacier-boot", 0.7), ("colorway", "storm-blue", 0.6)]),
    ("p-sakura", [("product", "sakura-tee", 0.8)]),
    ("p-parka", [("product", "storm-parka", 0.5)]),
] + [(f"p-tie-{i:02d}", [("colorway", "storm-blue", 0.5)]) for i in range(23)]


@pytest.fixture
def shop(tmp_path, monkeypatch):
    """A library named `shop` with CATALOG and PHOTOS as its tables, written as a run writes them."""
    monkeypatch.setenv("TAGSMITH_HOME", str(tmp_path / "home"))
    res = build_resources()
    (tmp_path / "photos").mkdir()
    res["libraries"].create(LibraryConfig(name="shop", media=str(tmp_path / "photos")))
    (tmp_path / "catalog.yaml").write_text(CATALOG, "utf-8")
    res["libraries"].set_catalog("shop", tmp_path / "catalog.yaml")
    warehouse = res["warehouse"]
    catalog = load_catalog(tmp_path / "catalog.yaml")
    warehouse.write("shop", "catalog", frame("catalog", [t.as_row() for t in catalog.tags]))
    media = [{"media_id": m, "uri": f"/photos/{m}.jpg", "kind": "image", "status": "ok"} for m, _ in PHOTOS]
    warehouse.write("shop", "media", frame("media", media))
    rows = [
        {"media_id": m, "facet": f, "tag_id": t, "score": s, "status": "applied", "head_version": "v1"}
        for m, tags in PHOTOS
        for f, t, s in tags
    ]
    warehouse.write("shop", "tags", frame("tags", rows))
    return warehouse


def _ids(hits: pl.DataFrame) -> list[str]:
    return hits["media_id"].to_list()


def test_names_in_every_language_find_the_tag_and_matched_comes_in_the_asked_language(shop):
    for text in (
        "Veste Aurore",
        "veste aurore",
        "VESTE",
        "Übergangsjacke",
        "オーロラジャケット",
        "سترة أورورا",
        "ســترةٌ",
        "aurora shell",
        "aurora-jacket",
    ):
        assert _ids(service.search("shop", text, facets=["product"])) == ["p-aurora"], text
    top = service.search("shop", "aurora storm blue", lang="fr").row(0, named=True)
    assert (top["media_id"], top["matched"]) == ("p-aurora", "Bleu Orage, Veste Aurore")
    assert top["tag_ids"] == ["aurora-jacket", "storm-blue"]
    assert service.search("shop", "aurora", lang="ja")["matched"].to_list() == ["オーロラジャケット"]
    assert service.search("shop", "aurora", lang="pt-BR")["matched"].to_list() == ["Jaqueta Aurora"]  # pt
    assert service.search("shop", "sakura", lang="fr")["matched"].to_list() == ["桜Tシャツ"]  # no French name
    for lang in (None, "fr", "ja", "ar"):
        assert service.search("shop", "aurora storm", lang=lang)["tag_ids"].to_list()[0] == [
            "aurora-jacket",
            "storm-blue",
        ]


def test_cross_script_aliases(shop):
    assert _ids(service.search("shop", "sakura tee")) == ["p-sakura"]  # a Japanese-named tag by its Latin alias
    assert _ids(service.search("shop", "桜")) == ["p-sakura"]
    assert _ids(service.search("shop", "ｸﾞﾚｲｼｬｰ")) == ["p-boot"]  # a Latin-named tag by its katakana alias
    assert _ids(service.search("shop", "botte glaciere", lang="fr")) == ["p-boot"]


def test_facets_restrict_which_tags_a_word_may_match(shop):
    everything = set(_ids(service.search("shop", "storm", limit=100)))
    assert {"p-parka", "p-aurora"} <= everything and len(everything) == 26
    assert _ids(service.search("shop", "storm", facets=["product"])) == ["p-parka"]
    assert len(service.search("shop", "storm", facets=["colorway"], limit=100)) == 25
    assert service.search("shop", "storm", facets=["colorway", "product"], limit=100).height == 26
    with pytest.raises(LibraryError, match="no facet 'colourway'"):
        service.search("shop", "storm", facets=["colourway"])


def test_pages_never_overlap_even_when_scores_tie(shop):
    whole = service.search("shop", "storm blue", limit=100)
    pages = [service.search("shop", "storm blue", limit=10, offset=o) for o in (0, 10, 20, 30)]
    assert [p.height for p in pages] == [10, 10, 5, 0]
    assert sum((_ids(p) for p in pages), []) == _ids(whole) and len(set(_ids(whole))) == 25
    ties = whole.filter(pl.col("score") == 0.5)["media_id"].to_list()  # ties in media_id order
    assert ties == sorted(ties) and len(ties) == 23
    with pytest.raises(ValueError, match="offset 0 or more"):
        service.search("shop", "storm", offset=-1)
    with pytest.raises(LanguageError):
        service.search("shop", "storm", lang="klingon")


def test_catalog_table_in_a_language(shop):
    table = service.catalog_table("shop", lang="fr")
    names = dict(zip(table["tag_id"], table["name"], strict=True))
    assert names["aurora-jacket"] == "Veste Aurore" and names["storm-parka"] == "Storm Parka"
    assert table.filter(pl.col("tag_id") == "aurora-jacket")["default_name"].item() == "Aurora Jacket"
    assert service.catalog_table("shop")["name"].to_list() == service.catalog_table("shop")["default_name"].to_list()


def test_warm_search_is_shared_by_threads_and_never_stale(shop):
    service.search("shop", "storm")
    builds = READERS.builds
    expected = service.search("shop", "storm", limit=100)
    results: list[pl.DataFrame] = []

    def worker():
        for _ in range(5):
            results.append(service.search("shop", "storm", limit=100))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 30 and all(r.equals(expected) for r in results)
    assert READERS.builds == builds  # warm: no connection built again
    # a run replaces the tags table: the next search sees it
    shop.write(
        "shop",
        "tags",
        frame(
            "tags",
            [
                {
                    "media_id": "p-parka",
                    "facet": "product",
                    "tag_id": "storm-parka",
                    "score": 0.9,
                    "status": "applied",
                    "head_version": "v2",
                }
            ],
        ),
    )
    assert _ids(service.search("shop", "storm", limit=100)) == ["p-parka"]
    assert READERS.builds == builds + 1


def test_a_catalog_table_from_before_names_asks_for_a_run(shop):
    old = shop.read("shop", "catalog").drop("names")
    old.write_parquet(shop.table_path("shop", "catalog"))
    with pytest.raises(LibraryError, match="`tagsmith run shop` rewrites it"):
        service.search("shop", "storm")


def test_cli_search_with_language_facet_and_offset(shop, cli):
    result = cli("search", "shop", "aurora", "--lang", "fr", "--facet", "product", "--offset", "0")
    assert result.exit_code == 0 and "Veste Aurore" in result.output and "p-aurora.jpg" in result.output
    page2 = cli("search", "shop", "storm blue", "--limit", "20", "--offset", "20")
    assert page2.exit_code == 0 and [line.count(".jpg") for line in page2.output.splitlines()].count(2) == 5
    bad = cli("search", "shop", "aurora", "--lang", "fr!")
    assert bad.exit_code == 1 and bad.output.strip().splitlines() == [
        "language 'fr!' is not a language code (like fr, de, ja, ar, pt-br)"
    ]


def test_search_terms_of_a_multilingual_query():
    assert search_terms("Veste, オーロラ أَزْرَق") == ["veste", "オーロラ", "ازرق"]
