"""ORB vs RootSIFT keypoint evidence (ml/keypoints.py): what each costs and what it adds to the picture.

Cost, on grocery-produce photos resized to 320 and to 640 px (the detector at that size): ms per photo to
extract, descriptor bytes per photo (xy + descriptors, as the `keypoints` table stores them, at the default
320 px), and ms to match one photo against a gallery of 12 examples x its 5 visually likeliest tags
(`keypoint_evidence`, 60 pairs: ratio test + RANSAC included); beside it the matcher alone per pair, with
brute-force L2 for RootSIFT as a reference (not what the pipeline uses).

Accuracy, on `/work/shared/datasets/grocery-produce` (examples = train+val, test = test): balanced logreg
(C=10) on the cached L2-normalised efficientnet-lite0 vectors (benchmarks/backbones.py writes them), then per
kind as the pipeline's "+keypoints" strategy: a gallery of up to 12 examples per tag (`build_gallery`),
evidence for the 5 visually likeliest tags (examples: out-of-fold visual scores, never against themselves),
a `Combiner` with a "keypoints" channel fitted on the examples' out-of-fold scores. Reported: test top-1 of
logreg, of the evidence alone (argmax of evidence among the 5 candidates, ties by visual rank, so a photo
without evidence keeps the visual top-1) and fused. The same on the demo's product facet (examples -> the
uploads with their truth), overall and on the 8 look-alike products (`--no-demo` skips it).

    python -m benchmarks.keypoints      # ~15 min cold on 2 shared cores (RootSIFT matching most of it)
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.linear_model import LogisticRegression

from benchmarks.grocery import OUT_DIR, Dataset, load_dataset
from ml.fusion import Combiner, out_of_fold_scores
from ml.keypoints import Features, KeypointSpec, extract, keypoint_evidence, knn_pairs, top_candidates
from ml.media import decode_image
from ml.strategies import build_gallery

log = logging.getLogger(__name__)

KINDS = ("orb", "rootsift")
OUT_JSON = OUT_DIR / "keypoints.json"
TOP_K = 5
PER_TAG = 12


# ------------------------------------------------------------------------------------------ features
def cache_path(data: Dataset, spec: KeypointSpec) -> Path:
    return OUT_DIR / f"keypoints-{data.key}-{spec.model_id.replace('@', '-')}.npz"


def dataset_features(data: Dataset, spec: KeypointSpec) -> tuple[list[Features], float]:
    """Features of every photo (decoded as `keypoints_chunk` does), cached as .npz; and ms per photo to extract."""
    path = cache_path(data, spec)
    if path.exists():
        with np.load(path) as npz:
            xy, desc, ends, ms = npz["xy"], npz["desc"], npz["ends"], float(npz["ms"])
        starts = np.concatenate([[0], ends[:-1]])
        log.info("%s: features from %s", spec.model_id, path)
        return [Features(xy[a:b], desc[a:b]) for a, b in zip(starts, ends, strict=True)], ms
    feats, seconds = [], 0.0
    for i, rel in enumerate(data.paths):
        image = decode_image((data.root / rel).read_bytes(), draft_size=spec.size)
        t = time.perf_counter()
        feats.append(extract(image, spec))
        seconds += time.perf_counter() - t
        if (i + 1) % 500 == 0:
            log.info("%s: %d/%d photos extracted", spec.kind, i + 1, len(data.paths))
    ms = seconds / len(feats) * 1000
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        xy=np.concatenate([f.xy for f in feats]),
        desc=np.concatenate([f.desc for f in feats]),
        ends=np.cumsum([len(f.desc) for f in feats]),
        ms=ms,
    )
    return feats, ms


# ------------------------------------------------------------------------------------------ cost
def extract_ms(images: Sequence[Image.Image], spec: KeypointSpec) -> float:
    extract(images[0], spec)  # warm-up
    t = time.perf_counter()
    for image in images:
        extract(image, spec)
    return (time.perf_counter() - t) / len(images) * 1000


def matcher_ms(pairs: Sequence[tuple[np.ndarray, np.ndarray]], knn: Callable) -> float:
    t = time.perf_counter()
    for a, b in pairs:
        knn(a, b)
    return (time.perf_counter() - t) / len(pairs) * 1000


def bf_l2(a: np.ndarray, b: np.ndarray) -> list:
    import cv2

    return cv2.BFMatcher(cv2.NORM_L2).knnMatch(a, b, k=2)


def measure_cost(
    data: Dataset, kind: str, feats: list[Features], visual: np.ndarray, classes: np.ndarray, ex: np.ndarray, n: int
) -> dict:
    rng = np.random.default_rng(0)
    picks = rng.choice(np.flatnonzero(~ex), size=n, replace=False)
    photos = [decode_image((data.root / data.paths[i]).read_bytes()).convert("RGB") for i in picks]
    row: dict = {}
    for size in (320, 640):
        resized = [p.resize((size, round(size * p.height / p.width)), Image.BICUBIC) for p in photos]
        row[f"extract_ms_{size}"] = round(extract_ms(resized, KeypointSpec(kind=kind, size=size)), 2)
    counts = np.array([len(f.desc) for f in feats])
    row["keypoints_per_photo"] = round(float(counts.mean()), 1)
    row["bytes_per_photo"] = round(float(np.mean([len(b"".join(f.to_bytes())) for f in feats])))
    ids = [str(i) for i in range(len(feats))]
    gallery = build_gallery(
        [ids[i] for i in np.flatnonzero(ex)], data.labels[ex], [feats[i] for i in np.flatnonzero(ex)], per_tag=PER_TAG
    )
    candidates = top_candidates(visual, TOP_K)
    t = time.perf_counter()
    for i in picks:
        keypoint_evidence([feats[i]], gallery, list(classes), candidates[i : i + 1])
    row["match_ms_per_photo"] = round((time.perf_counter() - t) / n * 1000, 1)
    pairs = [
        (feats[i].desc, f.desc)
        for i in picks[:10]
        for k in candidates[i]
        for _, f in gallery.get(classes[k], ())
        if len(feats[i].desc) >= 2 and len(f.desc) >= 2
    ]
    row["pairs_per_photo"] = round(len(pairs) / 10, 1)
    row["matcher_ms_per_pair"] = round(matcher_ms(pairs, knn_pairs), 3)
    if kind == "rootsift":
        row["bf_l2_ms_per_pair"] = round(matcher_ms(pairs, bf_l2), 3)
    log.info("%s cost: %s", kind, row)
    return row


# ------------------------------------------------------------------------------------------ accuracy
def logreg_fit(X: np.ndarray, y: np.ndarray, n_classes: int):
    model = LogisticRegression(C=10, class_weight="balanced", max_iter=2000).fit(X, y)

    def predict(Xb: np.ndarray) -> np.ndarray:
        out = np.zeros((len(Xb), n_classes))
        out[:, model.classes_] = model.predict_proba(Xb)
        return out

    return predict


def _evidence_part(args: tuple) -> np.ndarray:
    queries, gallery, classes, candidates, exclude = args
    return keypoint_evidence(queries, gallery, classes, candidates, exclude=exclude)


def evidence(
    queries: list[Features],
    gallery: dict,
    classes: list[str],
    candidates: np.ndarray,
    exclude: list[str] | None,
    workers: int,
) -> np.ndarray:
    """`keypoint_evidence` over chunks of rows in `workers` processes (the same numbers, sooner)."""
    cuts = np.array_split(np.arange(len(queries)), max(1, workers * 4))
    parts = [
        ([queries[i] for i in c], gallery, classes, candidates[c], [exclude[i] for i in c] if exclude else None)
        for c in cuts
        if len(c)
    ]
    if workers <= 1:
        return np.vstack([_evidence_part(p) for p in parts])
    with ProcessPoolExecutor(workers) as pool:
        return np.vstack(list(pool.map(_evidence_part, parts)))


def fused_top1(
    kind_feats: dict[str, tuple[list[Features], list[Features]]],
    X_ex: np.ndarray,
    y_ex: np.ndarray,
    X_te: np.ndarray,
    y_te: np.ndarray,
    classes: list[str],
    workers: int,
    masks: dict[str, np.ndarray] | None = None,
) -> dict:
    """Top-1 of logreg, and per kind of its evidence alone and fused, on the test rows (and on each mask)."""
    n_classes = len(classes)
    t = time.perf_counter()
    visual = logreg_fit(X_ex, y_ex, n_classes)(X_te)
    oof = out_of_fold_scores(lambda Xa, ya: logreg_fit(Xa, ya, n_classes), X_ex, y_ex, n_classes, seed=0)
    log.info("logreg and out-of-fold scores in %.0fs", time.perf_counter() - t)
    masks = {"all": np.ones(len(y_te), bool), **(masks or {})}

    def score(predicted: np.ndarray) -> dict:
        return {name: round(float(np.mean(predicted[m] == y_te[m])), 4) for name, m in masks.items()}

    out = {"logreg": score(visual.argmax(axis=1))}
    ids = [str(i) for i in range(len(y_ex))]
    for kind, (feats_ex, feats_te) in kind_feats.items():
        t = time.perf_counter()
        gallery = build_gallery(ids, [classes[c] for c in y_ex], feats_ex, per_tag=PER_TAG)
        has = np.array([c in gallery for c in classes])
        train_ev = evidence(feats_ex, gallery, classes, top_candidates(oof, TOP_K), ids, workers)
        cand_te = top_candidates(visual, TOP_K)
        test_ev = evidence(feats_te, gallery, classes, cand_te, None, workers)
        alone = cand_te[np.arange(len(y_te)), np.take_along_axis(test_ev, cand_te, axis=1).argmax(axis=1)]
        fused = Combiner({"keypoints": has}).fit(oof, {"keypoints": train_ev}, y_ex)
        fused_scores = fused.scores(visual, {"keypoints": test_ev})
        out[f"{kind}_alone"] = score(alone)
        out[f"logreg+{kind}"] = score(fused_scores.argmax(axis=1))
        out[f"{kind}_share_with_evidence"] = round(float((test_ev > 0).any(axis=1).mean()), 4)
        out[f"{kind}_combiner_weights"] = fused.weights()
        log.info(
            "%s: evidence and fusion in %.0fs: %s",
            kind,
            time.perf_counter() - t,
            {k: v for k, v in out.items() if k.startswith(kind) or k.endswith(kind)},
        )
    return out


def grocery_accuracy(data: Dataset, feats: dict[str, list[Features]], X: np.ndarray, workers: int) -> dict:
    ex, te = data.mask("train", "val"), data.mask("test")
    classes = sorted(set(data.labels[ex]))
    code = {c: i for i, c in enumerate(classes)}
    y = np.array([code.get(label, -1) for label in data.labels])
    split = {k: ([f[i] for i in np.flatnonzero(ex)], [f[i] for i in np.flatnonzero(te)]) for k, f in feats.items()}
    return fused_top1(split, X[ex], y[ex], X[te], y[te], classes, workers)


def demo_accuracy(workers: int) -> dict:
    """The demo's product facet: examples -> uploads with truth, overall and on the look-alike products."""
    from ml.backbones import BackboneSpec, cached_backbone
    from tagsmith.demo import PRODUCTS, generate_demo_library

    def rows(path: Path) -> list[tuple[str, str]]:  # as benchmarks/hard.py reads them
        with path.open(encoding="utf-8") as f:
            return [(r["path"], r["tag_id"]) for r in csv.DictReader(f) if r.get("facet", "product") == "product"]

    with tempfile.TemporaryDirectory() as tmp:
        demo = generate_demo_library(Path(tmp) / "demo", seed=0, videos=0)
        examples = [(str((demo.root / p).resolve()), t) for p, t in rows(demo.examples_manifest)]
        uploads = [(str(demo.uploads_dir / p), t) for p, t in rows(demo.truth_path)]
        images_ex = [Image.open(p).convert("RGB") for p, _ in examples]
        images_up = [Image.open(p).convert("RGB") for p, _ in uploads]
        backbone = cached_backbone(BackboneSpec())
        X_ex, X_up = backbone.embed(images_ex), backbone.embed(images_up)
        feats = {
            k: (
                [extract(i, KeypointSpec(kind=k)) for i in images_ex],
                [extract(i, KeypointSpec(kind=k)) for i in images_up],
            )
            for k in KINDS
        }
    classes = sorted({t for _, t in examples})
    y_ex = np.array([classes.index(t) for _, t in examples])
    y_up = np.array([classes.index(t) if t in classes else -1 for _, t in uploads])
    hard = {p.tag_id for p in PRODUCTS if p.lookalike}
    is_hard = np.array([t in hard for _, t in uploads])
    out = fused_top1(feats, X_ex, y_ex, X_up, y_up, classes, workers, {"lookalikes": is_hard, "others": ~is_hard})
    return out | {"n": {"examples": len(examples), "uploads": len(uploads), "lookalike_uploads": int(is_hard.sum())}}


# ------------------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cost-photos", type=int, default=40, help="test photos timed for the cost table")
    parser.add_argument("--workers", type=int, default=2, help="processes matching evidence rows")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo's look-alike products")
    parser.add_argument("--cost-only", action="store_true", help="only the cost table (features cached or extracted)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    data = load_dataset()
    cached = sorted(OUT_DIR.glob(f"backbones-{data.key}-efficientnet-lite0-*.npz"))
    if not cached:
        raise FileNotFoundError("no efficientnet-lite0 vectors cached: run `python -m benchmarks.backbones` first")
    with np.load(cached[-1]) as npz:
        X = npz["vectors"].astype(np.float64)
    X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    log.info("visual vectors from %s", cached[-1].name)

    feats, stored_ms = {}, {}
    for kind in KINDS:
        feats[kind], stored_ms[kind] = dataset_features(data, KeypointSpec(kind=kind))
    ex = data.mask("train", "val")
    classes = np.array(sorted(set(data.labels[ex])))
    code = {c: i for i, c in enumerate(classes)}
    visual = logreg_fit(X[ex], np.array([code[v] for v in data.labels[ex]]), len(classes))(X)
    cost = {k: measure_cost(data, k, feats[k], visual, classes, ex, args.cost_photos) for k in KINDS}
    for kind in KINDS:
        cost[kind]["dataset_extract_ms_at_cache_time"] = round(stored_ms[kind], 2)
    load = [round(v, 2) for v in os.getloadavg()]  # the cores are shared: timings under load are slower
    report = {"cost": cost, "load_avg_1_5_15": load, "model_ids": {k: KeypointSpec(kind=k).model_id for k in KINDS}}
    log.info("load average while timing: %s", load)
    if not args.cost_only:
        report["grocery"] = grocery_accuracy(data, feats, X, args.workers)
    if not (args.no_demo or args.cost_only):
        report["demo"] = demo_accuracy(args.workers)
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    out = OUT_JSON.with_name("keypoints-cost.json") if args.cost_only else OUT_JSON
    out.write_text(json.dumps(report, indent=2))

    print(
        f"{'kind':<10} {'ms@320':>8} {'ms@640':>8} {'kp':>6} {'bytes':>8} {'match ms':>9} {'pairs':>6} "
        f"{'ms/pair':>8} {'BF-L2/pair':>10}"
    )
    for kind, r in cost.items():
        print(
            f"{kind:<10} {r['extract_ms_320']:>8} {r['extract_ms_640']:>8} {r['keypoints_per_photo']:>6} "
            f"{r['bytes_per_photo']:>8} {r['match_ms_per_photo']:>9} {r['pairs_per_photo']:>6} "
            f"{r['matcher_ms_per_pair']:>8} {r.get('bf_l2_ms_per_pair', '-'):>10}"
        )
    for name in ("grocery", "demo"):
        if name in report:
            print(f"{name} top-1 ({', '.join(report[name]['logreg'])}):")
            for key, value in report[name].items():
                if isinstance(value, dict) and "all" in value:
                    print(f"  {key:<16} " + " ".join(f"{v:>8.4f}" for v in value.values()))
            for kind in KINDS:
                print(f"  {kind} test photos with any evidence: {report[name][f'{kind}_share_with_evidence']}")
    print(f"load average (1, 5, 15 min) while timing: {load}; written {out}")


if __name__ == "__main__":
    main()
