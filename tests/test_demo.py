"""The generated demo library: its catalog, manifest and truth agree, and its output is reproducible.

Small counts and 128 px images keep the whole module to a few seconds; the default sizes only change how
many photos are drawn, not how.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image, ImageFile

from tagsmith.demo import DemoSummary, generate_demo_library

SMALL = {"examples_per_product": 2, "uploads_per_product": 1, "image_size": 128, "videos": 0}
CORRUPT = {"IMG_9001.jpg", "IMG_9002.jpg", "IMG_9003.jpg"}






@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoSummary:
    return generate_demo_library(tmp_path_factory.mktemp("demo") / "lib", seed=7, **SMALL)


@pytest.fixture(scope="module")
def catalog(demo: DemoSummary) -> list[dict]:
    return yaml.safe_load(demo.catalog_path.read_text(encoding="utf-8"))["tags"]


def test_summary_counts(demo: DemoSummary, catalog: list[dict]) -> None:
    n_products = sum(t["facet"] == "product" for t in catalog)
    assert demo.n_products == n_products >= 24
    assert demo.n_examples == 2 * n_products
    assert demo.n_uploads == n_products
    assert demo.n_corrupt == 3
    assert (demo.root / "README.txt").read_text(encoding="utf-8").startswith("tagsmith demo library")


def test_catalog_shape(catalog: list[dict]) -> None:
    tag_ids = [t["tag_id"] for t in catalog]
    assert len(tag_ids) == len(set(tag_ids))
    facets = {t["facet"] for t in catalog}
    assert {"product", "colorway", "shot_type"} <= facets
    for tag in catalog:
        assert set(tag) == {"tag_id", "facet", "name", "aliases", "identifiers", "attributes"}
        assert tag["name"] and isinstance(tag["aliases"], list)
    products = [t for t in catalog if t["facet"] == "product"]
    colorways = {t["tag_id"] for t in catalog if t["facet"] == "colorway"}
    assert len(colorways) >= 5
    assert all(p["identifiers"] for p in products)
    assert all(2 <= len(p["attributes"]["colorways"]) <= 3 for p in products)
    assert all(set(p["attributes"]["colorways"]) <= colorways for p in products)
    assert len({p["attributes"]["family"] for p in products}) >= 6
    assert any(not alias.isascii() for p in products for alias in p["aliases"])
    storm = next(t for t in catalog if t["tag_id"] == "storm-blue")
    assert storm["name"] == "Storm Blue" and "Sturmblau" in storm["aliases"]


def test_lookalike_pairs_differ_only_in_printed_identifiers(catalog: list[dict]) -> None:
    products = [t for t in catalog if t["facet"] == "product"]
    looks: dict[tuple, list[dict]] = defaultdict(list)
    for p in products:
        attrs = p["attributes"]
        looks[(attrs["family"], attrs["pattern"], attrs["accent"], attrs["logo"])].append(p)
    pairs = [group for group in looks.values() if len(group) == 2]
    assert len(pairs) >= 3
    by_id = {p["tag_id"]: p for p in products}
    for a, b in pairs:
        assert set(a["identifiers"]).isdisjoint(b["identifiers"])
        assert a["attributes"]["colorways"] == b["attributes"]["colorways"]
        assert a["attributes"]["lookalike"] == b["tag_id"] and b["attributes"]["lookalike"] == a["tag_id"]
    assert all(by_id[p["attributes"]["lookalike"]] for p in products if "lookalike" in p["attributes"])


def test_manifest_matches_catalog_and_files(demo: DemoSummary, catalog: list[dict], read_csv) -> None:
    facet_of = {t["tag_id"]: t["facet"] for t in catalog}
    header, rows = read_csv(demo.examples_manifest)
    assert header == ["path", "tag_id", "facet"]
    facets_by_path: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        assert facet_of[row["tag_id"]] == row["facet"]
        facets_by_path[row["path"]].append(row["facet"])
    assert len(facets_by_path) == demo.n_examples
    assert all(sorted(f) == ["colorway", "product", "shot_type"] for f in facets_by_path.values())
    for rel in facets_by_path:
        path = demo.examples_manifest.parent / rel
        with Image.open(path) as img:
            img.load()
            assert img.format == "JPEG" and img.size == (128, 128)
    # each product's examples show both shot types, even at two per product
    shots: dict[str, set[str]] = defaultdict(set)
    product_of = {r["path"]: r["tag_id"] for r in rows if r["facet"] == "product"}
    for row in rows:
        if row["facet"] == "shot_type":
            shots[product_of[row["path"]]].add(row["tag_id"])
    assert all(s == {"packshot", "lifestyle"} for s in shots.values())


def test_truth_references_uploads_and_leaks_no_labels(demo: DemoSummary, catalog: list[dict], read_csv) -> None:
    facet_of = {t["tag_id"]: t["facet"] for t in catalog}
    header, rows = read_csv(demo.truth_path)
    assert header == ["path", "facet", "tag_id"]
    paths = {r["path"] for r in rows}
    assert len(paths) == demo.n_uploads and len(rows) == 3 * demo.n_uploads
    assert not paths & CORRUPT
    for row in rows:
        assert facet_of[row["tag_id"]] == row["facet"]
        assert (demo.uploads_dir / row["path"]).is_file()
        assert row["path"].startswith("IMG_") and not any(t in row["path"] for t in facet_of)
    on_disk = {p.name for p in demo.uploads_dir.iterdir()}
    assert on_disk == paths | CORRUPT


def test_corrupt_uploads_fail_to_decode(demo: DemoSummary, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)
    assert (demo.uploads_dir / "IMG_9001.jpg").stat().st_size == 0
    for name in sorted(CORRUPT):
        with pytest.raises(OSError):  # UnidentifiedImageError and "image file is truncated" are OSErrors
            with Image.open(demo.uploads_dir / name) as img:
                img.load()


def test_same_seed_same_bytes_other_seed_differs(demo: DemoSummary, tmp_path: Path, tree_digest) -> None:
    again = generate_demo_library(tmp_path / "again", seed=7, **SMALL)
    other = generate_demo_library(tmp_path / "other", seed=8, **SMALL)
    assert tree_digest(again.root) == tree_digest(demo.root)
    assert tree_digest(other.root) != tree_digest(demo.root)
    assert other.catalog_path.read_bytes() == demo.catalog_path.read_bytes()  # the catalog is not random


def test_regenerating_replaces_old_photos_and_refuses_foreign_folders(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    generate_demo_library(root, **SMALL)
    (root / "uploads" / "IMG_5555.jpg").write_bytes(b"stale")
    summary = generate_demo_library(root, corrupt=False, **SMALL)
    assert summary.n_corrupt == 0
    assert {p.name for p in summary.uploads_dir.iterdir()}.isdisjoint(CORRUPT | {"IMG_5555.jpg"})

    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(FileExistsError):
        generate_demo_library(foreign, **SMALL)
    assert [p.name for p in foreign.iterdir()] == ["holiday.jpg"]


def test_examples_cover_every_colourway_and_shot(tmp_path: Path, catalog: list[dict], read_csv) -> None:
    # 6 per product = 2 shots x up to 3 colourways: the plan must not pin a colourway to one shot type
    summary = generate_demo_library(
        tmp_path / "lib", examples_per_product=6, uploads_per_product=0, image_size=64, corrupt=False, videos=0
    )
    _, rows = read_csv(summary.examples_manifest)
    by_path: dict[str, dict[str, str]] = defaultdict(dict)
    for row in rows:
        by_path[row["path"]][row["facet"]] = row["tag_id"]
    seen: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for labels in by_path.values():
        seen[labels["product"]].add((labels["colorway"], labels["shot_type"]))
    for product in (t for t in catalog if t["facet"] == "product"):
        expected = {(cw, s) for cw in product["attributes"]["colorways"] for s in ("packshot", "lifestyle")}
        assert seen[product["tag_id"]] == expected, product["tag_id"]


def test_demo_videos_have_truth_that_matches_the_pictures(tmp_path: Path, read_csv) -> None:
    from ml.video import open_video
    from tagsmith.demo_video import _SceneRenderer, plan_video

    rng = np.random.default_rng(3)
    scenes = plan_video(rng, 60.0)
    assert scenes[0].start_s == 0.0 and scenes[-1].end_s == 60.0
    assert all(a.end_s == b.start_s for a, b in zip(scenes, scenes[1:], strict=False))  # cuts tile the video
    slides = 0
    for scene in scenes:
        if scene.appearance is None or not scene.appearance.slide_in:
            continue
        slides += 1
        r = _SceneRenderer(scene, 320, 180)
        a = scene.appearance

        def inside(t: float, r: _SceneRenderer = r) -> float:  # fraction of the drawn product inside at t
            x, (left, right) = r.x_at(t), r.opaque
            return 0.0 if x is None else (min(x + right, 320) - max(x + left, 0)) / (right - left)

        assert inside(a.shown_s) == pytest.approx(0.5, abs=0.05)
        assert inside(a.shown_s - 0.4) < 0.2 and inside(a.shown_s + 0.4) > 0.8
    assert slides >= 1

    summary = generate_demo_library(tmp_path / "lib", **{**SMALL, "videos": 1, "video_seconds": 12.0})
    names = {p.name for p in summary.uploads_dir.iterdir()}
    assert {"CLIP_0001.mp4", "PHONE_0001.mov", "CLIP_9004.mp4", "CLIP_9005.mov", "CLIP_9006.mp4"} <= names
    _, rows = read_csv(summary.video_truth_path)
    assert rows and {r["facet"] for r in rows} == {"product", "colorway"}
    assert all(0 <= float(r["start_s"]) < float(r["end_s"]) <= 20.0 for r in rows)
    phone = open_video(str(summary.uploads_dir / "PHONE_0001.mov"))
    assert (phone.info.width, phone.info.height) == (360, 640)  # portrait, as shown
    phone.close()


def test_second_shoot_has_its_own_truth_and_another_light(tmp_path: Path, read_csv) -> None:
    summary = generate_demo_library(
        tmp_path / "lib", examples_per_product=1, uploads_per_product=1, image_size=96, corrupt=False, videos=0,
        second_shoot_per_product=1,
    )
    header, rows = read_csv(summary.root / "truth_shoot2.csv")
    assert header == ["path", "facet", "tag_id"] and len(rows) == 3 * summary.n_products
    shoot2 = sorted(summary.uploads_dir.glob("SHOOT2_*.jpg"))
    assert len(shoot2) == summary.n_products and {r["path"] for r in rows} == {p.name for p in shoot2}

    from tagsmith.demo_products import compose_photo, render_product

    for shot in ("packshot", "lifestyle"):  # the same product, shot and camera jitter, in the two studios
        first, second = (
            np.asarray(compose_photo(render_product(0, "storm-blue", 120), shot, np.random.default_rng(5), 96, k),
                       np.float32).mean(axis=(0, 1))
            for k in (1, 2)
        )
        assert second.sum() < 0.9 * first.sum(), shot  # dimmer
        assert second[0] / second[2] > 1.15 * first[0] / first[2], shot  # warmer: red over blue
