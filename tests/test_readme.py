"""The README's catalog and manifest snippets, run literally: what a user copies must parse as shown."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

from ml.catalog import load_catalog, parse_examples_manifest
from ml.groups import PhotoFacts, shoot_groups

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text("utf-8"), flags=re.S)


def write_photos(manifest_text: str, folder: Path) -> None:
    """A small photo at each path the manifest names (relative to `folder`)."""
    for line in manifest_text.splitlines()[1:]:
        photo = folder / line.split(",")[0]
        photo.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16)).save(photo)


def test_readme_manifest_with_groups_parses_against_the_readme_catalog(tmp_path):
    catalog_text = next(b for b in blocks("yaml") if "tag_id: aurora-shell" in b)
    (tmp_path / "catalog.yaml").write_text(catalog_text, "utf-8")
    catalog = load_catalog(tmp_path / "catalog.yaml")
    manifest_text = next(b for b in blocks("csv") if b.startswith("path,tag_id,facet,group"))
    manifest = tmp_path / "examples.csv"
    manifest.write_text(manifest_text, "utf-8")
    write_photos(manifest_text, tmp_path)
    examples = parse_examples_manifest(manifest, catalog)
    assert [(e.tag_id, e.group) for e in examples] == [
        ("aurora-shell", "2026-05-04 studio"),
        ("storm-blue", "2026-05-04 studio"),
        ("aurora-shell", "2026-06-11 rooftop"),
    ]
    assert catalog.retired() == {"glacier-vest"}  # kept in the catalog, never trained on or predicted
    photos = {e.uri: PhotoFacts(e.uri, e.uri, ((e.facet, e.tag_id),), e.group) for e in examples}
    groups = shoot_groups(list(photos.values()))
    assert groups == ["manifest:2026-05-04 studio", "manifest:2026-06-11 rooftop"]


def test_readme_facets_snippet_parses_with_the_readme_tags():
    from ml.catalog import parse_catalog

    tags = next(b for b in blocks("yaml") if "tag_id: aurora-shell" in b)
    snippet = next(b for b in blocks("yaml") if b.startswith("facets:"))
    assert "tags: [...]" in snippet
    catalog = parse_catalog(snippet.split("tags: [...]")[0] + tags, "README.md")
    assert catalog.forced_strategy("product") == "logreg+ocr" and catalog.forced_backbone("colorway") == "finetuned"
    assert catalog.target_precision("shot_type", 0.9) == 0.8 and catalog.target_precision("product", 0.9) == 0.9
    assert catalog.target_precision("sponsor", 0.9) == 0.95  # the default of a sponsor facet


def test_readme_library_yaml_snippet_shows_the_defaults_a_new_library_gets(tmp_path):
    import yaml

    from resources.libraries import LibraryConfig, LibraryStore

    snippet = next(b for b in blocks("yaml") if b.startswith("views:") and "finetune:" in b)
    store = LibraryStore(root=str(tmp_path))
    store.create(LibraryConfig(name="shop", media=str(tmp_path / "photos")))
    path = store.dir("shop") / "library.yaml"
    path.write_text(path.read_text("utf-8") + snippet, "utf-8")  # appended as a user would
    config = store.config("shop")
    fresh = LibraryConfig(name="shop", media=str(tmp_path / "photos"))
    assert config.model_dump() == fresh.model_dump()
    assert {"views", "keypoints", "finetune"} <= set(yaml.safe_load(snippet))
    # the comment's alternatives validate too
    assert LibraryConfig(**{**config.model_dump(), "keypoints": "rootsift"}).keypoint_kind == "rootsift"
    assert LibraryConfig(**{**config.model_dump(), "keypoints": False}).keypoint_kind is None


def test_readme_multi_facet_catalog_and_none_examples_parse_as_shown(tmp_path):
    catalog_text = next(b for b in blocks("yaml") if "inventory: {mode: multi" in b)
    (tmp_path / "catalog.yaml").write_text(catalog_text, "utf-8")
    catalog = load_catalog(tmp_path / "catalog.yaml")
    assert catalog.multi_facets() == ["inventory", "sponsor"]
    assert catalog.target_precision("inventory", 0.8) == 0.9 and catalog.target_precision("sponsor", 0.8) == 0.95
    manifest_text = next(b for b in blocks("csv") if "expo/IMG_0102.jpg,none,sponsor" in b)
    manifest = tmp_path / "examples.csv"
    manifest.write_text(manifest_text, "utf-8")
    write_photos(manifest_text, tmp_path)
    examples = parse_examples_manifest(manifest, catalog)
    assert [(Path(e.uri).name, e.tag_id, e.facet) for e in examples] == [
        ("IMG_0101.jpg", "acme", "sponsor"),
        ("IMG_0101.jpg", "globex", "sponsor"),
        ("IMG_0102.jpg", "none", "sponsor"),
        ("IMG_0103.jpg", "lounge-sofa", "inventory"),
    ]


def test_readme_events_snippet_validates_as_a_library_yaml(tmp_path):
    from resources.libraries import LibraryConfig, LibraryStore

    snippet = next(b for b in blocks("yaml") if b.startswith("events:"))
    store = LibraryStore(root=str(tmp_path))
    store.create(LibraryConfig(name="shop", media=str(tmp_path / "photos")))
    path = store.dir("shop") / "library.yaml"
    text = path.read_text("utf-8").replace("events: {}\n", "")  # appended as a user would, in place of the default
    path.write_text(text + snippet, "utf-8")
    events = store.config("shop").events
    assert list(events) == ["cup-2026-final", "cup-2026-day2"]
    assert events["cup-2026-final"].folder == "2026-06-cup/final" and events["cup-2026-final"].quiet_minutes == 10
    assert events["cup-2026-day2"].tag == "cup-day2" and events["cup-2026-day2"].sponsor_facet == "sponsor"
    commands = re.findall(r"^tagsmith report (\S+) (\S+)", README.read_text("utf-8"), flags=re.M)
    assert commands == [("shoes", "cup-2026-final")]


def test_readme_multilingual_catalog_parses_and_its_names_are_search_text():
    from ml.catalog import parse_catalog
    from ml.catalog_names import display_name

    snippet = next(b for b in blocks("yaml") if "name_pt-br:" in b)
    tags = parse_catalog(snippet, "README.md").by_id()
    shell, blue = tags["aurora-shell"], tags["storm-blue"]
    assert shell.names["ja"] == "オーロラシェル" and blue.names == {"fr": "Bleu orage", "pt-br": "Azul tempestade"}
    assert display_name(blue.name, blue.names, "pt_BR") == "Azul tempestade"
    assert display_name(shell.name, shell.names, "pt") == "Aurora Shell"  # no Portuguese name: `name`
    assert {"veste aurore", "سترة اورورا", "azul tempestade"} <= {*shell.as_row()["search_text"],
                                                                   *blue.as_row()["search_text"]}
