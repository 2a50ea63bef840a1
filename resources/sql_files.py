"""SQL lives in sql/*.sql and is loaded by name; user input only ever reaches it as bound parameters."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"


@cache
def load_sql(name: str) -> str:
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError(f"bad query name {name!r}")
    path = SQL_DIR / f"{name}.sql"
    if not path.exists():
        raise FileNotFoundError(f"no query named {name!r} in {SQL_DIR}")
    return path.read_text(encoding="utf-8")


def list_queries() -> list[str]:
    return sorted(p.stem for p in SQL_DIR.glob("*.sql"))
