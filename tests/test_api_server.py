"""The HTTP API over a real socket: `tagsmith serve` started as a subprocess on 127.0.0.1, and the README's "HTTP
API" block run with curl against it (literally, but for the library's name and the port, which the test picks
free). Also: the CLI, the SQL views and Qdrant answer each library from its own data only."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import polars as pl
import pytest
from typer.testing import CliRunner

from tagsmith import service
from tagsmith.cli import app
from tests.api_helpers import auth, create_token, media_ids, tagged_photo

ROOT = Path(__file__).resolve().parents[1]


def readme_api_block() -> list[str]:
    text = (ROOT / "README.md").read_text("utf-8")
    section = text[text.index("## HTTP API") :]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    lines = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [re.sub(r"\s+#\s.*$", "", line).strip() for line in lines]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(api_home, tmp_path_factory):
    """The README's `tagsmith serve` line as a subprocess; yields (base url, its log file)."""
    port = _free_port()
    serve = next(line for line in readme_api_block() if line.startswith("tagsmith serve"))
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    with open(log, "w") as out:
        process = subprocess.Popen(["bash", "-c", "exec " + serve.replace("8000", str(port))], env=env,
                                   stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.3)
        assert process.poll() is None, log.read_text()
    yield base, log, port
    process.terminate()
    process.wait(timeout=30)


def test_the_readme_block_runs_with_curl_against_the_server(server, small_demo, tmp_path):
    base, log, port = server
    photo = next(p for p in sorted(small_demo.uploads_dir.glob("IMG_0*.jpg")))
    (tmp_path / "photo.jpg").write_bytes(photo.read_bytes())
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    outputs = {}
    for line in readme_api_block():
        if line.startswith("tagsmith serve"):
            continue  # running: the fixture
        command = line.replace("shoes", "alpha").replace("8000", str(port))
        done = subprocess.run(["bash", "-c", f"set -euo pipefail\n{command}"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        outputs[line] = done.stdout
        env["TOKEN"] = (tmp_path / "alpha.token").read_text().strip() if (tmp_path / "alpha.token").exists() else ""
    answers = {line.split("/v1/")[1].split("?")[0].split()[0].strip("\"'"): out for line, out in outputs.items()
               if "/v1/" in line and not line.endswith("tags.csv")}  # fmt: skip
    assert {h["media_id"] for h in json.loads(answers["search"])["hits"]} <= media_ids("alpha")
    tagged = json.loads(answers["tag"])
    assert {t["facet"] for t in tagged["tags"]} == {"product", "colorway", "shot_type"}
    job = json.loads(answers["jobs"])
    assert job["status"] == "queued"
    coverage = json.loads(answers["sql"])
    assert coverage["columns"][:2] == ["facet", "name"] and coverage["rows"]
    exported = pl.read_csv(tmp_path / "tags.csv")  # applied tags only: this small library has few or none
    assert {"media_id", "uri", "facet", "tag_id"} <= set(exported.columns)
    assert set(exported["media_id"]) <= media_ids("alpha")
    token = env["TOKEN"]
    with httpx.Client(base_url=base, headers=auth(token), timeout=60) as client:
        assert client.get("/openapi.json").json()["info"]["title"] == "tagsmith"
        assert httpx.get(f"{base}/v1/models").status_code == 401
        found = client.get("/v1/search", params={"q": "lifestyle", "include_review": True, "limit": 5}).json()
        assert len(found["hits"]) == 5 and found["next_offset"] == 5
        page = client.get("/v1/search", params={"q": "lifestyle", "include_review": True, "limit": 5, "offset": 5})
        assert {h["media_id"] for h in found["hits"]}.isdisjoint(h["media_id"] for h in page.json()["hits"])
        deadline = time.monotonic() + 240
        while (status := client.get(f"/v1/jobs/{job['job_id']}").json())["status"] not in ("success", "failure"):
            assert time.monotonic() < deadline, status
            time.sleep(1)
        assert status["status"] == "success", status
        assert status["media"][0]["media_id"] in media_ids("alpha")
        beta = create_token("beta")
        assert httpx.get(f"{base}/v1/jobs/{job['job_id']}", headers=auth(beta)).status_code == 404
    served = log.read_text()
    assert "POST /v1/tag 200" in served and "library=alpha" in served
    assert token not in served and token.split("_", 2)[2] not in served and "Bearer" not in served


def _vector_of(library: str, media_id: str):
    from resources.backbone_plan import BackbonePlan

    res = service.resources()
    plan = BackbonePlan(res["libraries"].config(library), res["model_store"], res["warehouse"], library)
    _, vectors = res["warehouse"].read_embeddings(library, plan.library_model_id(), [media_id])
    return vectors[0]


def test_cli_sql_views_and_qdrant_never_cross_libraries(api_home):
    import duckdb

    runner, res = CliRunner(), service.resources()
    roots = {name: res["libraries"].config(name).media for name in ("alpha", "beta")}
    for library, other in (("alpha", "beta"), ("beta", "alpha")):
        listed = runner.invoke(app, ["sql", library, "SELECT DISTINCT uri FROM media", "--limit", "500"]).output
        assert roots[library] in listed and roots[other] not in listed
        exported = api_home / f"{library}.csv"
        assert runner.invoke(app, ["export", library, str(exported), "--include-review"]).exit_code == 0
        rows = pl.read_csv(exported)
        assert rows.height and set(rows["media_id"]) <= media_ids(library)
        # the shared DuckDB file: the library's schema reads its own Parquet only
        with duckdb.connect(res["warehouse"].duckdb_path, read_only=True) as con:
            shared = {r[0] for r in con.execute(f'SELECT DISTINCT media_id FROM "{library}".tags').fetchall()}
        assert shared == media_ids(library)
        # Qdrant: the library's collection, asked with the other library's photo, answers with its own photos
        photo, _ = tagged_photo(other)
        hits = res["vector_store"].search(library, _vector_of(other, photo), limit=100)
        assert hits and {h["media_id"] for h in hits} <= media_ids(library)
