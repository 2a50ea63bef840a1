"""Every command of the README's "Using it on your own photos" block, run literally, in order, in a shell.

The user's files are a generated demo library laid out where the README's commands look for them: the
catalog (it holds the README's tags: Aurora Shell, Storm Blue, Packshot), `examples.csv` and
`./examples_by_tag/` in the working folder, a new shoot in `~/Downloads/new_shoot/` (HOME is the test's),
`~/query.jpg`. Only fine-tuning is switched off in the library's library.yaml between `init` and `run` (its
budget is minutes of wall clock), so that the block runs in a few minutes on 2 cores.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from tagsmith.demo import generate_demo_library

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def readme_commands() -> list[str]:
    """The commands of the README's usage block: one per line, comments and blank lines left out."""
    text = README.read_text("utf-8")
    section = text[text.index("## Using it on your own photos") :]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    lines = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [re.sub(r"\s+#\s.*$", "", line).strip() for line in lines]


@pytest.fixture(scope="module")
def user(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("readme")
    demo = generate_demo_library(base / "demo", seed=3, examples_per_product=6, uploads_per_product=1,
                                 image_size=160, videos=0)
    home, work = base / "home", base / "work"
    work.mkdir()
    shutil.copy(demo.catalog_path, work / "catalog.yaml")
    shutil.copytree(demo.root / "examples", work / "examples")
    shutil.copy(demo.examples_manifest, work / "examples.csv")  # its paths are relative to the CSV
    by_tag = work / "examples_by_tag" / "aurora-shell"
    by_tag.mkdir(parents=True)
    manifest = pl.read_csv(demo.examples_manifest)
    for path in manifest.filter(pl.col("tag_id") == "aurora-shell")["path"].to_list()[:3]:
        shutil.copy(demo.root / path, by_tag / Path(path).name)
    shutil.copytree(demo.uploads_dir, home / "Downloads" / "new_shoot")
    first_upload = sorted((demo.uploads_dir).glob("IMG_*.jpg"))[0]
    shutil.copy(first_upload, home / "query.jpg")
    env = {
        **os.environ,
        "HOME": str(home),
        "TAGSMITH_HOME": str(base / "tagsmith_home"),
        "DAGSTER_HOME": str(base / "tagsmith_home" / "dagster_home"),
        "TAGSMITH_RUNNER": "inprocess",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    return {"home": home, "work": work, "env": env, "library_yaml": base / "tagsmith_home" / "libraries" / "shoes"}


def test_the_readme_block_has_the_commands_this_test_expects():
    verbs = [c.split()[1] for c in readme_commands()]
    assert verbs[:4] == ["init", "catalog", "examples", "examples"]
    assert {"ingest", "run", "search", "similar", "segments", "sql", "export"} <= set(verbs)


def test_every_readme_command_runs_as_written(user):
    outputs = {}
    for command in readme_commands():
        if command.startswith("tagsmith run "):
            _quick(user["library_yaml"] / "library.yaml")
        # the terminal review reads its answers from stdin: skip one item, then quit (other verbs read none)
        done = subprocess.run(["bash", "-c", command], cwd=user["work"], env=user["env"], capture_output=True,
                              text=True, timeout=900, input="s\nq\n")
        assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr, f"{command}\n{done.stderr[-3000:]}"
        outputs[command] = done.stdout
    # an alias of Storm Blue in German, review tags included: the uploads in that colourway
    search = next(out for cmd, out in outputs.items() if cmd.startswith('tagsmith search shoes "sturmblau"'))
    assert "IMG_" in search
    ingested = user["home"] / "photos" / "shoes" / "new_shoot"
    assert sorted(p.name for p in ingested.glob("IMG_*.jpg"))  # the shoot kept its folder name
    queue = pl.read_csv(user["work"] / "queue.csv")  # the review queue, most useful first, verdicts to fill in
    assert queue.height > 0 and {"uri", "facet", "tag_id", "candidates", "verdict", "new_tag_id"} <= set(queue.columns)
    exported = pl.read_parquet(user["work"] / "tags.parquet")
    assert exported.height > 0 and {"facet", "tag_id", "uri"} <= set(exported.columns)


def _quick(path: Path) -> None:
    config = yaml.safe_load(path.read_text("utf-8"))
    if config["finetune"]["budget_min"]:
        config["finetune"]["budget_min"] = 0
        path.write_text(yaml.safe_dump(config, sort_keys=False), "utf-8")
