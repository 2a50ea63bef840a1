"""GPU path check, for a machine with a CUDA device: device selection, batch sizing, fp16 parity, speed.

Run where a GPU is lent: `python benchmarks/gpu_check.py` (about a minute). It prints one JSON object and
exits non-zero if a check fails. On a machine without CUDA it says so and exits 0 (nothing to check).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

import numpy as np
from PIL import Image

from ml.backbones import CUDA_BATCH, BackboneSpec, resolve_device


def main() -> int:
    device = resolve_device("auto")
    if device != "cuda":
        print(json.dumps({"device": device, "skipped": "no CUDA device here"}))
        return 0
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)) for _ in range(64)]
    with tempfile.TemporaryDirectory() as cache:
        gpu = BackboneSpec(cache_dir=cache).build()  # auto -> cuda, torch fp16
        cpu = BackboneSpec(cache_dir=cache, device="cpu").build()  # onnxruntime
        report = {"device": gpu.device, "batch_size": gpu.batch_size, "model_id": gpu.model_id}
        a, b = gpu.embed(images), cpu.embed(images)
        report["min_cosine_fp16_vs_onnx_cpu"] = float((a * b).sum(axis=1).min())
        for batch in (32, 128, CUDA_BATCH):
            x = gpu.preprocess(images[:1] * batch)
            gpu.forward(x)  # warm-up
            start, n = time.perf_counter(), 0
            while time.perf_counter() - start < 3:
                gpu.forward(x)
                n += batch
            report[f"forward_img_per_s_batch{batch}"] = round(n / (time.perf_counter() - start), 1)
    parity = report["min_cosine_fp16_vs_onnx_cpu"] > 0.999
    ok = report["device"] == "cuda" and report["batch_size"] == CUDA_BATCH and parity
    report["ok"] = ok
    print(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
