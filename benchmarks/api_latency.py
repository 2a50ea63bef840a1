""""Tag this photo now" over HTTP (issue 16): `POST /v1/tag` latency with the model warm, and photos/s under 4
concurrent clients, against the raw forward pass measured in the same run.

The library is benchmarks/tag_latency.py's (the generated demo, run once through `tagsmith run`'s own path).
`tagsmith serve` runs as a subprocess on 127.0.0.1 (a real socket, uvicorn, the server's defaults but the rate
limit, lifted so the clients measure the server and not the limiter), and the clients are httpx in threads of
this process. Measured, in order:
- in-process: `measure_inprocess` (PhotoTagger.tag p50/p95 and the raw forward p50/p95 on the same photos);
- one client: each photo posted in turn (after 3 warm-up posts): p50/p95 ms;
- 4 clients: the same photos, each client posting its share as fast as answers come: photos/s, p50/p95 ms, and
  photos/s of the raw forward pass (batch of one, one after another) on the same machine, so the ratio says what
  serving costs beyond the model. On 2 cores four clients contend with the server for the same cores.
Written to benchmarks/out/api_latency.json.

    python -m benchmarks.api_latency                  # ~8 min on 2 cores (the library's run is most of it)
    python -m benchmarks.api_latency --home DIR       # a home tag_latency or this benchmark prepared before
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.tag_latency import LIBRARY, finish, measure_inprocess, prepare

OUT = Path(__file__).resolve().parent / "out" / "api_latency.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ms(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1000.0
    return round(float(np.percentile(ms, 50)), 1), round(float(np.percentile(ms, 95)), 1)


def _start_server(port: int) -> subprocess.Popen:
    import httpx

    cmd = [sys.executable, "-m", "tagsmith.cli", "serve", "--port", str(port), "--rate", "100000"]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("the server did not come up in 90 s")


def over_http(base: str, token: str, photos: list[Path], clients: int) -> dict:
    """Each photo posted once, spread over `clients` threads: wall photos/s and per-request p50/p95 ms."""
    import httpx

    bodies = [p.read_bytes() for p in photos]
    headers = {"Authorization": f"Bearer {token}"}

    def post_all(share: list[bytes]) -> list[float]:
        took = []
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            for body in share:
                started = time.perf_counter()
                answer = client.post("/v1/tag", content=body)
                took.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    raise SystemExit(f"POST /v1/tag answered {answer.status_code}: {answer.text[:300]}")
        return took

    shares = [bodies[i::clients] for i in range(clients)]
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        took = [t for part in pool.map(post_all, shares) for t in part]
    wall = time.perf_counter() - started
    p50, p95 = _ms(took)
    return {"clients": clients, "photos": len(bodies), "photos_per_s": round(len(bodies) / wall, 2),
            "ms_p50": p50, "ms_p95": p95}  # fmt: skip


def forward_rate(tagger, photos: list[Path]) -> float:
    """Photos/s of the raw forward pass of the tagger's backbones (decoded and preprocessed outside the clock)."""
    from ml.embedding import model_input

    backbones = tagger.current().backbones
    inputs = [{m: model_input(b, p.read_bytes())[None] for m, b in backbones.items()} for p in photos]
    for model_id, backbone in backbones.items():
        backbone.forward(inputs[0][model_id])
    started = time.perf_counter()
    for one in inputs:
        for model_id, backbone in backbones.items():
            backbone.forward(one[model_id])
    return len(photos) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=48)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--home", type=Path, help="reuse a home tag_latency or this benchmark prepared")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    keep = args.home is not None
    home = (args.home or Path(tempfile.mkdtemp(prefix="tagsmith-api-")) / "home").resolve()
    os.environ.update(TAGSMITH_HOME=str(home), DAGSTER_HOME=str(home / "dagster_home"), TAGSMITH_PROGRESS="0",
                      TAGSMITH_RUNNER="inprocess")  # fmt: skip
    from resources.tokens import token_store
    from tagsmith import service
    from tagsmith.tag_now import PhotoTagger

    uploads = home.parent / "demo" / "uploads"
    if LIBRARY not in service.resources()["libraries"].names() or not service.has_run(LIBRARY, "tags"):
        uploads = prepare(home, uploads_per_product=2, seed=args.seed)
    photos = sorted(uploads.glob("*.jpg"))[: args.photos]
    tagger = PhotoTagger(LIBRARY, service.resources())
    figures = {"cores": os.cpu_count(), "inprocess": measure_inprocess(tagger, photos)}
    forward = forward_rate(tagger, photos)
    _, token = token_store(home).create(LIBRARY, "benchmark")
    port = _free_port()
    server = _start_server(port)
    try:
        base = f"http://127.0.0.1:{port}"
        over_http(base, token, photos[:3], 1)  # warm: the server builds the library's tagger on its first call
        one = over_http(base, token, photos, 1)
        many = over_http(base, token, photos, args.clients)
    finally:
        server.terminate()
        server.wait(timeout=30)
    figures.update(
        http_one_client=one,
        http_concurrent=many,
        forward_photos_per_s=round(forward, 2),
        concurrent_ratio_to_forward=round(many["photos_per_s"] / forward, 3),
    )
    finish(OUT, figures, None if keep else home.parent)


if __name__ == "__main__":
    main()
