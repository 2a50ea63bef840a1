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

    review_loop(cli, tmp_path, tags)


def review_loop(cli, tmp_path, tags: pl.DataFrame) -> None:
    """`tagsmith review`: the queue as CSV in priority order, verdicts imported from a filled-in file and typed
    in the terminal; the next run shows them (people win) and retrains the facet they teach."""
    queue_csv = tmp_path / "queue.csv"
    exported = cli("review", "shop", "--export", queue_csv)
    assert exported.exit_code == 0 and "items to review written" in exported.output, exported.output
    queue = pl.read_csv(queue_csv)
    assert queue.height > 0 and queue["priority"].to_list() == sorted(queue["priority"].to_list(), reverse=True)
    assert set(queue["kind"]) <= {"photo", "segment"} and set(queue["verdict"].fill_null("")) == {""}
    # verdicts on rows of the tag export (any tag can be judged, not only the queue's)
    first = queue.row(0, named=True)  # the terminal's verdict below; the file's are on other photos
    product = tags.filter((pl.col("facet") == "product") & (pl.col("media_id") != first["media_id"])).sort("uri")
    others = sorted(set(product["tag_id"]))
    rejected, corrected = product.row(0, named=True), product.row(1, named=True)
    new_tag = next(t for t in others if t != corrected["tag_id"])
    filled = pl.DataFrame(
        [
            {**{k: rejected[k] for k in ("media_id", "facet", "tag_id")}, "verdict": "reject", "new_tag_id": ""},
            {**{k: corrected[k] for k in ("media_id", "facet", "tag_id")}, "verdict": "replace", "new_tag_id": new_tag},
        ]
    )
    filled.write_csv(tmp_path / "verdicts.csv")
    imported = cli("review", "shop", "--import", tmp_path / "verdicts.csv", "--who", "ana")
    assert imported.exit_code == 0 and "2 verdicts recorded (1 reject, 1 replace)" in imported.output, imported.output
    bad = tmp_path / "bad.csv"
    bad.write_text(f"media_id,facet,tag_id,verdict\n{rejected['media_id']},product,{rejected['tag_id']},maybe\n")
    refused = cli("review", "shop", "--import", bad)
    assert refused.exit_code == 1 and "bad.csv:2: verdict 'maybe' is not one of" in refused.output, refused.output
    # the terminal: accept the first item, a wrong key gets the help line, then quit
    typed = cli("review", "shop", "--who", "ben", input="x\na\nq\n")
    assert typed.exit_code == 0 and "a accept · r reject" in typed.output and "1 verdicts recorded" in typed.output

    assert cli("run", "shop").exit_code == 0
    assert cli("export", "shop", tmp_path / "after.csv", "--include-review").exit_code == 0
    after = pl.read_csv(tmp_path / "after.csv")
    by_key = {(r["media_id"], r["facet"], r["tag_id"]): r for r in after.to_dicts()}
    assert (rejected["media_id"], "product", rejected["tag_id"]) not in by_key  # rejected: never proposed again
    fixed = by_key[(corrected["media_id"], "product", new_tag)]
    assert (fixed["status"], fixed["origin"], fixed["set_by"]) == ("manual", "correction", "ana")
    # the terminal's verdict, on whichever comes first in the queue: a photo's tag or a video's stretch
    start, end = first["start_s"] if first["start_s"] is not None else -1, first["end_s"] or 1e9
    where = f"media_id = '{first['media_id']}' AND facet = '{first['facet']}' AND tag_id = '{first['tag_id']}'"
    accepted = cli(
        "sql", "shop", f"SELECT status, origin FROM tags WHERE {where} UNION ALL SELECT status, origin FROM "
        f"video_segments WHERE {where} AND start_s < {end} AND end_s > {start}",
    )  # fmt: skip
    assert accepted.output.count("manual") == 1 and accepted.output.count("review") == 1, accepted.output
    log = pl.read_csv(tmp_path / "home" / "libraries" / "shop" / "verdicts.csv")
    assert log.filter(pl.col("who") == "ben").select("verdict", "media_id", "via").rows() == [
        ("accept", first["media_id"], "terminal")
    ]
    shown = cli("sql", "shop", "SELECT status, origin, count(*) AS n FROM tags WHERE status = 'rejected' GROUP BY ALL")
    assert "rejected" in shown.output and "correction" in shown.output, shown.output
    learnt = cli("sql", "shop", "SELECT source, count(*) AS n FROM examples GROUP BY ALL ORDER BY source")
    assert "correction" in learnt.output, learnt.output
    versions = cli("heads", "shop", "product")  # the product head learnt from the verdicts: a second version
    assert versions.exit_code == 0 and versions.output.count("product-") == 2, versions.output
