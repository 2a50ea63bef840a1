"""Which backbone reads a facet best: candidates compared on the group-aware holdout by a linear probe.

The candidates are the library's backbone ("base"), the same weights on the whole frame plus centre crops at two
scales ("views": products rarely fill the photo), the backbone fine-tuned on the examples ("finetuned", when the
library gives fine-tuning a budget), that one on the same views ("finetuned-views"), the largest shipped member
of the family, frozen, on the same views ("large-views"), a colour histogram of the same views ("colour", no
network) and the last three side by side ("ensemble"). Each is
judged the way the CLIP paper judges features: a logistic regression (C chosen on inner folds that keep groups
apart) fitted on the train split and scored on the holdout, whose shoots and look-alike clusters the probe never
saw (ml/groups.py, ml/splits.py). The probe is the cheapest honest reading of a backbone's quality; the facet's
head then compares its full strategies (LightGBM, prototype, printed text, keypoints) on the chosen backbone
only.

A candidate that costs more per photo is kept only where it wins: by at least `MARGIN` balanced accuracy over
the cheaper pick. On grocery-produce (benchmarks/finetune.py, test top-1 of logistic regression) the frozen
backbone reads 74.7 %, the views 82.3 %, the fine-tuned one 81.3 % and the fine-tuned one on views 85.0 %; each
costlier candidate also wins on the holdout; lite2 on views reads 85.6 % and the ensemble 87.6 %
(benchmarks/ensembles.py), and the ensemble wins the holdout too (probe 0.841 against 0.808); with the colour
histogram beside its two backbones it reads 89.2 % (probe 0.847; benchmarks/trust.py, seed 0). A candidate no facet
keeps costs the examples' embedding only: the library is never embedded with it. Pure ML: no Dagster, no Ray.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence

import numpy as np

from ml.strategies import FITTERS, accuracy, aligned_proba, as_matrix, balanced_accuracy, row_space

# Forward passes per photo, relative to the base backbone (views: whole frame + 2 crops, measured 2.9x; the large
# backbone: efficientnet-lite2, 2.3x lite0's raw forward, benchmarks/backbones.py; the ensemble: its parts' sum).
COST: dict[str, float] = {
    "colour": 0.05,  # a histogram of three 96 px views, no forward pass
    "base": 1.0,
    "finetuned": 1.0,
    "views": 2.9,
    "finetuned-views": 2.9,
    "large-views": 6.7,
    "ensemble": 9.65,
}
# Order among equal costs: the base backbone needs no training and stays valid when the examples change.
ORDER: tuple[str, ...] = ("colour", "base", "finetuned", "views", "finetuned-views", "large-views", "ensemble")
# A pick is replaced only by a candidate better by this much balanced accuracy (1 point): a holdout of a few
# hundred photos cannot tell smaller gaps from noise, and every candidate but base costs compute or training.
MARGIN = 0.01
# The "views" candidate of a backbone: the same weights on the whole frame and centre crops keeping 80 % and
# 60 % of it, pooled (ml/views.py; the variant that won on grocery-produce: benchmarks/accuracy.py).
VIEWS_OF: dict[str, str] = {"efficientnet-lite0": "efficientnet-lite0-views:224/avg/center+zoom+zoom60"}
# The "large-views" candidate: the largest shipped member of the family, frozen, on the same views. On
# grocery-produce's next session it reads 85.6 % top-1 against 82.5 % for "views" and 85.5 % for the fine-tuned
# one on views, with no training (benchmarks/ensembles.py).
LARGE_VIEWS_OF: dict[str, str] = {"efficientnet-lite0": "efficientnet-lite2-views"}
# The "colour" part (ml/backbones/colour.py): the photo's colours on the same views, whatever the backbone. It is
# embedded like a candidate but judged only inside the ensemble (PARTS_ONLY), unless a catalog forces it: alone it
# ties on a holdout shot in one light and fails the next shoot. In the demo it tied the backbones on shot_type's
# holdout (1.000, the cheapest, so chosen) and read 0.083 on the second shoot's darker backdrop, where every
# backbone reads 1.0; on grocery-produce it reads 0.48-0.64 balanced alone.
COLOUR_BACKBONE = "colour-views"
PARTS_ONLY: tuple[str, ...] = ("colour",)
# The "ensemble" candidate: these candidates' vectors side by side (ml/backbones/concat.py), where all exist. The
# large frozen backbone and the fine-tuned one read photos differently: on grocery-produce each reads 0.80-0.81
# balanced on the group-aware holdout and 85.5-85.6 % top-1 on the next session, together 0.84 and 87.6 %
# (benchmarks/ensembles.py, seed 0). Both are trained to ignore colour, which tells look-alikes apart: with the
# colour histogram as a third part the ensemble's probe / test top-1 read 0.847 / 89.2 % on seed 0 and
# 0.858 / 88.5 % on seed 1, against 0.841 / 87.6 % and 0.831 / 86.6 % without (benchmarks/trust.py).
ENSEMBLE_OF: tuple[str, ...] = ("large-views", "finetuned-views", "colour")


def views_backbone(backbone: str) -> str | None:
    """The views candidate of the library's backbone, or None where none is defined (other families)."""
    return VIEWS_OF.get(backbone)


def large_views_backbone(backbone: str) -> str | None:
    """The large-views candidate of the library's backbone, or None where none is defined."""
    return LARGE_VIEWS_OF.get(backbone)


def finetuned_views_backbone(finetuned: str) -> str:
    """The views candidate of a fine-tuned backbone (`efficientnet-lite0-ft:<weights>`): the same views, pooled
    (ml/views.py PooledViews)."""
    return finetuned.replace("efficientnet-lite0-ft:", "efficientnet-lite0-ft-views:", 1)


def probe(
    X_train: np.ndarray,
    y_train: Sequence[str],
    X_hold: np.ndarray,
    y_hold: Sequence[str],
    groups_train: Sequence[str] | None = None,
    seed: int = 0,
) -> dict:
    """{"top1", "balanced", "n_holdout", "seconds"} of a logistic-regression probe on one backbone's vectors.

    Raises ValueError where a probe cannot judge: fewer than two tags in train, or an empty holdout.
    """
    X_train, X_hold = as_matrix(X_train, "X_train"), as_matrix(X_hold, "X_hold")
    classes = sorted(set(map(str, y_train)) | set(map(str, y_hold)))
    if len(set(map(str, y_train))) < 2:
        raise ValueError("fewer than two tags in the train split")
    if not len(y_hold):
        raise ValueError("an empty holdout")
    index = {c: k for k, c in enumerate(classes)}
    y_tr = np.array([index[str(y)] for y in y_train], dtype=int)
    y_ho = np.array([index[str(y)] for y in y_hold], dtype=int)
    started = time.perf_counter()
    key = train_key(X_train, y_train, groups_train, seed)
    # the same fits in coordinates of the train rows' span: one feature per photo, not per dimension (ml/strategies.py)
    X_train, X_hold = row_space(X_train, X_hold)
    model, params = FITTERS["logreg"](X_train, y_tr, seed, None, groups_train)
    predicted = aligned_proba(model, X_hold, len(classes)).argmax(axis=1)
    return {
        "top1": round(accuracy(y_ho, predicted), 4),
        "balanced": round(balanced_accuracy(y_ho, predicted), 4),
        "n_holdout": int(len(y_ho)),
        "C": params.get("C"),
        "train": key,
        "seconds": round(time.perf_counter() - started, 2),
    }


def train_key(X_train: np.ndarray, y_train: Sequence[str], groups_train: Sequence[str] | None, seed: int) -> str:
    """What a probe's C was searched on: the train rows' tags and groups in order, the vectors' shape and the
    seed. The facet's head, trained on the chosen backbone's same rows, takes the probe's C where its key is the
    same (`probe_c`): the search would choose the same C again, and it is most of a probe's cost."""
    digest = hashlib.sha256(json.dumps([list(X_train.shape), seed]).encode())
    for y, g in zip(y_train, groups_train if groups_train is not None else [None] * len(y_train), strict=True):
        digest.update(f"{y}\x1f{g}\x1e".encode())
    return digest.hexdigest()[:16]


def probe_c(probes: Mapping[str, dict], role: str, key: str) -> float | None:
    """The C the probe of `role` chose, where it was searched on the rows `key` names; else None."""
    found = probes.get(role) or {}
    return found.get("C") if found.get("train") == key and found.get("C") is not None else None


def judged(roles: Sequence[str], forced: str | None = None) -> list[str]:
    """The roles to probe for a facet: the forced one, else every candidate but the parts (PARTS_ONLY)."""
    return [forced] if forced else [role for role in roles if role not in PARTS_ONLY]


def choose(results: Mapping[str, dict], forced: str | None = None, margin: float = MARGIN) -> str:
    """The role to use, of `results` ({role: probe result}): cheapest first, replaced by a candidate that beats
    the current pick by at least `margin` balanced accuracy. `forced`: the catalog's choice, taken as is."""
    if forced:
        return forced
    if not results:
        raise ValueError("no backbone was probed")
    roles = sorted(results, key=lambda r: (COST.get(r, 1.0), ORDER.index(r) if r in ORDER else len(ORDER)))
    pick = roles[0]
    for role in roles[1:]:
        if _score(results[role]) >= _score(results[pick]) + margin:
            pick = role
    return pick


def _score(result: dict) -> float:
    value = result.get("balanced")
    return -1.0 if value is None or np.isnan(value) else float(value)
