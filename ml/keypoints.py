"""Local features: ORB or RootSIFT keypoints matched to the examples, verified geometrically (RANSAC homography).

Why: printed packaging and logos are flat and textured; two photos of the same print share many keypoints
that one homography maps onto each other, while a look-alike with a different print or badge shares fewer.
That is evidence the whole-image embedding averages away. RANSAC keeps only matches consistent with one
plane, so repeated texture does not count.

ORB is the default, RootSIFT (`KeypointSpec(kind="rootsift")`, Arandjelovic & Zisserman 2012) the option: SIFT
descriptors L1-normalised then square-rooted, so that their Euclidean distance is the Hellinger kernel's,
matched by FLANN (KD-tree) with the same ratio test and RANSAC. The matcher follows the descriptors: uint8 ->
brute-force Hamming, float32 -> FLANN. ORB because it runs for every photo of the library: on 2 shared cores
(benchmarks/keypoints.py) it extracts in 2.5 ms per 320 px photo against RootSIFT's 19, stores 12 KB per
photo against 152 KB, and matches a photo against 5 tags x 12 examples in 0.17 s against 0.26 s; RootSIFT
fused with the picture was no better on grocery-produce (0.751 vs 0.752 top-1), a little better on the
demo's look-alikes (22 vs 19 of 32).

Descriptors are computed once per photo (asset `keypoints`, cached by media_id) and matched at training and
tagging time against each tag's examples, only for the few tags the picture already finds likely.

Pure ML code: no Dagster, no Ray.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ml.media import LocalFiles, MediaProblem, MediaReader, decode_image

RATIO = 0.8  # Lowe's ratio test
MIN_MATCHES = 8  # fewer good matches cannot support a homography
SATURATION = 15.0  # evidence = inliers / (inliers + SATURATION): 15 inliers is even odds
KINDS = ("orb", "rootsift")
DESC_SHAPE = {"orb": (32, np.uint8), "rootsift": (128, np.float32)}  # per keypoint: length, dtype
FLANN_INDEX = {"algorithm": 1, "trees": 4}  # 1: randomised KD-trees
FLANN_SEARCH = {"checks": 32}


@dataclass(frozen=True)
class KeypointSpec:
    n_features: int = 300
    size: int = 320  # longest side the detector sees (photos are shrunk, never enlarged)
    kind: str = "orb"  # "orb" or "rootsift"; each has its own model id, so cached features never mix

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"keypoint kind {self.kind!r} is not one of {KINDS}")

    @property
    def model_id(self) -> str:
        import cv2

        key = f"{self.kind}|{cv2.__version__}|{self.n_features}|{self.size}"  # ORB's key predates `kind`
        return f"{self.kind}@{hashlib.sha256(key.encode()).hexdigest()[:8]}"


@dataclass
class Features:
    xy: np.ndarray  # (k, 2) float32 keypoint positions
    desc: np.ndarray  # (k, 32) uint8 ORB or (k, 128) float32 RootSIFT descriptors

    def to_bytes(self) -> tuple[bytes, bytes]:
        dtype = np.float32 if self.desc.dtype.kind == "f" else np.uint8
        return self.xy.astype(np.float32).tobytes(), self.desc.astype(dtype).tobytes()

    @classmethod
    def from_bytes(cls, xy: bytes, desc: bytes) -> Features:
        """The kind is told by the bytes per keypoint (32: ORB, 512: RootSIFT), so stored rows need no column."""
        points = np.frombuffer(xy, np.float32).reshape(-1, 2)
        per_point = len(desc) // len(points) if len(points) else 32
        for length, dtype in DESC_SHAPE.values():
            if per_point == length * np.dtype(dtype).itemsize:
                return cls(points, np.frombuffer(desc, dtype).reshape(-1, length))
        raise ValueError(f"{len(desc)} descriptor bytes for {len(points)} keypoints: neither ORB nor RootSIFT")


def root_sift(desc: np.ndarray) -> np.ndarray:
    """RootSIFT: each SIFT descriptor L1-normalised, then square-rooted (L2-unit, non-negative, float32)."""
    desc = np.maximum(desc.astype(np.float32), 0.0)
    desc /= np.maximum(desc.sum(axis=1, keepdims=True), 1e-7)
    return np.sqrt(desc)


def extract(image: Image.Image, spec: KeypointSpec = KeypointSpec()) -> Features:
    import cv2

    gray = image.convert("L")
    scale = min(1.0, spec.size / max(gray.size))
    if scale < 1.0:
        gray = gray.resize((max(1, round(gray.width * scale)), max(1, round(gray.height * scale))), Image.BILINEAR)
    if spec.kind == "rootsift":
        detector = cv2.SIFT_create(nfeatures=spec.n_features)
    else:
        detector = cv2.ORB_create(nfeatures=spec.n_features)
    points, desc = detector.detectAndCompute(np.asarray(gray), None)
    length, dtype = DESC_SHAPE[spec.kind]
    if desc is None or not points:
        return Features(np.zeros((0, 2), np.float32), np.zeros((0, length), dtype))
    return Features(np.array([p.pt for p in points], np.float32), root_sift(desc) if spec.kind == "rootsift" else desc)


def knn_pairs(a: np.ndarray, b: np.ndarray) -> list:
    """Two nearest neighbours in b of each descriptor of a: Hamming for binary ORB, FLANN for float RootSIFT."""
    import cv2

    if a.dtype != b.dtype:
        raise ValueError(f"cannot match {a.dtype} descriptors against {b.dtype} ones (ORB vs RootSIFT)")
    if a.dtype == np.uint8:
        return cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(a, b, k=2)
    return cv2.FlannBasedMatcher(FLANN_INDEX, FLANN_SEARCH).knnMatch(a, b, k=2)


def inliers(a: Features, b: Features) -> int:
    """Matches between two photos that one homography explains (0 when there are too few to tell)."""
    import cv2

    if len(a.desc) < 2 or len(b.desc) < 2:
        return 0
    pairs = knn_pairs(a.desc, b.desc)
    good = [m for m, n in (p for p in pairs if len(p) == 2) if m.distance < RATIO * n.distance]
    if len(good) < MIN_MATCHES:
        return 0
    src = a.xy[[m.queryIdx for m in good]].reshape(-1, 1, 2)
    dst = b.xy[[m.trainIdx for m in good]].reshape(-1, 1, 2)
    _, mask = cv2.findHomography(src, dst, cv2.RANSAC, 5.0)
    return int(mask.sum()) if mask is not None else 0


def keypoint_evidence(
    queries: Sequence[Features | None],
    gallery: Mapping[str, Sequence[tuple[str, Features]]],
    classes: Sequence[str],
    candidates: np.ndarray,
    exclude: Sequence[str | None] | None = None,
) -> np.ndarray:
    """(n, len(classes)): per row, inliers / (inliers + 15) against the best example of each candidate tag.

    `gallery[tag]` is [(media_id, features)] of the tag's examples; `candidates[i]` the class indices to
    check for row i (the visually likeliest: matching every tag would cost tags x examples per photo);
    `exclude[i]` a media_id not to match row i against (itself, when scoring the training examples).
    """
    out = np.zeros((len(queries), len(classes)), dtype=np.float64)
    for i, query in enumerate(queries):
        if query is None or len(query.desc) < 2:
            continue
        skip = exclude[i] if exclude is not None else None
        for k in candidates[i]:
            best = max((inliers(query, f) for m, f in gallery.get(classes[k], ()) if m != skip), default=0)
            out[i, k] = best / (best + SATURATION)
    return out


def top_candidates(scores: np.ndarray, k: int = 5) -> np.ndarray:
    """(n, min(k, C)) class indices of each row's k best scores."""
    k = min(k, scores.shape[1])
    return np.argsort(-scores, axis=1)[:, :k]


@dataclass
class KeypointChunkResult:
    rows: list[dict] = field(default_factory=list)  # {media_id, n, xy, desc}
    errors: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def photo_features(data: bytes, spec: KeypointSpec) -> Features:
    """A photo's features from its bytes, decoded at the detector's size: the `keypoints` asset and the one-photo
    tagger (tagsmith/tag_now.py) both come here, so a photo tagged now matches as it would in a run."""
    return extract(decode_image(data, draft_size=spec.size), spec)


def keypoints_chunk(
    spec: KeypointSpec, items: list[tuple[str, str]], reader: MediaReader = LocalFiles()
) -> KeypointChunkResult:
    """Local features of (media_id, uri) photos: the Ray unit of work; undecodable photos are reported."""
    result = KeypointChunkResult()
    for media_id, uri in items:
        try:
            data = reader.read(uri)
            t = time.perf_counter()
            features = photo_features(data, spec)
        except (MediaProblem, OSError) as exc:
            result.errors.append({"media_id": media_id, "uri": uri, "reason": getattr(exc, "reason", str(exc))})
            continue
        result.seconds += time.perf_counter() - t
        xy, desc = features.to_bytes()
        result.rows.append({"media_id": media_id, "n": len(features.desc), "xy": xy, "desc": desc})
    return result
