"""What the SQL sandbox costs per call against the path it replaced, on a generated library.

The old `tagsmith sql` opened the shared DuckDB file read-only and set the library's schema; the sandbox
(resources/sql_sandbox.py) builds a fresh in-memory connection with the library's views, allowed paths and
locked settings on every call. Both run the same queries on the same Parquet tables: a library of `--photos`
photos with three tags each and embeddings in `--parts` part files (one per Ray task in the pipeline).

    .venv/bin/python -m benchmarks.sql_sandbox                 # ~20 s
    .venv/bin/python -m benchmarks.sql_sandbox --photos 100000 --parts 800
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from ml.catalog import CatalogTag
from resources.sql_sandbox import run_sandboxed
from resources.warehouse import Warehouse

OUT = Path(__file__).resolve().parent / "out"
QUERIES = {
    "coverage": "SELECT * FROM coverage",
    "join": "SELECT c.name, count(*) AS n FROM tags t JOIN catalog c USING (facet, tag_id) "
    "JOIN media m USING (media_id) GROUP BY c.name ORDER BY n DESC",
    "tiny": "SELECT 1 AS one",
}


def build_library(wh: Warehouse, photos: int, parts: int, tags: int = 30, dim: int = 1280) -> None:
    rng = np.random.default_rng(0)
    catalog = [CatalogTag(f"tag-{i}", ("product", "colorway", "shot_type")[i % 3], f"Tag {i}").as_row()
               for i in range(tags)]
    wh.write("bench", "catalog", pl.DataFrame(catalog))
    ids = [f"{i:064x}" for i in range(photos)]
    wh.write("bench", "media", pl.DataFrame({"media_id": ids, "uri": [f"/data/{i}.jpg" for i in range(photos)],
                                             "kind": "image", "status": "ok"}))
    facet_tags = {f: [t["tag_id"] for t in catalog if t["facet"] == f] for f in ("product", "colorway", "shot_type")}
    frames = []
    for facet, choices in facet_tags.items():
        frames.append(pl.DataFrame({"media_id": ids, "facet": facet,
                                    "tag_id": rng.choice(choices, photos), "score": rng.random(photos),
                                    "status": "applied", "head_version": "v1"}))
    wh.write("bench", "tags", pl.concat(frames))
    folder = wh.embeddings_dir("bench", "bench@1")
    folder.mkdir(parents=True, exist_ok=True)
    for k, chunk in enumerate(np.array_split(np.arange(photos), parts)):
        vectors = rng.standard_normal((len(chunk), dim), dtype=np.float32)
        pl.DataFrame({"media_id": [ids[i] for i in chunk], "ts": [None] * len(chunk), "model": "bench@1",
                      "vector": list(vectors)}).write_parquet(folder / f"part-{k:05d}.parquet")
    wh.register_views("bench")


def old_path(wh: Warehouse, statement: str) -> pl.DataFrame:
    """`service.run_sql` before the sandbox: the shared file, read-only, the library's schema current."""
    with wh.connect(read_only=True) as con:
        con.execute('SET schema = "bench"')
        return pl.from_arrow(con.sql(statement).to_arrow_table())


def timed(fn, repeats: int) -> float:
    fn()  # warm: imports, the OS file cache
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=10_000)
    parser.add_argument("--parts", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(root=f"{tmp}/warehouse", duckdb_path=f"{tmp}/t.duckdb")
        build_library(wh, args.photos, args.parts)
        rows = []
        for name, statement in QUERIES.items():
            old = timed(lambda s=statement: old_path(wh, s), args.repeats)
            new = timed(lambda s=statement: run_sandboxed(wh, "bench", s), args.repeats)
            rows.append({"query": name, "old_ms": round(old, 1), "sandbox_ms": round(new, 1),
                         "overhead_ms": round(new - old, 1)})
    table = pl.DataFrame(rows)
    print(f"{args.photos} photos, embeddings in {args.parts} part files; median of {args.repeats} calls")
    print(table)
    OUT.mkdir(exist_ok=True)
    (OUT / "sql_sandbox.json").write_text(json.dumps({**vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
