"""`tagsmith sql` is a sandbox (resources/sql_sandbox.py): one library's views, read-only, no file, network or
extension access, one SELECT, a row limit and a time-out. Every probe fails with one line through the CLI."""

import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from ml.catalog import load_catalog
from resources import build_resources
from resources.libraries import LibraryConfig
from resources.sql_sandbox import SandboxError, check_statement, run_sandboxed
from resources.tables import frame
from tagsmith.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_catalog(tmp_path: Path) -> Path:
    yaml_text = next(b for b in re.findall(r"```yaml\n(.*?)```", README.read_text("utf-8"), flags=re.S)
                     if "tag_id: aurora-shell" in b)
    path = tmp_path / "readme_catalog.yaml"
    path.write_text(yaml_text, "utf-8")
    return path


def _write_library(res, name: str, photos: int, catalog: Path) -> None:
    """A library as a run leaves it: the README's catalog; every photo an Aurora Shell in Storm Blue, a packshot."""
    res["libraries"].create(LibraryConfig(name=name, media=f"/data/{name}"))
    res["libraries"].set_catalog(name, catalog)
    wh = res["warehouse"]
    ids = [f"{name}-{i}" for i in range(photos)]
    wh.write(name, "catalog", frame("catalog", [t.as_row() for t in load_catalog(catalog).tags]))
    wh.write(name, "media", frame("media", {"media_id": ids, "uri": [f"/data/{name}/{i}.jpg" for i in ids],
                                          "kind": ["image"] * photos, "status": ["ok"] * photos}))
    facets = {"product": "aurora-shell", "colorway": "storm-blue", "shot_type": "packshot"}
    rows = [(i, facet, tag) for i in ids for facet, tag in facets.items()]
    wh.write(name, "tags", pl.DataFrame(rows, schema=["media_id", "facet", "tag_id"], orient="row").with_columns(
        score=pl.lit(0.9), status=pl.lit("applied"), head_version=pl.lit("v1")).pipe(lambda t: frame("tags", t)))
    wh.register_views(name)  # the shared DuckDB file holds both libraries' schemas, as after a run


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TAGSMITH_HOME", str(tmp_path / "home"))
    res = build_resources({"TAGSMITH_HOME": str(tmp_path / "home")})
    catalog = _readme_catalog(tmp_path)
    _write_library(res, "shoes", photos=3, catalog=catalog)
    _write_library(res, "other", photos=5, catalog=catalog)
    return res


def _sql(*args):
    return CliRunner().invoke(app, ["sql", *map(str, args)], catch_exceptions=False)


def _refused(statement: str, *options) -> str:
    result = _sql("shoes", statement, *options)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1, (statement, result.output)
    assert len(lines) == 1 and "Traceback" not in result.output, (statement, result.output)
    return lines[0]


def test_probes_are_refused_with_one_line(home, tmp_path):
    wh = home["warehouse"]
    shoes_tags, other_tags = wh.table_path("shoes", "tags"), wh.table_path("other", "tags")
    before = shoes_tags.read_bytes()
    out = tmp_path / "out.csv"
    probes = {
        "SELECT * FROM read_csv_auto('/etc/passwd')": "refused",
        "SELECT * FROM read_text('/etc/shadow')": "refused",
        "SELECT * FROM read_blob('/etc/hostname')": "refused",
        "SELECT * FROM glob('/etc/*')": "refused",
        f"SELECT * FROM read_parquet('{other_tags}')": "refused",
        f"SELECT * FROM read_parquet('{wh.library_dir('shoes')}/../other/tags.parquet')": "refused",
        f"SELECT * FROM parquet_metadata('{other_tags}')": "refused",
        "SELECT * FROM read_parquet('https://example.com/tags.parquet')": "refused",
        "SELECT * FROM other.tags": "schema \"other\" does not exist",
        f"COPY (SELECT 'forged' AS media_id) TO '{shoes_tags}' (FORMAT parquet)": "COPY refused",
        f"COPY (SELECT 1 AS x) TO '{out}'": "COPY refused",
        f"EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{out}'": "EXPLAIN refused",
        f"ATTACH '{wh.duckdb_path}' AS o": "ATTACH refused",
        "SET enable_external_access = true": "SET refused",
        "SET lock_configuration = false": "SET refused",
        "INSTALL httpfs": "LOAD refused",
        "LOAD httpfs": "LOAD refused",
        "SELECT 1; DROP VIEW tags": "one statement at a time: got 2 (SELECT, DROP)",
        "DROP VIEW tags": "DROP refused",
        "CREATE TABLE t AS SELECT 1": "CREATE refused",
        "PRAGMA version": "PRAGMA refused",
        "CALL pragma_version()": "CALL refused",
        f"EXPORT DATABASE '{tmp_path / 'dump'}'": "EXPORT refused",
        "USE other": "SET refused",
        "": "no SQL statement given",
        "SELEKT 1": "does not parse",
    }
    for statement, reason in probes.items():
        assert reason in _refused(statement), statement
    assert shoes_tags.read_bytes() == before and not out.exists() and not (tmp_path / "dump").exists()
    assert "has: catalog, coverage" in _refused("SELECT * FROM other.tags")  # says what there is instead


def test_analysts_queries_and_the_readme_example_run(home):
    coverage = _sql("shoes", "SELECT * FROM coverage")
    assert coverage.exit_code == 0 and "aurora-shell" in coverage.output
    joined = _sql("shoes", "SELECT m.uri, c.name, t.score FROM tags t JOIN catalog c USING (facet, tag_id) "
                           "JOIN media m USING (media_id) ORDER BY m.uri")
    assert joined.exit_code == 0 and joined.output.count("Aurora Shell") == 3 and "other-" not in joined.output
    star = _sql("shoes", "SELECT tags.media_id, media.* FROM tags JOIN media ON tags.media_id = media.media_id")
    assert star.exit_code == 0 and "media_id_2" in star.output
    _run_readme_lines("sql", expect="Aurora Shell")
    # only this library's views exist, and the lock was on before the query ran
    tables = run_sandboxed(home["warehouse"], "shoes", "SELECT DISTINCT table_schema FROM information_schema.tables")
    assert tables.table["table_schema"].to_list() == ["main"]
    settings = run_sandboxed(home["warehouse"], "shoes", "SELECT name, value FROM duckdb_settings() WHERE name IN "
                             "('enable_external_access', 'lock_configuration', 'temp_directory')")
    assert dict(settings.table.iter_rows()) == {"enable_external_access": "false", "lock_configuration": "true",
                                                "temp_directory": ""}


def _run_readme_lines(verb: str, expect: str) -> None:
    lines = re.findall(rf"^tagsmith {verb} .*$", README.read_text("utf-8"), flags=re.M)
    assert lines
    for line in lines:
        args = shlex.split(line.split("  #")[0])[1:]
        result = CliRunner().invoke(app, args, catch_exceptions=False)
        assert result.exit_code == 0, (line, result.output)
        assert expect in result.output, (line, result.output)


def test_the_readme_search_lines_run_literally(home):
    """Names, an identifier typed with its hyphen, an alias in German: each finds the library's photos."""
    _run_readme_lines("search", expect="shoes-0.jpg")


def test_row_limit_time_out_and_unknown_library(home):
    limited = _sql("shoes", "SELECT range AS n FROM range(1000) ORDER BY n DESC", "--limit", "3")
    assert limited.exit_code == 0 and "999" in limited.output and "997" in limited.output
    assert "996" not in limited.output and "(first 3 rows; --limit to see more)" in limited.output
    slow = "SELECT max(a.range * b.range) FROM range(1000000) a, range(1000000) b"
    assert _refused(slow, "--timeout", "0.5") == "stopped after the time-out of 0.5 s"
    assert "no library named 'nope'" in CliRunner().invoke(app, ["sql", "nope", "SELECT 1"]).output
    home["libraries"].create(LibraryConfig(name="fresh", media="/data/fresh"))
    never_ran = CliRunner().invoke(app, ["sql", "fresh", "SELECT 1"])
    assert never_ran.exit_code == 1
    assert "library 'fresh' has not run yet: `tagsmith run fresh` first" in never_ran.output


def test_a_writer_holding_the_duckdb_file_does_not_stop_sql(home):
    """The sandbox never opens the shared DuckDB file, so a run writing it (holding its lock) is no obstacle."""
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys, time
            con = duckdb.connect({str(home['warehouse'].duckdb_path)!r})
            con.execute("CREATE OR REPLACE TABLE lock_probe AS SELECT 1")
            print("holding", flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        result = _sql("shoes", "SELECT count(DISTINCT media_id) AS photos FROM tags")
        assert result.exit_code == 0 and "│ 3 " in result.output, result.output
    finally:
        holder.kill()
        holder.wait()


def test_only_one_select_passes_the_statement_check():
    assert check_statement("WITH a AS (SELECT 1) SELECT * FROM a") == "WITH a AS (SELECT 1) SELECT * FROM a"
    for ok in ("FROM tags", "DESCRIBE tags", "SHOW TABLES", "SUMMARIZE tags", "VALUES (1)", "SELECT 1;"):
        check_statement(ok)
    for bad in ("INSERT INTO tags VALUES (1)", "UPDATE tags SET score = 1", "DELETE FROM tags", "CHECKPOINT",
                "DETACH memory", "BEGIN", "VACUUM", "CREATE MACRO m() AS 1", "SET VARIABLE x = 1"):
        with pytest.raises(SandboxError):
            check_statement(bad)
