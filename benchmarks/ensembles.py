"""Past 85 % on grocery-produce: which backbones read the next session best, alone and side by side, and what
the photos of the same new shoot add when each photo's scores are blended with its nearest neighbours'.

Every candidate is embedded once (`benchmarks/backbones.py` caches: the same `embed_chunk` as the pipeline) and
judged two ways on the same group-aware split the pipeline makes (`ml/groups.py` groups from the base vectors,
`ml/splits.py`, seed 0): the `backbone_choice` probe on the holdout (balanced accuracy; what the pipeline decides
by), and a logistic regression refitted on every example (C chosen on inner group folds) on the test session
(top-1; what a user gets). The fine-tuned backbones are trained on the split's train rows with a new library's
settings (`ml/finetune.py`; weights kept in benchmarks/out/ and reused): the default `efficientnet-lite0`
(what the pipeline fine-tunes) and, with --lite2, `efficientnet-lite2` at 260 px.

Pairs are joined as the `ensemble` candidate joins them (`ml/backbones/concat.py`). The neighbour context is not
in the product: each photo's class scores plus `a` x the mean scores of its `k` most similar photos among the
photos scored together (the holdout for the holdout figure, the test session for the test figure). It is also
measured with neighbours drawn from only 10, 25 or 50 % of the test session (a library part-way through
ingesting a session) and with neighbours found by the base vectors (what the vector store holds).

    .venv/bin/python -m benchmarks.ensembles            # ~8 min cold (fine-tuning lite0), ~1 min warm
    .venv/bin/python -m benchmarks.ensembles --lite2    # + fine-tuned lite2: ~+12 min cold

Writes benchmarks/out/ensembles.json. Figures, not tests: nothing here asserts.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
from pathlib import Path

import numpy as np

from benchmarks.backbones import embedding_arguments, get_embeddings
from benchmarks.grocery import OUT_DIR, load_dataset
from benchmarks.trust import example_groups
from ml.backbone_choice import LARGE_VIEWS_OF, VIEWS_OF, probe
from ml.backbones.concat import join
from ml.splits import group_holdout_split
from ml.strategies import FITTERS, aligned_proba

log = logging.getLogger("benchmarks.ensembles")
CONTEXTS = ((3, 1.0), (5, 0.5), (5, 1.0), (10, 1.0))
POOLS = (0.1, 0.25, 0.5)


def finetuned(data, rows: np.ndarray, variant: str) -> str:
    """The weights file of `variant` fine-tuned on `rows` with a new library's settings (cached by variant)."""
    from benchmarks.finetune import load_images
    from ml.backbones.efficientnet import input_size
    from ml.finetune import FinetuneConfig, finetune, trainable_model
    from resources.libraries import FinetuneSettings

    record = OUT_DIR / f"ensembles-ft-{variant}.json"
    if record.exists() and Path(json.loads(record.read_text())["weights"]).is_file():
        return json.loads(record.read_text())["weights"]
    settings = FinetuneSettings()
    model = trainable_model(settings.train_blocks, variant)
    config = FinetuneConfig(
        budget_s=settings.budget_min * 60,
        epochs=settings.epochs,
        size=input_size(variant),
        train_blocks=settings.train_blocks,
        augment=settings.augment,
        seed=0,
    )
    images = load_images(data.root, [data.paths[i] for i in rows])
    result = finetune(images, list(data.labels[rows]), OUT_DIR / "ensembles-ft" / variant, config, feature_model=model)
    record.write_text(
        json.dumps({"weights": result.weights_path, "epochs_done": result.epochs_done, "seconds": result.seconds})
    )
    return result.weights_path


def finetuned_views(data, weights: str, variant: str, args) -> np.ndarray:
    """The vectors of the fine-tuned `variant` on the pooled views, through a backbone registered for this run."""
    from ml.backbones.efficientnet import EfficientNetLiteOnnx
    from ml.backbones.registry import register_backbone
    from ml.views import POOLED_VIEWS, PooledViews

    name = f"benchmark-ft-views-{variant}"
    register_backbone(
        name,
        lambda spec, arg: PooledViews(
            EfficientNetLiteOnnx(Path(spec.cache_dir), spec.threads, Path(weights), variant), POOLED_VIEWS
        ),
    )
    return get_embeddings(name, data, args)["vectors"]


def similarity(X: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row with every other (the diagonal -inf: a photo is not its own neighbour)."""
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = X @ X.T
    np.fill_diagonal(S, -np.inf)
    return S


def smooth(P: np.ndarray, S: np.ndarray, k: int, a: float, pool: np.ndarray | None = None) -> np.ndarray:
    """Scores plus `a` x the mean scores of each row's `k` nearest other rows (`S`: their `similarity`); with
    `pool` (a mask), the neighbours come only from those rows: a library that holds part of the session."""
    if pool is not None:
        S = np.where(pool[None, :], S, -np.inf)
    nearest = np.argpartition(-S, k, axis=1)[:, :k]
    return P + a * P[nearest].mean(axis=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lite2", action="store_true", help="also efficientnet-lite2 fine-tuned (+~12 min cold)")
    embedding_arguments(parser, raw_batches=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data = load_dataset()
    ex, te = np.flatnonzero(data.mask("train", "val")), np.flatnonzero(data.mask("test"))
    V = {"base": get_embeddings("efficientnet-lite0", data, args)["vectors"]}
    y = data.labels[ex]
    units, _ = example_groups(data, ex, V["base"][ex])
    split = group_holdout_split([data.paths[i] for i in ex], ["product"] * len(y), list(y), units, 0.25, 0)
    tr, groups = split == "train", np.array(units)
    V["views"] = get_embeddings(VIEWS_OF["efficientnet-lite0"], data, args)["vectors"]
    V["large-views"] = get_embeddings(LARGE_VIEWS_OF["efficientnet-lite0"], data, args)["vectors"]
    for variant, role in [("efficientnet-lite0", "finetuned-views")] + (
        [("efficientnet-lite2", "lite2-finetuned-views")] if args.lite2 else []
    ):
        V[role] = finetuned_views(data, finetuned(data, ex[tr], variant), variant, args)
    sets = {role: V[role] for role in V}
    for a, b in itertools.combinations([r for r in V if r != "base"], 2):
        sets[f"{a} + {b}"] = join([V[a], V[b]])
    classes = sorted(set(data.labels))
    index = {c: k for k, c in enumerate(classes)}
    yi, yt = np.array([index[c] for c in y]), np.array([index[c] for c in data.labels[te]])
    draw = np.random.default_rng(0).random(len(te))  # which test photos a part-filled library holds
    S_base = similarity(V["base"][te])
    results = []
    for name, X in sets.items():
        p = probe(X[ex][tr], y[tr], X[ex][~tr], y[~tr], list(groups[tr]), 0)
        m_hold, _ = FITTERS["logreg"](X[ex][tr], yi[tr], 0, {"C": p["C"]})
        m_all, params = FITTERS["logreg"](X[ex], yi, 0, None, list(groups))
        P_hold = aligned_proba(m_hold, X[ex][~tr], len(classes))
        P_test = aligned_proba(m_all, X[te], len(classes))
        row = {
            "vectors": name,
            "probe_balanced": p["balanced"],
            "holdout_top1": p["top1"],
            "C": params["C"],
            "test_top1": round(float((P_test.argmax(1) == yt).mean()), 4),
            "context": {},
        }
        S_hold, S_test = similarity(X[ex][~tr]), similarity(X[te])
        for k, a in CONTEXTS:
            hold = float((smooth(P_hold, S_hold, k, a).argmax(1) == yi[~tr]).mean())
            test = float((smooth(P_test, S_test, k, a).argmax(1) == yt).mean())
            row["context"][f"k={k} a={a:g}"] = {"holdout_top1": round(hold, 4), "test_top1": round(test, 4)}
        # k=3 a=1 where the library holds only part of the new session, and with neighbours by the base vectors
        # (what the vector store holds): does a photo's context survive a half-ingested session?
        row["context_pool"] = {
            f"{frac:.0%} of the session": round(
                float((smooth(P_test, S_test, 3, 1.0, draw < frac).argmax(1) == yt).mean()), 4
            )
            for frac in POOLS
        }
        row["context_pool"]["base-vector neighbours"] = round(
            float((smooth(P_test, S_base, 3, 1.0).argmax(1) == yt).mean()), 4
        )
        results.append(row)
        log.info("%s: %s", name, row)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "ensembles.json").write_text(json.dumps(results, indent=1))
    head = " ".join(f"{c:>17s}" for c in results[0]["context"])
    print(f"\n{'vectors':45s} probe  hold | test  | neighbour context: holdout / test top-1\n{'':63s}{head}")
    for r in results:
        ctx = " ".join(f"{v['holdout_top1']:.3f} / {v['test_top1']:.3f}" for v in r["context"].values())
        print(f"{r['vectors']:45s} {r['probe_balanced']:.3f} {r['holdout_top1']:.3f} | {r['test_top1']:.3f} | {ctx}")
    print(f"\n{'vectors':45s} test top-1, k=3 a=1, neighbours from: " + ", ".join(results[0]["context_pool"]))
    for r in results:
        print(f"{r['vectors']:45s} " + "  ".join(f"{v:.3f}" for v in r["context_pool"].values()))


if __name__ == "__main__":
    main()
