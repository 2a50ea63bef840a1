"""The README's CLI verbs, end to end on a small generated library (in-process runner, temporary home)."""

import re

import polars as pl
import yaml


def test_bad_catalog_and_manifest_are_refused_with_every_line(cli, tmp_path, small_demo):
    assert cli("init", "shop", "--media", small_demo.uploads_dir).exit_code == 0
    bad_catalog = tmp_path / "bad.csv"
    bad_catalog.write_text("tag_id,facet,name\na,product,A\na,product,A again\nB B,product,C\n", "utf-8")
    result = cli("catalog", "shop", bad_catalog)
    assert result.exit_code == 1
    assert "bad.csv:3: duplicate tag_id 'a'" in result.output and "bad.csv:4:" in result.output

    assert cli("catalog", "shop", small_demo.catalog_path).exit_code == 0
    manifest = tmp_path / "examples.csv"
    lines = small_demo.examples_manifest.read_text("utf-8").splitlines()
    first_path = lines[1].split(",")[0]
    manifest.write_text(
        "\n".join(
            [
                lines[0],
                f"{small_demo.root / first_path},no-such-tag,product",
                f"{small_demo.root}/missing.jpg,{lines[1].split(',')[1]},product",
            ]
        )
        + "\n"
    )
    result = cli("examples", "shop", manifest)
    assert result.exit_code == 1
    assert "examples.csv:2: unknown tag_id 'no-such-tag'" in result.output
    assert "examples.csv:3: file not found" in result.output


def test_cli_verbs_end_to_end(cli, tmp_path, small_demo, write_video):
    assert cli("init", "shop", "--media", tmp_path / "media", "--min-accuracy", "0.2").exit_code == 0
    assert cli("catalog", "shop", small_demo.catalog_path).exit_code == 0
    assert "example labels added" in cli("examples", "shop", small_demo.examples_manifest).output
    assert "files copied" in cli("ingest", "shop", small_demo.uploads_dir).output
    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "event.mp4", sorted(small_demo.uploads_dir.glob("IMG_00*.jpg"))[:2])
    assert "files copied" in cli("ingest", "shop", videos).output
    result = cli("run", "shop")
    assert result.exit_code == 0, result.output
    assert "product" in result.output and "shot_type" in result.output
    assert "quarantined, empty file: 1 file(s), 1 new: IMG_9001.jpg" in result.output  # one line per reason

    out = tmp_path / "tags.csv"
    assert cli("export", "shop", out, "--include-review").exit_code == 0
    tags = pl.read_csv(out)
    assert set(tags["facet"]) == {"product", "colorway", "shot_type"}
    row = tags.filter(pl.col("facet") == "product").row(0, named=True)
    found = cli("search", "shop", row["name"], "--include-review")
    assert row["uri"].rsplit("/", 1)[-1] in found.output
    assert "IMG_" in cli("similar", "shop", row["uri"], "--limit", "2").output
    refused = cli("similar", "shop", videos / "event.mp4")
    assert refused.exit_code == 1 and "is a video" in refused.output
    listed = cli("segments", "shop", "event", "--include-review")
    assert listed.exit_code == 0 and "event.mp4 00:00:00–00:00:0" in listed.output, listed.output
    versions = cli("heads", "shop")  # one version per facet after one run, each in use
    assert versions.exit_code == 0 and versions.output.count("true") == 3, versions.output
    assert all(f in versions.output for f in ("product", "colorway", "shot_type")), versions.output
    missing = cli("heads", "shop", "sponsor")
    assert missing.exit_code == 1 and "library 'shop' has no head of facet 'sponsor'" in missing.output
    coverage = cli("sql", "shop", "SELECT count(*) AS catalog_tags FROM coverage")
    n_tags = len(yaml.safe_load(small_demo.catalog_path.read_text("utf-8"))["tags"])
    assert coverage.exit_code == 0 and "catalog_tags" in coverage.output, coverage.output
    assert re.search(rf"\b{n_tags}\b", coverage.output), coverage.output  # one row per catalog tag
