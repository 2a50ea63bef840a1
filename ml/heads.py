"""Per-facet classification heads on frozen image embeddings.

Each facet (product type, colour, material, ...) gets its own small classifier on top of L2-normalised
backbone embeddings. Product libraries are few-shot and uneven, so no single head type wins everywhere:
every strategy is fitted on the train split, scored on a stratified holdout, and the best one is kept,
together with per-tag score thresholds that decide whether a prediction is applied automatically or sent to
human review. The kept model is then refitted on train+holdout, because with a handful of examples per tag
every example matters more than an untouched holdout does once the choice is made.

Pure ML: importable without Dagster or Ray; the trained `FacetHead` is a plain picklable dataclass.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations

import numpy as np
from lightgbm import LGBMClassifier
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from ml.catalog import BACKBONE_CHOICES
from ml.fusion import Combiner, out_of_fold_scores
from ml.identifiers import text_scores
from ml.keypoints import MIN_MATCHES, Features, keypoint_evidence, top_candidates

logger = logging.getLogger(__name__)

STRATEGIES: tuple[str, ...] = ("logreg", "lightgbm", "prototype")
# Tie-break when strategies score the same on holdout: fewest fitted parameters first (prototype has none to
# tune, logreg one linear layer, lightgbm hundreds of trees), because a tie on a small holdout says nothing
# about which generalises better and the simpler model overfits less.
SIMPLICITY_ORDER: tuple[str, ...] = ("prototype", "logreg", "lightgbm")
# 30 and 100 because the grocery-produce probe picks C of 128-512 on L2-normalised features
LOGREG_C_GRID: tuple[float, ...] = (0.1, 0.5, 2.0, 10.0, 30.0, 100.0)
LOGREG_FALLBACK_C = 2.0
PROTOTYPE_TEMPERATURE = 20.0
# Inner C search needs >=2 train and >=1 validation example per class, else C is guessed from noise.
_MIN_PER_CLASS_FOR_INNER_SPLIT = 3
_THRESHOLD_EPS = 1e-6
_PRECISION_TOL = 1e-12

Fitter = Callable[[np.ndarray, np.ndarray, int, dict | None], tuple[object, dict]]


# --------------------------------------------------------------------------------------------- splitting
def holdout_split(labels: Sequence[str], holdout_frac: float = 0.25, seed: int = 0) -> np.ndarray:
    """Stratified train/holdout assignment, returned as 'train'/'holdout' strings in the order of `labels`.

    Per class (visited in sorted order so the draw is deterministic for a seed): n_holdout =
    round(n * holdout_frac) clamped to [1, n - 1] when n >= 2, so every class can be both learnt and
    measured; a class with a single example goes to train, since a holdout-only tag could never be predicted.
    """
    if not 0.0 < holdout_frac < 1.0:
        raise ValueError(f"holdout_frac must be in (0, 1), got {holdout_frac}")
    labels_arr = np.asarray(list(labels))
    split = np.full(len(labels_arr), "train", dtype="<U7")
    rng = np.random.default_rng(seed)
    for label in np.unique(labels_arr):
        idx = np.flatnonzero(labels_arr == label)
        if len(idx) < 2:
            continue
        n_hold = min(len(idx) - 1, max(1, int(np.floor(len(idx) * holdout_frac + 0.5))))
        split[rng.permutation(idx)[:n_hold]] = "holdout"
    return split


# ------------------------------------------------------------------------------------------------ models
def photo_holdout_split(
    media_ids: Sequence[str], facets: Sequence[str], tags: Sequence[str], holdout_frac: float = 0.25, seed: int = 0
) -> np.ndarray:
    """'train'/'holdout' per (photo, facet, tag) row, holding a photo out in every facet it is labelled in.

    Why: a photo held out in one facet and trained on in another may not train a fine-tuned backbone (the
    holdout that compares backbones would have been seen), so per-facet splits of the same photos leave few
    photos to fine-tune on (41 % of the demo's). Here the facet with the most tags is split first, stratified
    (holdout_split); its photos keep that split in the other facets, whose remaining photos are split in turn.
    Then, per facet, every tag with two or more examples gets at least one in train and one in holdout, and a
    tag with one example is trained on, by moving a photo in that facet only (the exceptions).
    """
    media_ids, facets, tags = list(media_ids), list(facets), list(tags)
    if not len(media_ids) == len(facets) == len(tags):
        raise ValueError("media_ids, facets and tags differ in length")
    rows_of: dict[str, list[int]] = {}
    for i, facet in enumerate(facets):
        rows_of.setdefault(facet, []).append(i)
    order = sorted(rows_of, key=lambda f: (-len({tags[i] for i in rows_of[f]}), f))  # the finest facet first
    split = np.full(len(tags), "train", dtype="<U7")
    of_photo: dict[str, str] = {}
    rng = np.random.default_rng(seed)
    for k, facet in enumerate(order):
        rows = rows_of[facet]
        fresh = [i for i in rows if media_ids[i] not in of_photo]
        for i, s in zip(fresh, holdout_split([tags[i] for i in fresh], holdout_frac, seed + k), strict=True):
            of_photo.setdefault(media_ids[i], str(s))
        for i in rows:
            split[i] = of_photo[media_ids[i]]
        for tag in sorted({tags[i] for i in rows}):
            mine = [i for i in rows if tags[i] == tag]
            held = [i for i in mine if split[i] == "holdout"]
            if held and len(held) == len(mine):  # a tag never trained on could never be predicted
                split[rng.choice(held)] = "train"
            elif not held and len(mine) >= 2:  # nor one never measured be judged
                split[rng.choice(mine)] = "holdout"
    return split


def _l2_normalise(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, 1e-12)


class PrototypeClassifier:
    """Nearest class mean under cosine similarity; scores are softmax(cos * temperature).

    Why: with a few examples per tag the class mean is the lowest-variance estimate available and needs no
    tuning - it is the baseline the fitted heads have to beat. The temperature turns cosine gaps (small on
    the sphere) into usable probabilities, like CLIP's logit scale.
    """

    def __init__(self, temperature: float = PROTOTYPE_TEMPERATURE) -> None:
        self.temperature = float(temperature)

    def fit(self, X: np.ndarray, y: np.ndarray) -> PrototypeClassifier:
        X = np.asarray(X, dtype=np.float64)
        self.classes_ = np.unique(y)
        means = np.stack([X[y == c].mean(axis=0) for c in self.classes_])
        self.prototypes_ = _l2_normalise(means)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        logits = _l2_normalise(np.asarray(X, dtype=np.float64)) @ self.prototypes_.T * self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)


def _aligned_proba(model: object, X: np.ndarray, n_classes: int) -> np.ndarray:
    """Scores in head class order: estimators only know the integer codes they saw (`classes_`)."""
    proba = model.predict_proba(X)  # type: ignore[attr-defined]
    out = np.zeros((len(X), n_classes), dtype=np.float64)
    out[:, np.asarray(model.classes_, dtype=int)] = proba  # type: ignore[attr-defined]
    return out


def _accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_true == y_pred)) if len(y_true) else float("nan")


def _balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over classes present in y_true, so a holdout lacking a tag is scored on what it has."""
    present = np.unique(y_true)
    if len(present) == 0:
        return float("nan")
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in present]))


def _make_logreg(C: float) -> LogisticRegression:
    return LogisticRegression(C=C, solver="lbfgs", max_iter=2000, class_weight="balanced")


def _choose_logreg_c(X: np.ndarray, y: np.ndarray, seed: int) -> float:
    """C from an inner stratified split of train, as in the CLIP linear probe.

    Ranked by validation balanced accuracy, ties by lower log loss (prefers the C that is confidently right,
    which matters for the thresholds). Falls back to a fixed C when a class is too small to split.
    """
    if np.unique(y, return_counts=True)[1].min() < _MIN_PER_CLASS_FOR_INNER_SPLIT:
        return LOGREG_FALLBACK_C
    inner = holdout_split(y, holdout_frac=0.25, seed=seed)
    fit_mask = inner == "train"
    n_classes = int(y.max()) + 1
    best_key, best_c = None, LOGREG_FALLBACK_C
    for C in LOGREG_C_GRID:
        model = _make_logreg(C).fit(X[fit_mask], y[fit_mask])
        proba = _aligned_proba(model, X[~fit_mask], n_classes)
        y_val = y[~fit_mask]
        log_loss = float(-np.mean(np.log(np.clip(proba[np.arange(len(y_val)), y_val], 1e-15, 1.0))))
        key = (-_balanced_accuracy(y_val, proba.argmax(axis=1)), log_loss)
        if best_key is None or key < best_key:
            best_key, best_c = key, C
    return best_c


def _fit_logreg(X: np.ndarray, y: np.ndarray, seed: int, params: dict | None) -> tuple[object, dict]:
    params = dict(params) if params else {"C": _choose_logreg_c(X, y, seed)}
    return _make_logreg(params["C"]).fit(X, y), params


def _fit_lightgbm(X: np.ndarray, y: np.ndarray, seed: int, params: dict | None) -> tuple[object, dict]:
    """Small, sub-sampled trees on a PCA projection of the embedding.

    Trees on all 1280 dimensions cost minutes per facet with many tags (one tree per tag per round) and
    few-shot data cannot support them anyway; 64 principal components keep what separates the examples and
    make a fit take seconds. min_child_samples=2 lets a tag with two examples still get a leaf.
    """
    params = (
        dict(params)
        if params
        else {
            "n_components": 64,
            "n_estimators": 150,
            "learning_rate": 0.08,
            "num_leaves": 15,
            "min_child_samples": 2,
            "subsample": 0.8,
            "subsample_freq": 1,
            "colsample_bytree": 0.8,
            "max_bin": 63,
            "class_weight": "balanced",
        }
    )
    lgbm = {k: v for k, v in params.items() if k != "n_components"}
    components = max(1, min(params["n_components"], X.shape[0] - 1, X.shape[1]))
    model = make_pipeline(
        PCA(n_components=components, random_state=seed),
        LGBMClassifier(**lgbm, random_state=seed, n_jobs=1, verbose=-1),
    )
    return model.fit(X, y), params


def _fit_prototype(X: np.ndarray, y: np.ndarray, seed: int, params: dict | None) -> tuple[object, dict]:
    params = dict(params) if params else {"temperature": PROTOTYPE_TEMPERATURE}
    return PrototypeClassifier(params["temperature"]).fit(X, y), params


_FITTERS: dict[str, Fitter] = {"logreg": _fit_logreg, "lightgbm": _fit_lightgbm, "prototype": _fit_prototype}


# ---------------------------------------------------------------------------------------------- artefact
@dataclass
class StrategyResult:
    """Holdout score of one strategy fitted on train; kept in the head's metrics for the model card."""

    strategy: str
    accuracy: float
    balanced_accuracy: float
    n_holdout: int
    fit_seconds: float


@dataclass
class FacetHead:
    """The trained artefact of one facet: model, class order, per-tag thresholds and how it was chosen.

    `model` was fitted on integer codes into `classes`; always go through `predict_scores`, which puts the
    estimator's columns back into `classes` order.
    """

    facet: str
    strategy: str
    classes: list[str]
    model: object
    thresholds: dict[str, float]
    metrics: dict = field(default_factory=dict)
    # familiarity: cosine similarity to the nearest class mean of the examples. `min_familiarity` is the least
    # familiar holdout example's; a video frame below it (an empty room, a crowd, a title card) is unlike any
    # example, so nothing is recognised there, whatever the classifier's softmax says.
    prototypes: np.ndarray | None = None
    min_familiarity: float | None = None
    # combined heads ("<visual>+ocr", "+keypoints"): the learned combiner, the identifiers it matches OCR text
    # against and the examples' ORB features it matches photos against, per tag
    combiner: Combiner | None = None
    identifiers: dict[str, list[str]] | None = None
    # the chosen strategy's holdout predictions, in holdout row order: {true, predicted, score} (the
    # evaluation report's per-tag precision/recall and confusions; the caller may add media ids)
    holdout: list[dict] | None = None
    gallery: dict[str, list[tuple[str, Features]]] | None = None
    # the embeddings the head reads (a backbone's model id); set by the caller that chose the backbone
    model_id: str | None = None

    @property
    def channels(self) -> tuple[str, ...]:
        return self.combiner.channels if self.combiner is not None else ()

    @property
    def reads_text(self) -> bool:
        return "ocr" in self.channels

    @property
    def matches_keypoints(self) -> bool:
        return "keypoints" in self.channels

    def evidence(
        self,
        visual: np.ndarray,
        boxes: Sequence[Sequence[tuple[str, float]]] | None = None,
        features: Sequence[Features | None] | None = None,
    ) -> dict[str, np.ndarray]:
        """The evidence channels this head combines, from OCR boxes and ORB features of the same rows."""
        out: dict[str, np.ndarray] = {}
        if self.reads_text and boxes is not None:
            out["ocr"] = self.text_evidence(boxes)
        if self.matches_keypoints and features is not None and self.gallery:
            out["keypoints"] = keypoint_evidence(features, self.gallery, self.classes, top_candidates(visual))
        return out

    def text_evidence(self, boxes: Sequence[Sequence[tuple[str, float]]]) -> np.ndarray:
        """(n, len(classes)) text evidence from each row's OCR boxes (zeros for a head that reads no text)."""
        if self.identifiers is None:
            return np.zeros((len(boxes), len(self.classes)))
        return text_evidence(boxes, self.identifiers, self.classes)

    def familiarity(self, X: np.ndarray) -> np.ndarray:
        """(n,) cosine similarity of each row to the nearest class mean (1.0 everywhere when unknown)."""
        X = _as_matrix(X, "X")
        if self.prototypes is None or len(X) == 0:
            return np.ones(len(X), dtype=np.float32)
        return familiarity(self.prototypes, X)

    def familiar(self, X: np.ndarray) -> np.ndarray:
        """(n,) True where a row is at least as like the examples as the least familiar holdout example."""
        if self.min_familiarity is None:
            return np.ones(len(X), dtype=bool)
        return self.familiarity(X) >= self.min_familiarity

    def predict_scores(
        self,
        X: np.ndarray,
        boxes: Sequence[Sequence[tuple[str, float]]] | None = None,
        features: Sequence[Features | None] | None = None,
    ) -> np.ndarray:
        """(n, len(classes)) probabilities, rows summing to 1, columns in `classes` order.

        `boxes` (OCR) and `features` (ORB) of the same rows feed a combined head; without them it scores as
        if no text or keypoints were found (what it learnt for photos without readable print).
        """
        visual = self.visual_scores(X)
        return self.combine(visual, self.evidence(visual, boxes, features))

    def visual_scores(self, X: np.ndarray) -> np.ndarray:
        """(n, len(classes)) scores of the visual model alone."""
        X = _as_matrix(X, "X")
        if len(X) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float64)
        return _aligned_proba(self.model, X, len(self.classes))

    def combine(self, visual: np.ndarray, evidence: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """The head's scores from visual scores and evidence channels (the visual scores for a plain head)."""
        return visual if self.combiner is None or len(visual) == 0 else self.combiner.scores(visual, evidence)

    def predict(
        self,
        X: np.ndarray,
        boxes: Sequence[Sequence[tuple[str, float]]] | None = None,
        features: Sequence[Features | None] | None = None,
    ) -> list[tuple[str, float, str]]:
        """Top-1 per row as (tag_id, score, status); status 'applied' if score >= the tag's threshold."""
        scores = self.predict_scores(X, boxes, features)
        out: list[tuple[str, float, str]] = []
        for row, k in enumerate(scores.argmax(axis=1)):
            tag_id, score = self.classes[k], float(scores[row, k])
            out.append((tag_id, score, "applied" if score >= self.thresholds[tag_id] else "review"))
        return out


def predict_table(
    head: FacetHead,
    media_ids: Sequence[str],
    X: np.ndarray,
    boxes: Sequence[Sequence[tuple[str, float]]] | None = None,
    features: Sequence[Features | None] | None = None,
) -> list[dict]:
    """Top-1 prediction per media as rows ready for a table: {media_id, facet, tag_id, score, status}."""
    media_ids = list(media_ids)
    X = _as_matrix(X, "X")
    if len(media_ids) != len(X):
        raise ValueError(f"{len(media_ids)} media_ids but {len(X)} embedding rows")
    return [
        {"media_id": media_id, "facet": head.facet, "tag_id": tag_id, "score": score, "status": status}
        for media_id, (tag_id, score, status) in zip(media_ids, head.predict(X, boxes, features), strict=True)
    ]


def build_gallery(
    media_ids: Sequence[str], labels: Sequence[str], features: Sequence[Features | None], per_tag: int = 12
) -> dict[str, list[tuple[str, Features]]]:
    """{tag: [(media_id, features)]} of up to `per_tag` examples with enough keypoints to match."""
    gallery: dict[str, list[tuple[str, Features]]] = {}
    for media_id, label, f in zip(media_ids, labels, features, strict=True):
        if f is not None and len(f.desc) >= MIN_MATCHES and len(gallery.get(str(label), [])) < per_tag:
            gallery.setdefault(str(label), []).append((media_id, f))
    return gallery


def text_evidence(
    boxes: Sequence[Sequence[tuple[str, float]]], identifiers: Mapping[str, Sequence[str]], classes: Sequence[str]
) -> np.ndarray:
    """(n, len(classes)): per row, how well its OCR boxes show each tag's identifiers (ml/identifiers.py)."""
    out = np.zeros((len(boxes), len(classes)), dtype=np.float64)
    wanted = {c: identifiers.get(c, []) for c in classes}
    for i, row in enumerate(boxes):
        if row:
            found = text_scores(row, wanted)
            out[i] = [found.get(c, 0.0) for c in classes]
    return out


def class_means(X: np.ndarray, y: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """L2-normalised mean embedding per class, rows in `classes` order."""
    means = np.stack([X[y == c].mean(axis=0) for c in classes]).astype(np.float32)
    return means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)


def familiarity(prototypes: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of X to its nearest prototype."""
    Xn = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    return (Xn @ prototypes.T).max(axis=1).astype(np.float32)


# ------------------------------------------------------------------------------------------- calibration
def calibrate_thresholds(
    scores: np.ndarray,
    y_true: Sequence[str],
    classes: Sequence[str],
    target_precision: float = 0.9,
    floor: float = 0.0,
) -> dict[str, float]:
    """Per-tag score thresholds so that auto-applied tags reach `target_precision` on the holdout.

    Rule, per class c, over the holdout rows whose argmax is c (score = that row's top score):
    - candidate thresholds are the observed scores; a threshold t keeps every row with score >= t (ties are
      kept or dropped together). The threshold is the smallest t whose kept rows have precision >=
      target_precision - the lowest such t maximises recall. Precision need not be monotone in t; the rule
      still takes the lowest qualifying t.
    - if no t qualifies (the top-scored rows are wrong), the threshold is the highest score of a wrong
      prediction + 1e-6, capped at 1.0, so every score seen on a mistake goes to review.
    - if the holdout has no row predicted as c, there is no evidence: the threshold is target_precision,
      i.e. the score is trusted only as far as it would be as a calibrated probability. (0.5 would apply
      every prediction of a two-tag facet.)
    - a tag whose holdout predictions are all right has seen no mistake to set a threshold by: its own rule
      gives the lowest score it happened to get (with two holdout photos and a confident head, 0.99999).
      It gets the lower of that and the facet's threshold (the same rule over every row of the facet), so a
      few lucky photos do not send every later one to review. A tag with a mistake keeps its own threshold.
    Every threshold is then raised to at least `floor` and capped at 1.0.
    """
    scores = np.asarray(scores, dtype=np.float64)
    classes = list(classes)
    y_true = list(y_true)
    if scores.ndim != 2 or scores.shape != (len(y_true), len(classes)):
        raise ValueError(f"scores shape {scores.shape} != ({len(y_true)}, {len(classes)})")
    index = {c: k for k, c in enumerate(classes)}
    y_idx = np.array([index.get(y, -1) for y in y_true], dtype=int)
    pred = scores.argmax(axis=1) if len(y_true) else np.zeros(0, dtype=int)
    top = scores[np.arange(len(pred)), pred]
    correct = pred == y_idx
    thresholds: dict[str, float] = {}
    pooled = _class_threshold(top, correct, target_precision) if len(top) else target_precision
    for k, tag_id in enumerate(classes):
        mask = pred == k
        t = _class_threshold(top[mask], correct[mask], target_precision) if mask.any() else target_precision
        if mask.any() and correct[mask].all():
            t = min(t, pooled)
        thresholds[tag_id] = float(min(1.0, max(t, floor)))
    return thresholds


def _class_threshold(top: np.ndarray, correct: np.ndarray, target_precision: float) -> float:
    order = np.argsort(-top, kind="stable")
    top, correct = top[order], correct[order]
    precision = np.cumsum(correct) / np.arange(1, len(top) + 1)
    last_of_tie = np.r_[top[1:] != top[:-1], True]
    feasible = np.flatnonzero(last_of_tie & (precision >= target_precision - _PRECISION_TOL))
    if len(feasible):
        return float(top[feasible[-1]])
    return float(min(1.0, top[~correct].max() + _THRESHOLD_EPS))


# -------------------------------------------------------------------------------------------- training
def choose_strategy(results: Iterable[StrategyResult]) -> str:
    """Best holdout balanced accuracy; ties by accuracy, then by SIMPLICITY_ORDER (simplest first)."""

    def rank(r: StrategyResult) -> tuple[float, float, int]:
        # a combined head ranks after every plain one, and after combinations with fewer kinds of evidence
        simplicity = (
            SIMPLICITY_ORDER.index(r.strategy)
            if r.strategy in SIMPLICITY_ORDER
            else len(STRATEGIES) + r.strategy.count("+")
        )
        return (-_nan_to_neg(r.balanced_accuracy), -_nan_to_neg(r.accuracy), simplicity)

    results = list(results)
    if not results:
        raise ValueError("no strategy results to choose from")
    return min(results, key=rank).strategy


def choose_backbone(heads: Mapping[str, FacetHead], forced: str | None = None) -> str:
    """Of one facet's heads on different backbones ({"base": head, "finetuned": head}), the one best on the
    holdout (balanced accuracy, then accuracy); a tie keeps "base", which costs no training and keeps working
    when the examples change. `forced`: the catalog's choice."""
    if forced:
        return forced
    order = list(BACKBONE_CHOICES)
    return min(
        heads,
        key=lambda r: (
            -_nan_to_neg(heads[r].metrics["balanced_accuracy"]),
            -_nan_to_neg(heads[r].metrics["accuracy"]),
            order.index(r) if r in order else len(order),
        ),
    )


def _nan_to_neg(x: float) -> float:
    return -1.0 if np.isnan(x) else float(x)


def _as_matrix(X: np.ndarray, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n, d) embedding matrix, got shape {X.shape}")
    return X


def train_facet_head(
    facet: str,
    X_train: np.ndarray,
    y_train: Sequence[str],
    X_hold: np.ndarray,
    y_hold: Sequence[str],
    strategies: Sequence[str] = STRATEGIES,
    seed: int = 0,
    target_precision: float = 0.9,
    prototype_temperature: float = PROTOTYPE_TEMPERATURE,
    ocr_train: Sequence[Sequence[tuple[str, float]]] | None = None,
    ocr_hold: Sequence[Sequence[tuple[str, float]]] | None = None,
    identifiers: Mapping[str, Sequence[str]] | None = None,
    keypoints_train: Sequence[Features | None] | None = None,
    keypoints_hold: Sequence[Features | None] | None = None,
    ids_train: Sequence[str] | None = None,
    ids_hold: Sequence[str] | None = None,
    force: str | None = None,
) -> FacetHead:
    """Fit every strategy on train, keep the best on holdout, calibrate thresholds, refit on all data.

    Selection uses holdout balanced accuracy (ties: accuracy, then SIMPLICITY_ORDER) because facets are
    imbalanced and a head that ignores rare tags must not win on plain accuracy. Thresholds come from the
    chosen strategy's holdout predictions (the only unbiased scores available); the final model is the same
    strategy and hyper-parameters refitted on train+holdout, and keeps those thresholds.

    Evidence beyond the picture adds strategies: with OCR boxes (text, confidence) per example and the
    catalog's `identifiers` per tag, "<visual>+ocr"; with ORB features per example (and the examples'
    media ids), "<visual>+keypoints" (matched against the training examples of the visually likeliest tags);
    with both, "<visual>+keypoints+ocr". Each is the best visual head combined with that evidence by a
    learned combiner (ml/fusion.py) trained on out-of-fold visual scores. `force` picks a strategy by name
    instead of the best (the catalog's choice).

    Raises ValueError for a facet with fewer than two tags (nothing to learn), a train split with a single
    tag, an empty holdout, or an unknown strategy name.
    """
    X_train, X_hold = _as_matrix(X_train, "X_train"), _as_matrix(X_hold, "X_hold")
    y_train, y_hold = [str(y) for y in y_train], [str(y) for y in y_hold]
    if len(X_train) != len(y_train) or len(X_hold) != len(y_hold):
        raise ValueError("embedding rows and labels differ in length")
    if X_train.shape[1] != X_hold.shape[1]:
        raise ValueError(f"train dim {X_train.shape[1]} != holdout dim {X_hold.shape[1]}")
    classes = sorted(set(y_train) | set(y_hold))
    if len(classes) < 2:
        only = classes[0] if classes else "none"
        raise ValueError(f"facet {facet!r} has only one tag ({only}); a head needs at least two tags")
    if len(set(y_train)) < 2:
        raise ValueError(f"facet {facet!r} has only one tag in its train split; a head needs at least two")
    if not y_hold:
        raise ValueError(f"facet {facet!r} has an empty holdout; cannot choose a strategy or thresholds")
    strategies = list(dict.fromkeys(strategies))
    unknown = [s for s in strategies if s not in _FITTERS]
    if unknown or not strategies:
        raise ValueError(f"unknown or no strategies {unknown or strategies}; expected some of {STRATEGIES}")

    index = {c: k for k, c in enumerate(classes)}
    y_tr = np.array([index[y] for y in y_train], dtype=int)
    y_ho = np.array([index[y] for y in y_hold], dtype=int)
    start_params: dict[str, dict | None] = {"prototype": {"temperature": prototype_temperature}}

    results: dict[str, StrategyResult] = {}
    hold_scores: dict[str, np.ndarray] = {}
    params: dict[str, dict] = {}
    for strategy in strategies:
        started = time.perf_counter()
        model, params[strategy] = _FITTERS[strategy](X_train, y_tr, seed, start_params.get(strategy))
        fit_seconds = time.perf_counter() - started
        hold_scores[strategy] = _aligned_proba(model, X_hold, len(classes))
        y_pred = hold_scores[strategy].argmax(axis=1)
        results[strategy] = StrategyResult(
            strategy=strategy,
            accuracy=_accuracy(y_ho, y_pred),
            balanced_accuracy=_balanced_accuracy(y_ho, y_pred),
            n_holdout=len(y_ho),
            fit_seconds=fit_seconds,
        )
        logger.info(
            "facet %s: %s holdout acc=%.3f bal_acc=%.3f (fit %.2fs, params %s)",
            facet,
            strategy,
            results[strategy].accuracy,
            results[strategy].balanced_accuracy,
            fit_seconds,
            params[strategy],
        )

    if force and "+" in force and force.split("+")[0] in results:
        visual = force.split("+")[0]  # a forced combination names its visual head too
    else:
        visual = choose_strategy(results.values())
    # evidence beyond the picture, per channel: (train rows, holdout rows, which tags can have it)
    channels: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    oof: np.ndarray | None = None

    def fit_visual(Xa: np.ndarray, ya: np.ndarray):
        model, _ = _FITTERS[visual](Xa, ya, seed, params[visual])
        return lambda Xb: _aligned_proba(model, Xb, len(classes))

    started = time.perf_counter()
    if identifiers is not None and ocr_train is not None and ocr_hold is not None:
        has = np.array([bool(identifiers.get(c)) for c in classes])
        if has.any():
            train_ev, hold_ev = (
                text_evidence(ocr_train, identifiers, classes),
                text_evidence(ocr_hold, identifiers, classes),
            )
            channels["ocr"] = (train_ev, hold_ev, has)
    if keypoints_train is not None and keypoints_hold is not None and ids_train is not None:
        gallery = build_gallery(ids_train, y_train, keypoints_train)
        has = np.array([c in gallery for c in classes])
        if has.any():
            oof = out_of_fold_scores(fit_visual, X_train, y_tr, len(classes), seed)
            train_ev = keypoint_evidence(keypoints_train, gallery, classes, top_candidates(oof), exclude=ids_train)
            hold_ev = keypoint_evidence(keypoints_hold, gallery, classes, top_candidates(hold_scores[visual]))
            channels["keypoints"] = (train_ev, hold_ev, has)
    if channels and oof is None:
        oof = out_of_fold_scores(fit_visual, X_train, y_tr, len(classes), seed)
    names = sorted(channels)
    for size in range(1, len(names) + 1):
        for subset in combinations(names, size):
            # the learned combination of the picture and this evidence (ml/fusion.py), on the visual head
            combiner = Combiner({c: channels[c][2] for c in subset}).fit(oof, {c: channels[c][0] for c in subset}, y_tr)
            fused = combiner.scores(hold_scores[visual], {c: channels[c][1] for c in subset})
            name = "+".join((visual, *subset))
            hold_scores[name] = fused
            results[name] = StrategyResult(
                strategy=name,
                accuracy=_accuracy(y_ho, fused.argmax(axis=1)),
                balanced_accuracy=_balanced_accuracy(y_ho, fused.argmax(axis=1)),
                n_holdout=len(y_ho),
                fit_seconds=results[visual].fit_seconds + time.perf_counter() - started,
            )
            logger.info("facet %s: %s holdout acc=%.3f", facet, name, results[name].accuracy)
    if force is not None and force not in results:
        raise ValueError(f"facet {facet!r}: strategy {force!r} is not available here; evaluated: {sorted(results)}")
    chosen = force or choose_strategy(results.values())
    base, *used = chosen.split("+")
    thresholds = calibrate_thresholds(hold_scores[chosen], y_hold, classes, target_precision)
    all_codes = np.concatenate([y_tr, y_ho])
    final_model, _ = _FITTERS[base](np.vstack([X_train, X_hold]), all_codes, seed, params[base])
    combiner, final_gallery = None, None
    if used:  # refitted on every example: out-of-fold train scores and the holdout's
        combiner = Combiner({c: channels[c][2] for c in used}).fit(
            np.vstack([oof, hold_scores[visual]]), {c: np.vstack(channels[c][:2]) for c in used}, all_codes
        )
        if "keypoints" in used:
            final_gallery = build_gallery(
                list(ids_train) + list(ids_hold or []),
                list(y_train) + list(y_hold),
                list(keypoints_train) + list(keypoints_hold),
            )
    logger.info("facet %s: chose %s, refitted on %d examples", facet, chosen, len(y_tr) + len(y_ho))
    metrics = {
        "chosen": chosen,
        "forced": force is not None,
        "strategies": {name: asdict(result) for name, result in results.items()},
        "accuracy": results[chosen].accuracy,
        "balanced_accuracy": results[chosen].balanced_accuracy,
        "n_train": len(y_tr),
        "n_holdout": len(y_ho),
        "params": params[base],
        "target_precision": target_precision,
        **({"combiner_weights": combiner.weights()} if combiner is not None else {}),
    }
    # familiarity is calibrated like the thresholds: prototypes of the train split, measured on the holdout
    min_familiarity = float(familiarity(class_means(X_train, y_tr, np.unique(y_tr)), X_hold).min())
    prototypes = class_means(np.vstack([X_train, X_hold]), all_codes, np.unique(all_codes))
    metrics["min_familiarity"] = round(min_familiarity, 4)
    chosen_scores = hold_scores[chosen]
    holdout = [
        {"true": y, "predicted": classes[int(k)], "score": round(float(chosen_scores[i, k]), 4)}
        for i, (y, k) in enumerate(zip(y_hold, chosen_scores.argmax(axis=1), strict=True))
    ]
    return FacetHead(
        facet,
        chosen,
        classes,
        final_model,
        thresholds,
        metrics,
        prototypes,
        min_familiarity,
        combiner,
        {c: list(identifiers.get(c, [])) for c in classes} if "ocr" in used else None,
        holdout,
        final_gallery,
    )
