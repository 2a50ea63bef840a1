"""Runs cannot trample each other, and a run killed hard changes nothing a rerun does not finish.

Real processes: `tagsmith run` twice at once on one library, and runs killed with SIGKILL at three points
(tests/fault_run.py: while embedding, while writing a table, while upserting into Qdrant), each followed by
a plain rerun. The library's tables afterwards equal an uninterrupted run's, with no duplicate row, and
Dagster shows no run left STARTED.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TAGSMITH = [sys.executable, "-m", "tagsmith.cli"]
# what a run writes that depends on its input only (times of day and run ids left out)
TABLES = {
    "media": ["media_id", "uri", "kind", "width", "height", "status", "error", "size"],
    "examples": ["media_id", "uri", "facet", "tag_id", "split", "group"],
    "heads": ["facet", "version", "strategy", "accuracy", "n_train", "n_holdout", "promoted"],
    "tag_metrics": ["facet", "version", "tag_id", "precision", "recall", "threshold"],
    "tags": ["media_id", "facet", "tag_id", "score", "status", "head_version"],
    "ocr_text": ["media_id", "ts", "text", "confidence", "model"],
    "quarantine": ["uri", "reason", "stage"],
    "vector_index": ["media_id", "model"],
}


def _env(home: Path) -> dict:
    return {
        **os.environ,
        "TAGSMITH_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster_home"),
        "TAGSMITH_RUNNER": "inprocess",
        "PYTHONPATH": str(ROOT),
    }


def _cli(home: Path, *args: str, fault: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "tests" / "fault_run.py"), fault] if fault else TAGSMITH
    return subprocess.run([*command, *args], env=_env(home), capture_output=True, text=True, cwd=ROOT, timeout=600)


def _library(home: Path, demo) -> None:
    """A small library through the CLI, with OCR on (its appends are what a double run duplicated) and the
    slow candidates off: every run stays short."""
    assert _cli(home, "init", "shop", "--media", str(demo.uploads_dir), "--min-accuracy", "0.2").returncode == 0
    assert _cli(home, "catalog", "shop", str(demo.catalog_path)).returncode == 0
    assert _cli(home, "examples", "shop", str(demo.examples_manifest)).returncode == 0
    path = home / "libraries" / "shop" / "library.yaml"
    config = yaml.safe_load(path.read_text("utf-8"))
    config.update(views=False, keypoints=False, ocr="on", finetune={"budget_min": 0})
    path.write_text(yaml.safe_dump(config), "utf-8")


def _tables(home: Path) -> dict[str, pl.DataFrame]:
    from resources.warehouse import Warehouse

    base = home / "warehouse" / "shop"
    warehouse = Warehouse(root=str(home / "warehouse"), duckdb_path=str(home / "tagsmith.duckdb"))
    out = {name: warehouse.read("shop", name).select(cols).sort(cols) for name, cols in TABLES.items()}
    parts = sorted((base / "embeddings").rglob("*.parquet"))
    vectors = pl.concat([pl.read_parquet(p).select("media_id", "model", "vector") for p in parts])
    out["embeddings"] = vectors.unique(["media_id", "model"]).sort("media_id", "model")
    return out


def _points(home: Path) -> int:
    from resources.vector_store import QdrantLocal

    return QdrantLocal(path=str(home / "qdrant")).count("shop")


def _started_runs(home: Path) -> int:
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home / "dagster_home")
    try:
        with DagsterInstance.get() as instance:
            return len(instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED])))
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME")
        else:
            os.environ["DAGSTER_HOME"] = previous


def _assert_same(got: dict[str, pl.DataFrame], want: dict[str, pl.DataFrame]) -> None:
    for name, table in want.items():
        other = got[name]
        assert other.height == table.height, f"{name}: {other.height} rows, want {table.height}"
        if name == "embeddings":
            assert other["media_id"].to_list() == table["media_id"].to_list()
            np.testing.assert_allclose(np.stack(other["vector"].to_numpy()), np.stack(table["vector"].to_numpy()),
                                       atol=1e-5)
        else:
            assert other.equals(table), f"{name} differs"


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, small_demo):
    """Two `tagsmith run` started at once: one runs, the other refuses in one line naming it."""
    home = tmp_path_factory.mktemp("concurrent")
    _library(home, small_demo)
    env = _env(home)
    procs = [
        subprocess.Popen([*TAGSMITH, "run", "shop"], env=env, cwd=ROOT, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    return home, results


def test_two_runs_at_once_one_waits_out_and_nothing_is_duplicated(baseline):
    home, results = baseline
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    refused = next(err for code, _, err in results if code == 1)
    assert "is being written by run" in refused and "Traceback" not in refused
    assert len(refused.strip().splitlines()) == 1, refused
    tables = _tables(home)
    assert tables["ocr_text"].height > 0  # OCR read the photos once; the refused run added nothing
    for name in ("tags", "ocr_text", "media", "embeddings"):
        keys = {"tags": ["media_id", "facet"], "ocr_text": ["media_id", "ts", "text", "confidence"],
                "media": ["uri"], "embeddings": ["media_id", "model"]}[name]
        assert tables[name].select(keys).is_duplicated().sum() == 0, name
    assert _started_runs(home) == 0


@pytest.mark.parametrize("point", ["embedding", "table", "qdrant"])
def test_a_run_killed_hard_is_finished_by_the_next(baseline, small_demo, tmp_path, point):
    want = _tables(baseline[0])
    home = tmp_path / "home"
    _library(home, small_demo)
    killed = _cli(home, "run", "shop", fault=point)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert _started_runs(home) == 1  # what a SIGKILL leaves behind in Dagster
    rerun = _cli(home, "run", "shop")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "had died without finishing" in rerun.stderr and "marked failed" in rerun.stderr
    assert _started_runs(home) == 0
    _assert_same(_tables(home), want)
    assert _points(home) == _points(baseline[0]) == want["vector_index"].height
    assert not list((home / "warehouse" / "shop").glob("*.tmp-*"))  # no half-written file left
