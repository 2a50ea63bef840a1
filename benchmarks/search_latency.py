"""Warm latency of `service.search` (what the HTTP API's search endpoint calls) on a library of 1,000,000 tags.

A generated library: `--photos` photos x 5 facets = one `tags` row each (200,000 x 5 = 1,000,000 by default), a
catalog of `--tags` tags (about 1,000) with names in French, German and Japanese for a third of them, aliases and
identifiers, all written through `Warehouse.write` and the shared views as a run writes them. Then a mix of
queries, each called once to warm up and then `--repeats` times: one word, two words, an identifier, a French
name with `lang="fr"`, a facet filter, page 3. Printed: p50 / p95 per query and over the mix, for the warm path
(one connection per library, a cursor per call: resources/library_readers.py) and for the path it replaced (a
fresh in-memory connection and its views per call), and the warm path from `--threads` threads at once.

    .venv/bin/python -m benchmarks.search_latency                  # ~2 min on 2 cores
    .venv/bin/python -m benchmarks.search_latency --photos 20000 --repeats 10   # a quick look
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import polars as pl

from ml.catalog import CatalogTag
from resources import build_resources
from resources.libraries import LibraryConfig
from resources.sql_files import load_sql
from resources.tables import frame
from resources.warehouse import Warehouse
from tagsmith import service

OUT = Path(__file__).resolve().parent / "out"
LIBRARY = "bench"
FACETS = {"product": 600, "colorway": 200, "season": 50, "shot_type": 50, "campaign": 100}  # tags per facet
# product names are a line and a kind ("Aurora Shell"): a word names a line's 15 products or a kind's 40, as in a
# real range; a third of the products and every colourway have names in French, German and Japanese
LINES = [
    "aurora",
    "glacier",
    "storm",
    "hydra",
    "volt",
    "sakura",
    "ember",
    "summit",
    "delta",
    "nova",
    "terra",
    "lumen",
    "boreal",
    "cascade",
    "drift",
    "fjord",
    "granite",
    "harbor",
    "ion",
    "juniper",
    "kestrel",
    "lagoon",
    "mistral",
    "nimbus",
    "onyx",
    "pioneer",
    "quartz",
    "ridge",
    "sierra",
    "tundra",
    "umbra",
    "vertex",
    "willow",
    "xenon",
    "yukon",
    "zephyr",
    "alder",
    "birch",
    "cedar",
    "dune",
]
KINDS = {
    "shell": "veste",
    "parka": "parka",
    "vest": "gilet",
    "boot": "botte",
    "tee": "t-shirt",
    "hoodie": "sweat",
    "pant": "pantalon",
    "short": "short",
    "cap": "casquette",
    "glove": "gant",
    "sock": "chaussette",
    "pack": "sac",
    "bottle": "gourde",
    "tent": "tente",
    "mat": "tapis",
}
FRENCH_LINES = {"aurora": "aurore", "storm": "orage", "summit": "sommet", "ember": "braise", "glacier": "glacier"}
COLORS = ["blue", "red", "green", "black", "white", "grey", "sand", "olive", "navy", "coral"]
TONES = [
    "storm",
    "deep",
    "pale",
    "night",
    "forest",
    "desert",
    "ocean",
    "stone",
    "ash",
    "sun",
    "moss",
    "ice",
    "dusk",
    "clay",
    "fog",
    "iron",
    "rose",
    "slate",
    "smoke",
    "tide",
]
QUERIES = {  # name: (text, keyword arguments)
    "one word": ("aurora", {}),
    "two words": ("aurora shell", {}),
    "identifier": ("SKU-10042", {}),
    "French name, lang=fr": ("veste aurore", {"lang": "fr"}),
    "facet filter": ("storm", {"facets": ["colorway"]}),
    "page 3": ("shell", {"offset": 40}),
}


def catalog_tags() -> list[CatalogTag]:
    """About 1,000 tags over FACETS with names, aliases, identifiers and names in other languages."""
    tags = []
    for i in range(FACETS["product"]):
        line, kind = LINES[i % len(LINES)], list(KINDS)[i // len(LINES) % len(KINDS)]
        names = {}
        if i % 3 == 0:
            names = {
                "fr": f"{KINDS[kind].title()} {FRENCH_LINES.get(line, line).title()}",
                "de": f"{line.title()} {kind.title()} (de)",
                "ja": f"{line}の{kind}",
            }
        tags.append(
            CatalogTag(
                f"{line}-{kind}-{i}",
                "product",
                f"{line.title()} {kind.title()}",
                (f"{line}{kind}",),
                (f"SKU-{10000 + i}", f"{line[:2].upper()}-{i}"),
                names=names,
            )
        )
    for i in range(FACETS["colorway"]):
        color, tone = COLORS[i % len(COLORS)], TONES[i // len(COLORS) % len(TONES)]
        names = {"fr": f"{color} {tone} (fr)", "de": f"{tone}{color}", "ja": f"{tone}{color}色"}
        name = f"{tone.title()} {color.title()}"
        tags.append(CatalogTag(f"{tone}-{color}", "colorway", name, names=names))
    for facet in ("season", "shot_type", "campaign"):
        label = facet.replace("_", " ").title()
        tags += [CatalogTag(f"{facet}-{i}", facet, f"{label} {i}") for i in range(FACETS[facet])]
    return tags


def build_library(env: dict, photos: int) -> Warehouse:
    res = build_resources(env)
    media_root = Path(env["TAGSMITH_HOME"]) / "photos"
    media_root.mkdir(parents=True)
    res["libraries"].create(LibraryConfig(name=LIBRARY, media=str(media_root)))
    warehouse: Warehouse = res["warehouse"]
    tags = catalog_tags()
    warehouse.write(LIBRARY, "catalog", frame("catalog", [t.as_row() for t in tags]))
    ids = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(photos)]  # as media_id is: random hex
    warehouse.write(
        LIBRARY,
        "media",
        frame(
            "media",
            {
                "media_id": ids,
                "uri": [f"/data/shoot-{i // 500:04d}/IMG_{i:06d}.jpg" for i in range(photos)],
                "kind": ["image"] * photos,
                "status": ["ok"] * photos,
            },
        ),
    )
    rng = np.random.default_rng(0)
    by_facet = {f: [t.tag_id for t in tags if t.facet == f] for f in FACETS}
    parts = []
    for facet, choices in by_facet.items():
        scores = rng.random(photos)
        parts.append(
            pl.DataFrame(
                {
                    "media_id": ids,
                    "facet": facet,
                    "tag_id": rng.choice(choices, photos),
                    "score": scores.round(3),
                    "status": np.where(scores > 0.3, "applied", "review"),
                    "head_version": "v1",
                }
            )
        )
    warehouse.write(LIBRARY, "tags", frame("tags", pl.concat(parts)))
    warehouse.register_views(LIBRARY)
    return warehouse


@contextmanager
def per_call_connections():
    """`Warehouse.query` as it was: a fresh in-memory connection with the library's views for every call."""
    warm = Warehouse.query

    def query(self, library, name, params=None):
        with self.reader(library) as con:
            return pl.from_arrow(con.sql(load_sql(name), params=params or {}).to_arrow_table())

    Warehouse.query = query
    try:
        yield
    finally:
        Warehouse.query = warm


def timings(repeats: int) -> dict[str, list[tuple[float, float]]]:
    """(wall ms, CPU ms) per call of each query, after one call to warm it. CPU time counts every thread of the
    process (DuckDB's too): on a busy machine it is the figure that does not move with the neighbours' load."""
    out = {}
    for name, (text, kwargs) in QUERIES.items():
        service.search(LIBRARY, text, **kwargs)
        times = []
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            service.search(LIBRARY, text, **kwargs)
            times.append(((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000))
        out[name] = times
    return out


def threaded(threads: int, repeats: int) -> list[float]:
    """ms per call with `threads` threads each running the mix `repeats` times at once."""
    times: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(repeats):
            for text, kwargs in QUERIES.values():
                start = time.perf_counter()
                service.search(LIBRARY, text, **kwargs)
                with lock:
                    times.append((time.perf_counter() - start) * 1000)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return times


def pct(times: list[float], q: float) -> float:
    return round(float(np.percentile(times, q)), 1)


def figures(path: str, query: str, times: list[tuple[float, float]]) -> dict:
    wall = [t[0] for t in times]
    cpu = [t[1] for t in times]
    return {"path": path, "query": query, "p50_ms": pct(wall, 50), "p95_ms": pct(wall, 95), "cpu_p50_ms": pct(cpu, 50)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--home", default="", help="build the library here and keep it (reused when it exists)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        env = {"TAGSMITH_HOME": args.home or tmp}
        os.environ.update(env)
        start = time.perf_counter()
        if not (Path(env["TAGSMITH_HOME"]) / "photos").exists():  # --home: built once, then reused
            build_library(env, args.photos)
        built_s = time.perf_counter() - start
        rows = []
        for path in ("per-call connection (before)", "warm connection"):
            if path.startswith("per-call"):
                with per_call_connections():
                    result = timings(args.repeats)
            else:
                result = timings(args.repeats)
            rows += [figures(path, name, times) for name, times in result.items()]
            rows.append(figures(path, "mix", [t for times in result.values() for t in times]))
        concurrent = threaded(args.threads, max(1, args.repeats // 3))
        rows.append(
            {
                "path": f"warm, {args.threads} threads",
                "query": "mix",
                "p50_ms": pct(concurrent, 50),
                "p95_ms": pct(concurrent, 95),
                "cpu_p50_ms": None,
            }
        )
    table = pl.DataFrame(rows)
    print(
        f"{args.photos:,} photos x {len(FACETS)} facets = {args.photos * len(FACETS):,} tag rows, "
        f"{sum(FACETS.values()):,} catalog tags; built in {built_s:.0f} s; {args.repeats} warm calls per query; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    with pl.Config(tbl_rows=40, tbl_hide_dataframe_shape=True):
        print(table)
    OUT.mkdir(exist_ok=True)
    (OUT / "search_latency.json").write_text(json.dumps({**vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
