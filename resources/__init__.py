"""Resources, chosen for an environment in one function (`build_resources`), never at import time.

Embedded default (a laptop, CI): everything under TAGSMITH_HOME (default: ./var in the project) - media in
local folders, Parquet + a DuckDB file, Qdrant local mode, local Ray. At scale, by configuration only:
  TAGSMITH_MEDIA_BACKEND=s3 (+ TAGSMITH_S3_ENDPOINT_URL for S3-compatible stores), TAGSMITH_QDRANT_URL,
  TAGSMITH_RAY_ADDRESS (a Ray cluster), TAGSMITH_RUNNER=inprocess (no Ray, for debugging).
Ray per task: TAGSMITH_RAY_TASK_CPUS / TAGSMITH_RAY_TASK_GPUS; TAGSMITH_RAY_RUNTIME_ENV (JSON, Ray's format).

Secrets never sit in a resource's config: TAGSMITH_QDRANT_API_KEY goes in as `dagster.EnvVar`, resolved when
the run starts. S3 credentials are not config at all: boto3's default chain (AWS_* variables, profiles,
instance roles) finds them.

The resource classes are imported inside the functions that build them, not at the top: a Ray worker that
unpickles a `resources.s3_media.StoreReader` (every media-reading task) imports this package, and should not
pay for Dagster, Qdrant and the rest (about 1.5 s and 80 MB a worker) to read a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from resources.libraries import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def tagsmith_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("TAGSMITH_HOME") or PROJECT_ROOT / "var").resolve()


def build_resources(env: Mapping[str, str] | None = None) -> dict:
    from dagster import EnvVar

    from resources.libraries import LibraryStore
    from resources.media_store import LocalMediaStore, S3MediaStore
    from resources.model_store import ModelStore
    from resources.ray_runner import InProcessRunner, RayRunner
    from resources.table_io import TableIOManager
    from resources.vector_store import QdrantLocal, QdrantServer
    from resources.warehouse import Warehouse

    env = os.environ if env is None else env
    home = tagsmith_home(env)
    if env.get("TAGSMITH_MEDIA_BACKEND", "local") == "s3":
        media_store = S3MediaStore(endpoint_url=env.get("TAGSMITH_S3_ENDPOINT_URL") or None)
    else:
        media_store = LocalMediaStore(root=str(home / "media"))
    if env.get("TAGSMITH_QDRANT_URL"):
        api_key = EnvVar("TAGSMITH_QDRANT_API_KEY") if env.get("TAGSMITH_QDRANT_API_KEY") else None
        vector_store = QdrantServer(url=env["TAGSMITH_QDRANT_URL"], api_key=api_key)
    else:
        vector_store = QdrantLocal(path=str(home / "qdrant"))
    show_progress = env.get("TAGSMITH_PROGRESS") == "1"  # the CLI sets it when stderr is a terminal
    if env.get("TAGSMITH_RUNNER") == "inprocess":
        runner = InProcessRunner(show_progress=show_progress)
    else:
        num_cpus = _number(env, "TAGSMITH_RAY_NUM_CPUS")
        runner = RayRunner(
            address=env.get("TAGSMITH_RAY_ADDRESS") or None,
            num_cpus=int(num_cpus) if num_cpus is not None else None,
            cpus_per_task=_number(env, "TAGSMITH_RAY_TASK_CPUS") or 1.0,
            gpus_per_task=_number(env, "TAGSMITH_RAY_TASK_GPUS") or 0.0,
            runtime_env=_runtime_env(env),
            show_progress=show_progress,
        )
    warehouse = Warehouse(root=str(home / "warehouse"), duckdb_path=str(home / "tagsmith.duckdb"))
    return {
        "libraries": LibraryStore(root=str(home / "libraries")),
        "media_store": media_store,
        "warehouse": warehouse,
        "tables": TableIOManager(warehouse=warehouse),
        "vector_store": vector_store,
        "runner": runner,
        "model_store": ModelStore(root=str(home / "models")),
    }


def _number(env: Mapping[str, str], name: str) -> float | None:
    value = env.get(name)
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise _env_error(f"{name} must be a number, not {value!r}") from None
    if number < 0:
        raise _env_error(f"{name} must not be negative, not {value!r}")
    return number


def _runtime_env(env: Mapping[str, str]) -> dict | None:
    """TAGSMITH_RAY_RUNTIME_ENV: a JSON object in Ray's runtime_env format, e.g. {"env_vars": {...}}."""
    value = env.get("TAGSMITH_RAY_RUNTIME_ENV")
    if not value:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise _env_error(f"TAGSMITH_RAY_RUNTIME_ENV is not JSON ({exc.msg}): {value!r}") from None
    if not isinstance(parsed, dict):
        raise _env_error(f"TAGSMITH_RAY_RUNTIME_ENV must be a JSON object, not {value!r}")
    return parsed


def _env_error(problem: str) -> ConfigError:
    """A bad environment variable is the user's mistake: the CLI says it in one line."""
    from resources.libraries import ConfigError

    return ConfigError("environment", [problem])
