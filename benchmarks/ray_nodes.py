"""Embedding on a real Ray cluster of one node and of two nodes on this machine: photos per node and img/s.

Why: `TAGSMITH_RAY_ADDRESS` sends the embedding to a cluster; this measures what a second node brings and
shows that work is shared between nodes. Both clusters are started with the `ray` CLI exactly as on real
machines (`ray start --head`, then `ray start --address` per extra node), one CPU per node, and joined by
`RayRunner(address=...)`. Each task embeds a chunk with `ml.embedding.embed_chunk` (one runtime thread) and
reports its node (`resources.ray_runner.placed`). On a 2-core box the second node can at best double the
rate, and less when anything else runs: the load average is in the report.

    python -m benchmarks.ray_nodes                  # 960 photos of 640x480, 1 then 2 nodes: ~2 min on 2 cores
    python -m benchmarks.ray_nodes --n 384 --chunk 16
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.throughput import write_photos
from ml.backbones import BackboneSpec, cached_backbone
from ml.embedding import embed_chunk
from ml.media import LocalFiles
from resources import PROJECT_ROOT
from resources.ray_runner import RayRunner, placed

log = logging.getLogger("benchmarks.ray_nodes")

OUT_DIR = Path(__file__).resolve().parent / "out"
RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalRayCluster:
    """`nodes` Ray nodes on this machine, each a `ray start --block` in a process group of its own.

    `stop` ends those process groups (SIGTERM, then SIGKILL) and nothing else: `ray stop` would also stop
    any other Ray on the machine. Every port is chosen free, so two raylets (and anyone else's Ray) coexist;
    node i carries the custom resource `node_<i>`, which tells the nodes apart.
    """

    def __init__(self, nodes: int = 2, cpus_per_node: int = 1, start_timeout_s: float = 60.0):
        self.nodes = nodes
        self.cpus_per_node = cpus_per_node
        self.start_timeout_s = start_timeout_s
        self.temp_dir = tempfile.mkdtemp(prefix="rc", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
        self.gcs_port = free_port()
        self.address = f"127.0.0.1:{self.gcs_port}"
        self.processes: list[subprocess.Popen] = []

    def _node_args(self, index: int) -> list[str]:
        ports = {
            "--node-manager-port": free_port(),
            "--object-manager-port": free_port(),
            "--dashboard-agent-listen-port": free_port(),
            "--dashboard-agent-grpc-port": free_port(),
            "--metrics-export-port": free_port(),
            "--runtime-env-agent-port": free_port(),
        }
        args = [RAY, "start", "--block", "--disable-usage-stats", "--node-ip-address=127.0.0.1"]
        args += [f"--num-cpus={self.cpus_per_node}", "--num-gpus=0", f'--resources={{"node_{index}": 1}}']
        args += [f"{flag}={port}" for flag, port in ports.items()]
        if index == 0:
            args += ["--head", f"--port={self.gcs_port}", f"--ray-client-server-port={free_port()}"]
            args += ["--include-dashboard=false", f"--temp-dir={self.temp_dir}"]
        else:
            args += [f"--address={self.address}"]
        return args

    def start(self) -> LocalRayCluster:
        for index in range(self.nodes):
            log_file = open(Path(self.temp_dir) / f"node_{index}.log", "wb")  # noqa: SIM115 (kept by the process)
            env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
            self.processes.append(
                subprocess.Popen(
                    self._node_args(index), stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True
                )
            )
            if index == 0:
                self._wait_for_head()
        return self

    def _wait_for_head(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.processes[0].poll() is not None:
                raise RuntimeError(f"ray head exited: {self.log_tail(0)}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.gcs_port)) == 0:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"ray head not listening on {self.address} after {self.start_timeout_s}s")

    def wait_for_nodes(self, ray) -> dict[str, str]:
        """Ray node id -> 'node_<i>', once all `nodes` have joined (the caller is connected to the cluster)."""
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            names = {
                n["NodeID"]: name
                for n in ray.nodes()
                if n["Alive"]
                for name in n["Resources"]
                if name.startswith("node_")
            }
            if len(names) >= self.nodes:
                return names
            for index, process in enumerate(self.processes):
                if process.poll() is not None:
                    raise RuntimeError(f"ray node {index} exited: {self.log_tail(index)}")
            time.sleep(0.2)
        raise TimeoutError(f"{self.nodes} Ray nodes did not join {self.address} in {self.start_timeout_s}s")

    def log_tail(self, index: int, chars: int = 2000) -> str:
        return (Path(self.temp_dir) / f"node_{index}.log").read_text(errors="replace")[-chars:]

    def process_groups_alive(self) -> list[int]:
        """Pids of processes still in one of this cluster's process groups."""
        groups = {p.pid for p in self.processes}
        alive = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getpgid(int(entry.name)) in groups:
                        alive.append(int(entry.name))
                except ProcessLookupError:
                    continue  # ended while we looked
        return alive

    def stop(self, grace_s: float = 5.0) -> None:
        """End this cluster's process groups (SIGTERM, SIGKILL after `grace_s`) and remove its temp dir."""
        for process in reversed(self.processes):
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while self.process_groups_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        for process in self.processes:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait(timeout=grace_s)
        deadline = time.monotonic() + grace_s
        while self.process_groups_alive() and time.monotonic() < deadline:
            time.sleep(0.1)  # SIGKILLed processes leave /proc a moment later
        shutil.rmtree(self.temp_dir)

    def __enter__(self) -> LocalRayCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return  # the group has already ended


def embed_on_cluster(runner: RayRunner, spec: BackboneSpec, items: list, chunk: int, out_dir: Path):
    """Embed `items` in chunks through `runner`; returns the placed results and the wall seconds."""
    calls = [
        (embed_chunk, spec, items[i : i + chunk], str(out_dir / f"part-{i:05d}.parquet"), LocalFiles(), 1)
        for i in range(0, len(items), chunk)
    ]
    started = time.perf_counter()
    results = runner.map(placed, calls)
    return results, time.perf_counter() - started


def warm_every_node(ray, spec: BackboneSpec, node_names) -> None:
    """Start a worker and build the model on every node, so the measured run pays neither."""
    warm = ray.remote(num_cpus=1)(_build_model)
    ray.get([warm.options(resources={name: 0.01}).remote(spec) for name in node_names])


def _build_model(spec: BackboneSpec) -> str:
    return cached_backbone(spec).model_id


def measure(nodes: int, spec: BackboneSpec, items: list, chunk: int, out_dir: Path) -> dict:
    import ray

    runtime_env = {"env_vars": {"PYTHONPATH": str(PROJECT_ROOT)}}
    with LocalRayCluster(nodes=nodes) as cluster:
        runner = RayRunner(address=cluster.address, runtime_env=runtime_env, cpus_per_task=1)
        try:
            runner.connect()
            names = cluster.wait_for_nodes(ray)
            warm_every_node(ray, spec, names.values())
            results, seconds = embed_on_cluster(runner, spec, items, chunk, out_dir / "run")
        finally:
            runner.disconnect()
    per_node = Counter()
    for placed_result in results:
        per_node[names[placed_result.node_id]] += placed_result.result.n_embedded
    embedded = sum(per_node.values())
    return {
        "nodes": nodes,
        "photos": embedded,
        "seconds": round(seconds, 2),
        "img_per_s": round(embedded / seconds, 1),
        "photos_per_node": dict(sorted(per_node.items())),
        "tasks": len(results),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=960, help="photos to embed per cluster")
    parser.add_argument("--chunk", type=int, default=16, help="photos per task")
    parser.add_argument("--out", type=Path, default=OUT_DIR / "ray_nodes.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("ml").setLevel(logging.WARNING)

    spec = BackboneSpec(threads=1)
    spec.build()  # export the ONNX file once, before any worker looks for it
    with tempfile.TemporaryDirectory(prefix="tagsmith-ray-nodes-") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "photos").mkdir()
        items = write_photos(tmp_path / "photos", args.n, 640, 480)
        rows = [measure(nodes, spec, items, args.chunk, tmp_path / f"nodes{nodes}") for nodes in (1, 2)]
    report = {"machine": {"cpus": os.cpu_count(), "loadavg_end": os.getloadavg()}, "chunk": args.chunk, "runs": rows}
    print(f"\n{'nodes':>5} {'photos':>6} {'seconds':>8} {'img/s':>7}  photos per node")
    for row in rows:
        print(
            f"{row['nodes']:>5} {row['photos']:>6} {row['seconds']:>8} {row['img_per_s']:>7}  {row['photos_per_node']}"
        )
    print(
        f"speed-up 2 nodes / 1 node: {rows[1]['img_per_s'] / rows[0]['img_per_s']:.2f}x "
        f"(load average at the end: {report['machine']['loadavg_end'][0]:.2f} on {os.cpu_count()} cores)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
