from pathlib import Path

import pytest

from ml.catalog import ValidationError, examples_from_folders, load_catalog, parse_catalog, parse_examples_manifest

YAML = """
tags:
  - {tag_id: aurora-shell, facet: product, name: Aurora Shell, aliases: [Aurora Jacke, オーロラ], identifiers: [AS-100]}
  - {tag_id: storm-blue, facet: colorway, name: Storm Blue, aliases: [Sturmblau]}
  - {tag_id: packshot, facet: shot_type, name: Packshot}
"""


def test_yaml_catalog_keeps_unicode_and_lists():
    catalog = parse_catalog(YAML, "catalog.yaml")
    tag = catalog.by_id()["aurora-shell"]
    assert tag.aliases == ("Aurora Jacke", "オーロラ")
    assert tag.identifiers == ("AS-100",)
    assert catalog.facets() == ["colorway", "product", "shot_type"]


def test_csv_catalog_with_pipe_separated_lists(tmp_path):
    path = tmp_path / "catalog.csv"
    path.write_text(
        "tag_id,facet,name,aliases,identifiers\nvolt-x200,product,Volt X200,Volt 200|ボルト,X200;SKU-1\n", "utf-8"
    )
    tag = load_catalog(path).tags[0]
    assert (tag.tag_id, tag.aliases, tag.identifiers) == ("volt-x200", ("Volt 200", "ボルト"), ("X200", "SKU-1"))


def test_catalog_refused_with_every_problem_by_line():
    text = "tag_id,facet,name\nok-tag,product,OK\nok-tag,product,Dup\nBad Tag,product,X\n,colorway,Y\n"
    with pytest.raises(ValidationError) as info:
        parse_catalog(text, "catalog.csv")
    problems = info.value.problems
    assert any("catalog.csv:3" in p and "duplicate tag_id" in p for p in problems)
    assert any("catalog.csv:4" in p and "slug" in p for p in problems)
    assert any("catalog.csv:5" in p and "missing tag_id" in p for p in problems)
    assert len(problems) == 3


def test_manifest_refused_with_every_problem_by_line(tmp_path: Path):
    catalog = parse_catalog(YAML, "catalog.yaml")
    (tmp_path / "a.jpg").write_bytes(b"x")
    manifest = tmp_path / "examples.csv"
    manifest.write_text(
        "path,tag_id,facet\n"
        "a.jpg,aurora-shell,product\n"
        "missing.jpg,aurora-shell,product\n"
        "a.jpg,no-such-tag,product\n"
        "a.jpg,storm-blue,product\n"
        "a.jpg,aurora-shell,product\n"
        "a.jpg,storm-blue,\n",
        "utf-8",
    )
    with pytest.raises(ValidationError) as info:
        parse_examples_manifest(manifest, catalog)
    text = "\n".join(info.value.problems)
    assert "examples.csv:3: file not found" in text
    assert "examples.csv:4: unknown tag_id 'no-such-tag'" in text
    assert "examples.csv:5: tag 'storm-blue' is in facet 'colorway'" in text
    assert "examples.csv:6:" in text and "already labelled" in text
    assert len(info.value.problems) == 4


def test_manifest_ok_resolves_relative_paths(tmp_path: Path):
    catalog = parse_catalog(YAML, "catalog.yaml")
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.jpg").write_bytes(b"x")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,tag_id\nimg/a.jpg,aurora-shell\nimg/a.jpg,storm-blue\n", "utf-8")
    rows = parse_examples_manifest(manifest, catalog)
    assert [(r.tag_id, r.facet) for r in rows] == [("aurora-shell", "product"), ("storm-blue", "colorway")]
    assert rows[0].uri == str((tmp_path / "img" / "a.jpg").resolve())


def test_folder_per_tag(tmp_path: Path):
    catalog = parse_catalog(YAML, "catalog.yaml")
    (tmp_path / "aurora-shell").mkdir()
    (tmp_path / "aurora-shell" / "1.jpg").write_bytes(b"x")
    (tmp_path / "unknown").mkdir()
    with pytest.raises(ValidationError, match="folder name is not a tag_id"):
        examples_from_folders(tmp_path, catalog)
    (tmp_path / "unknown").rmdir()
    assert [e.tag_id for e in examples_from_folders(tmp_path, catalog)] == ["aurora-shell"]


def test_catalog_can_force_a_facets_strategy_and_refuses_unknown_ones():
    from ml.catalog import parse_catalog

    tags = "tags:\n  - {tag_id: a, facet: product}\n  - {tag_id: b, facet: product}\n"
    text = "facets:\n  product: {strategy: logreg+ocr, backbone: finetuned}\n" + tags
    catalog = parse_catalog(text, "c.yaml")
    assert catalog.forced_strategy("product") == "logreg+ocr" and catalog.forced_strategy("colorway") is None
    assert catalog.forced_backbone("product") == "finetuned" and catalog.forced_backbone("colorway") is None
    bad = "facets:\n  product: {strategy: magic, backbone: resnet}\n  colour: {strategy: logreg}\n" + tags
    with pytest.raises(ValidationError) as info:
        parse_catalog(bad, "c.yaml")
    assert any("strategy 'magic'" in p for p in info.value.problems)
    assert any("'colour' is not the facet of any tag" in p for p in info.value.problems)
    bad = "facets:\n  product: {backbone: resnet, colour: red}\n" + tags
    with pytest.raises(ValidationError) as info:
        parse_catalog(bad, "c.yaml")
    assert any("only 'mode', 'strategy', 'backbone', 'target_precision'" in p for p in info.value.problems)
    for bad_precision in ("0.3", "1.0", "high", "true"):
        with pytest.raises(ValidationError) as info:
            parse_catalog(f"facets:\n  product: {{target_precision: {bad_precision}}}\n" + tags, "c.yaml")
        assert any("target_precision must be a number from 0.5 to 0.999" in p for p in info.value.problems)
    with pytest.raises(ValidationError) as info:
        parse_catalog("facets:\n  product: {backbone: resnet}\n" + tags, "c.yaml")
    wanted = (
        "backbone 'resnet' is not one of ['base', 'colour', 'views', 'finetuned', 'finetuned-views', 'large-views', "
        "'ensemble']"
    )
    assert any(wanted in p for p in info.value.problems)


def test_a_facet_is_single_or_multi_and_sponsor_is_multi_by_default():
    tags = "tags:\n  - {tag_id: acme, facet: sponsor}\n  - {tag_id: a, facet: product}\n"
    tags += "  - {tag_id: sofa, facet: kit}\n"
    catalog = parse_catalog("facets:\n  kit: {mode: multi}\n" + tags, "c.yaml")
    assert [catalog.mode(f) for f in ("kit", "product", "sponsor")] == ["multi", "single", "multi"]
    assert catalog.multi_facets() == ["kit", "sponsor"]
    assert parse_catalog("facets:\n  sponsor: {mode: single}\n" + tags, "c.yaml").multi_facets() == []
    for bad, says in (
        ("facets:\n  kit: {mode: many}\n", "mode 'many' is not one of ['single', 'multi']"),
        ("facets:\n  sponsor: {strategy: logreg}\n", "a multi facet has no strategy or backbone to force"),
        ("tags:\n  - {tag_id: none, facet: sponsor}\n", "tag_id 'none' is reserved"),
    ):
        with pytest.raises(ValidationError) as info:
            parse_catalog(bad + (tags if bad.startswith("facets") else ""), "c.yaml")
        assert any(says in p for p in info.value.problems), info.value.problems


def test_multi_facet_examples_take_several_tags_and_none(tmp_path):
    tags = "tags:\n  - {tag_id: acme, facet: sponsor}\n  - {tag_id: hooli, facet: sponsor}\n"
    tags += "  - {tag_id: a, facet: product}\n"
    catalog = parse_catalog(tags, "c.yaml")
    for name in ("p1.jpg", "p2.jpg", "p3.jpg"):
        (tmp_path / name).write_bytes(b"x")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,tag_id\np1.jpg,acme\np1.jpg,hooli\np2.jpg,none\np1.jpg,a\n")
    got = [(Path(e.uri).name, e.tag_id, e.facet) for e in parse_examples_manifest(manifest, catalog)]
    assert got == [
        ("p1.jpg", "acme", "sponsor"),
        ("p1.jpg", "hooli", "sponsor"),
        ("p2.jpg", "none", "sponsor"),
        ("p1.jpg", "a", "product"),
    ]
    manifest.write_text(
        "path,tag_id,facet\np1.jpg,acme,\np1.jpg,acme,\np2.jpg,none,\np2.jpg,hooli,\n"
        "p3.jpg,none,product\np3.jpg,a,\np3.jpg,a,\n"
    )
    with pytest.raises(ValidationError) as info:
        parse_examples_manifest(manifest, catalog)
    assert info.value.problems == [
        f"{manifest}:3: p1.jpg already labelled for facet 'sponsor' on line 2",
        f"{manifest}:5: p2.jpg is labelled both 'none' and a tag of facet 'sponsor' (line 4)",
        f"{manifest}:6: 'none' examples are for multi facets; 'product' is single (set its facets: mode)",
        f"{manifest}:8: p3.jpg already labelled for facet 'product' on line 7",
    ]
    two = parse_catalog(tags + "  - {tag_id: sofa, facet: kit}\nfacets:\n  kit: {mode: multi}\n", "c.yaml")
    manifest.write_text("path,tag_id\np2.jpg,none\n")
    with pytest.raises(ValidationError) as info:
        parse_examples_manifest(manifest, two)
    assert info.value.problems == [
        f"{manifest}:2: a 'none' example needs its facet (one of ['kit', 'sponsor']) in the facet column"
    ]


def test_retired_is_a_boolean_in_yaml_and_csv_and_anything_else_is_refused(tmp_path):
    text = YAML + "  - {tag_id: glacier-vest, facet: product, name: Glacier Vest, retired: true}\n"
    catalog = parse_catalog(text, "catalog.yaml")
    assert catalog.retired() == {"glacier-vest"} and catalog.by_id()["glacier-vest"].as_row()["retired"] is True
    assert catalog.by_id()["aurora-shell"].as_row()["retired"] is False
    path = tmp_path / "catalog.csv"
    path.write_text("tag_id,facet,name,retired\nold-one,product,Old,TRUE\nnew-one,product,New,\n", "utf-8")
    assert load_catalog(path).retired() == {"old-one"}
    with pytest.raises(ValidationError) as info:
        bad = "  - {tag_id: x, facet: product, retired: 2}\n  - {tag_id: y, facet: product, retired: maybe}\n"
        parse_catalog(YAML + bad)
    assert info.value.problems == [
        "catalog:6: retired 2 must be true or false",
        "catalog:7: retired 'maybe' must be true or false",
    ]


def test_an_unknown_tag_in_a_manifest_says_to_retire_rather_than_remove(tmp_path):
    catalog = parse_catalog(YAML, "catalog.yaml")
    (tmp_path / "a.jpg").write_bytes(b"x")
    manifest = tmp_path / "examples.csv"
    manifest.write_text("path,tag_id\na.jpg,glacier-vest\n", "utf-8")
    with pytest.raises(ValidationError) as info:
        parse_examples_manifest(manifest, catalog)
    assert info.value.problems == [
        f"{manifest}:2: unknown tag_id 'glacier-vest' (to stop recognising a tag, keep it in the catalog with "
        "`retired: true`: its history stays)"
    ]
