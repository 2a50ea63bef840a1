"""Small logos in busy photos: which tags' logos a photo shows, and where (a box per instance).

Why: a sponsor's logo on a shirt or a banner covers 1-5 % of the frame, rotated, seen at an angle, partly
hidden, on clutter; the whole-image embedding does not see it. Local features do: the logo's keypoints, found
again in the photo, that one homography maps from an example onto the photo (ml/keypoints.py's evidence, here
per (tag, example) pair and with the homography kept, so that it also says where the logo is).

- `LogoIndex.build(examples, spec)`: per tag, the keypoints of each example (a logo at 10-40 % of the frame, on
  its own background). Each example is matched against the other examples of its tag; the extent of the
  keypoints that a homography confirms is the example's logo region, and only keypoints inside it are kept
  (an example alone in its tag keeps all of them, and its boxes are the hull of the matched points).
- `detect(index, photo)`: the photo's keypoints at a working size of 1280 px on its long side (enlarged up to
  2x: a small logo needs the pixels), each reference keypoint's two nearest photo keypoints in one search,
  Lowe's ratio test, RANSAC homography per (tag, example); a homography counts only if it is sane (finite,
  not mirrored, projected region convex and of plausible size and shape, inliers spread over the logo); the
  box is the projected logo region. Score inliers / (inliers + 15) as in ml/keypoints.py; detections
  overlapping a stronger one (any tag) are suppressed.
- `proposals(width, height)`: square sliding windows at several scales, for crops a later step embeds.

RootSIFT, not ORB (ml/keypoints.py's default for whole photos): precision first, and 3x faster here. Figures
from benchmarks/regions.py (6 tags x 12 examples; 40 generated 640x480 photos, 10 without a logo, 58 logos at
1.5-4 % of the frame, turned up to 30 degrees, tilted up to 30 %, 12 of them with a third of their box hidden,
about one photo in five with a look-alike of ACME; right = right tag and box IoU >= 0.5; 2 shared cores, load
about 2):

    kind      s/photo  build s  ref keypoints  threshold  precision  recall (hidden, clear)  mean IoU  empty photos
    orb        1.15      5.9       56,744         0.4       0.919    0.983 (1.00, 0.978)       0.81     0 detections
    rootsift   0.40      5.8        9,052         0.4       0.980    0.862 (0.42, 0.978)       0.77     0 detections
    rootsift                                      0.3       0.963    0.897 (0.58, 0.978)
    rootsift                                      0.5       0.978    0.776 (0.00, 0.978)

Those rows grew each example's logo region by 5 % on every side. Without the margin (`region_pad` 0, the
default since), the logo region keeps fewer background keypoints and the boxes fit:

    rootsift   0.34      5.7        7,549         0.4       1.000    0.897 (0.50, 1.000)       0.74     0 detections
    rootsift                                      0.3       0.981    0.914 (0.58, 1.000)
    rootsift                                      0.5       1.000    0.793 (0.00, 1.000)

ORB finds more inliers (most logos 80-200 against RootSIFT's 17-35) and so the hidden logos too, but the
look-alike (same plate, shape and colours, another word) reaches 18-29 ORB inliers against ACME's examples,
while true logos start at 11: no ORB threshold is both precise and as sensitive. RootSIFT gives the look-alike
under 10 inliers. RootSIFT's misses are the hidden logos (7 of its 8): a third of the box of a turned card hides
about half of it, the word with it, and the shape alone is not enough.

Pure ML code: no orchestration, no cluster; OpenCV and numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ml.keypoints import DESC_SHAPE, SATURATION, Features, KeypointSpec, extract, knn_pairs

Box = tuple[float, float, float, float]  # x, y, w, h; normalised to the photo unless said otherwise
FLANN_INDEX = {"algorithm": 1, "trees": 4}  # randomised KD-trees over the photo's RootSIFT descriptors
FLANN_CHECKS = 64
FLANN_SEED = 0


@dataclass(frozen=True)
class RegionSpec:
    kind: str = "rootsift"  # "rootsift" or "orb" (ml/keypoints.py's extractors)
    photo_size: int = 1280  # long side the photo is brought to
    max_enlarge: float = 2.0  # a small photo is enlarged at most this much
    photo_features: int = 6000  # strongest keypoints kept per photo
    example_size: int = 640
    example_enlarge: float = 1.0  # an example is enlarged at most this much
    example_features: int = 3000  # per example, before the crop to its logo region
    ratio: float = 0.8  # Lowe's ratio test
    min_matches: int = 8  # fewer matches cannot support a homography
    reproj_px: float = 5.0  # RANSAC inlier distance, in pixels of the working photo
    threshold: float = 0.4  # score = inliers / (inliers + 15): 10 inliers
    nms_iou: float = 0.3  # a detection overlapping a stronger one this much is dropped (any tag)
    nms_cover: float = 0.7  # ... or lying this much inside it (intersection over the smaller box)
    max_anisotropy: float = 6.0  # singular values' ratio of the homography's local affine part
    min_area: float = 0.0005  # projected region's share of the photo
    max_area: float = 0.6
    min_spread: float = 0.1  # inliers' hull / logo region (clumped inliers do not fix a homography)
    region_pad: float = 0.0  # the logo region grown by this share of its size on each side (0.05: loose boxes)

    def __post_init__(self) -> None:
        if self.kind not in DESC_SHAPE:
            raise ValueError(f"keypoint kind {self.kind!r} is not one of {tuple(DESC_SHAPE)}")


@dataclass(frozen=True)
class Detection:
    tag_id: str
    score: float  # inliers / (inliers + 15), in [0, 1)
    box: Box  # normalised to the photo
    inliers: int


@dataclass
class Reference:
    """One example of a tag: its keypoints and its logo region (4 corners, example pixels; None: unknown)."""

    tag_id: str
    features: Features
    region: np.ndarray | None


@dataclass
class LogoIndex:
    spec: RegionSpec
    references: list[Reference]
    desc: np.ndarray = field(init=False)  # every reference's descriptors, stacked
    ends: np.ndarray = field(init=False)  # reference i owns desc[ends[i-1]:ends[i]]

    def __post_init__(self) -> None:
        length, dtype = DESC_SHAPE[self.spec.kind]
        parts = [r.features.desc for r in self.references]
        self.desc = np.concatenate(parts) if parts else np.zeros((0, length), dtype)
        self.ends = np.cumsum([len(p) for p in parts], dtype=np.int64)

    @property
    def tags(self) -> list[str]:
        return sorted({r.tag_id for r in self.references})

    @classmethod
    def build(
        cls, examples: Mapping[str, Sequence[Image.Image | np.ndarray]], spec: RegionSpec = RegionSpec()
    ) -> LogoIndex:
        references = []
        for tag_id, images in examples.items():
            feats = [
                extract_at(as_image(i), spec.example_size, spec.example_features, spec.kind, spec.example_enlarge)[0]
                for i in images
            ]
            for i, own in enumerate(feats):
                region = logo_region(own, [f for j, f in enumerate(feats) if j != i], spec)
                if region is not None:
                    own = inside(own, region)
                references.append(Reference(tag_id, own, region))
        return cls(spec, references)


def as_image(picture: Image.Image | np.ndarray) -> Image.Image:
    if isinstance(picture, Image.Image):
        return picture
    array = np.asarray(picture)
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    return Image.fromarray(array)


def extract_at(image: Image.Image, size: int, n_features: int, kind: str, max_enlarge: float) -> tuple[Features, float]:
    """Keypoints of the image brought to `size` px on its long side (enlarged at most `max_enlarge`x); and the scale."""
    scale = min(size / max(image.size), max_enlarge)
    if scale != 1.0:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.BICUBIC)
    return extract(image, KeypointSpec(n_features=n_features, size=max(image.size), kind=kind)), scale


def ratio_matches(a: Features, b: Features, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices (into a, into b) of a's keypoints whose nearest in b passes the ratio test."""
    if len(a.desc) < 1 or len(b.desc) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pairs = [p for p in knn_pairs(a.desc, b.desc) if len(p) == 2 and p[0].distance < ratio * p[1].distance]
    return np.array([m.queryIdx for m, _ in pairs], np.int64), np.array([m.trainIdx for m, _ in pairs], np.int64)


def homography(src: np.ndarray, dst: np.ndarray, reproj_px: float) -> tuple[np.ndarray | None, np.ndarray]:
    """RANSAC homography src -> dst and its inlier mask (None and no inliers when it cannot be had)."""
    import cv2

    if len(src) < 4:
        return None, np.zeros(len(src), bool)
    H, mask = cv2.findHomography(
        src.reshape(-1, 1, 2).astype(np.float32),
        dst.reshape(-1, 1, 2).astype(np.float32),
        cv2.RANSAC,
        reproj_px,
        maxIters=2000,
        confidence=0.995,
    )
    if H is None or mask is None:
        return None, np.zeros(len(src), bool)
    return H, mask.ravel().astype(bool)


def corners(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)


def logo_region(own: Features, others: Sequence[Features], spec: RegionSpec) -> np.ndarray | None:
    """The extent of the keypoints of `own` that a sane homography maps onto another example of the same tag."""
    confirmed = []
    for other in others:
        qi, ti = ratio_matches(own, other, spec.ratio)
        if len(qi) < spec.min_matches:
            continue
        H, mask = homography(own.xy[qi], other.xy[ti], spec.reproj_px)
        if H is not None and distinct(own.xy[qi][mask], other.xy[ti][mask]) >= 2 * spec.min_matches:
            confirmed.append(own.xy[qi][mask])
    if not confirmed:
        return None
    return padded_rectangle(np.concatenate(confirmed), spec.region_pad)


def padded_rectangle(points: np.ndarray, pad: float) -> np.ndarray:
    """The smallest rotated rectangle around the points (examples show the logo a little turned), grown by
    `pad` of its size on each side; its 4 corners in the orientation of `corners` (positive area)."""
    import cv2

    rect = np.asarray(cv2.boxPoints(cv2.minAreaRect(points.astype(np.float32))), np.float64)
    center = rect.mean(axis=0)
    rect = center + (rect - center) * (1 + 2 * pad)
    return rect if polygon_area(rect) > 0 else rect[::-1].copy()


def inside(features: Features, region: np.ndarray) -> Features:
    """The keypoints inside the convex region (or on its edge)."""
    edges = np.roll(region, -1, axis=0) - region
    rel = features.xy[:, None, :] - region[None, :, :]
    cross = edges[None, :, 0] * rel[:, :, 1] - edges[None, :, 1] * rel[:, :, 0]
    keep = (cross >= 0).all(axis=1)  # left of every edge, for positive-area corners in image coordinates
    return Features(features.xy[keep], features.desc[keep])


def distinct(src: np.ndarray, dst: np.ndarray) -> int:
    """Inliers counted once per position on each side (SIFT repeats a point per orientation; many-to-one matches)."""
    if len(src) == 0:
        return 0
    return min(len(np.unique(np.round(src), axis=0)), len(np.unique(np.round(dst), axis=0)))


def polygon_area(points: np.ndarray) -> float:
    """Signed area (shoelace): positive for the orientation of `corners`, in image coordinates."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def hull_area(points: np.ndarray) -> float:
    import cv2

    if len(points) < 3:
        return 0.0
    return float(cv2.contourArea(cv2.convexHull(points.astype(np.float32))))


def project(H: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """points (n, 2) through H; None where a point crosses the horizon (w <= 0)."""
    w = points @ H[2, :2] + H[2, 2]
    if (w <= 1e-9).any():
        return None
    return (points @ H[:2, :2].T + H[:2, 2]) / w[:, None]


def sane_quad(H: np.ndarray, region: np.ndarray, photo_area: float, spec: RegionSpec) -> np.ndarray | None:
    """The region projected by H if the homography is geometrically plausible for a flat logo, else None."""
    import cv2

    if not np.isfinite(H).all() or abs(H[2, 2]) < 1e-12:
        return None
    H = H / H[2, 2]
    quad = project(H, region)
    if quad is None or not np.isfinite(quad).all():
        return None
    area = polygon_area(quad)
    if area <= 0 or not spec.min_area <= area / photo_area <= spec.max_area:  # mirrored, or too small / large
        return None
    if not cv2.isContourConvex(quad.astype(np.float32).reshape(-1, 1, 2)):
        return None
    center = region.mean(axis=0)
    step = max(1.0, float(np.ptp(region, axis=0).max()) / 20)
    moved = project(H, np.array([center, center + (step, 0.0), center + (0.0, step)]))
    if moved is None:
        return None
    jacobian = np.stack([moved[1] - moved[0], moved[2] - moved[0]], axis=1) / step
    s = np.linalg.svd(jacobian, compute_uv=False)
    if s[1] <= 1e-9 or s[0] / s[1] > spec.max_anisotropy:  # collapsed or sheared beyond a view of a flat print
        return None
    sides = np.linalg.norm(quad - np.roll(quad, -1, axis=0), axis=1)
    if (
        sides.min() <= 1e-9
        or max(sides[0] / sides[2], sides[2] / sides[0], sides[1] / sides[3], sides[3] / sides[1]) > 4.0
    ):
        return None
    return quad


def nearest_two(queries: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query descriptor: index of its nearest train descriptor, that distance, and the second nearest's."""
    import cv2

    if queries.dtype == np.uint8:
        pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(queries, train, k=2)
        nn = np.array([p[0].trainIdx for p in pairs], np.int64)
        d = np.array([(p[0].distance, p[1].distance) for p in pairs], np.float64).reshape(-1, 2)
        return nn, d[:, 0], d[:, 1]
    # FLANN draws its KD-trees' split dimensions from OpenCV's RNG (per thread): seeded here, so a photo searched
    # twice (a run, then `tag now`; a rerun) gets the same neighbours, hence the same boxes and scores
    cv2.setRNGSeed(FLANN_SEED)
    index = cv2.flann_Index(np.ascontiguousarray(train, np.float32), FLANN_INDEX)
    idx, dist = index.knnSearch(np.ascontiguousarray(queries, np.float32), 2, params={"checks": FLANN_CHECKS})
    d = np.sqrt(np.maximum(dist.astype(np.float64), 0.0))  # FLANN's L2 distances are squared
    return idx[:, 0].astype(np.int64), d[:, 0], d[:, 1]


def detect(index: LogoIndex, photo: Image.Image | np.ndarray, threshold: float | None = None) -> list[Detection]:
    """Every indexed logo found in the photo, strongest first, after suppression of overlapping weaker ones.

    One homography per (tag, example): the same logo twice in a photo gives a reference keypoint two close
    photo neighbours, which the ratio test rejects, so a second instance is found only through examples that
    match it clearly better (both instances found in 2 of 3 generated photos; a known limit).
    """
    spec = index.spec
    threshold = spec.threshold if threshold is None else threshold
    image = as_image(photo)
    feats, scale = extract_at(image, spec.photo_size, spec.photo_features, spec.kind, spec.max_enlarge)
    if len(feats.desc) < 2 or len(index.desc) == 0:
        return []
    nn, d1, d2 = nearest_two(index.desc, feats.desc)
    passed = d1 < spec.ratio * d2
    width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))  # the working photo
    found = []
    begin = 0
    for ref, end in zip(index.references, index.ends, strict=True):
        rows = np.flatnonzero(passed[begin:end])  # the reference's own keypoints whose match passed
        nearest, begin = nn[rows + begin], end
        if len(rows) < spec.min_matches:
            continue
        src, dst = ref.features.xy[rows], feats.xy[nearest]
        H, mask = homography(src, dst, spec.reproj_px)
        count = distinct(src[mask], dst[mask]) if H is not None else 0
        if count < spec.min_matches:
            continue
        (x0, y0), (x1, y1) = src[mask].min(axis=0), src[mask].max(axis=0)
        region = ref.region if ref.region is not None else corners(x0, y0, x1, y1)
        if hull_area(src[mask]) < spec.min_spread * abs(polygon_area(region)):
            continue
        quad = sane_quad(H, region, width * height, spec)
        if quad is None:
            continue
        qx0, qy0 = np.clip(quad.min(axis=0), 0, (width, height))
        qx1, qy1 = np.clip(quad.max(axis=0), 0, (width, height))
        box = (qx0 / width, qy0 / height, (qx1 - qx0) / width, (qy1 - qy0) / height)
        score = count / (count + SATURATION)
        if score >= threshold and box[2] > 0 and box[3] > 0:
            found.append(Detection(ref.tag_id, float(score), tuple(float(v) for v in box), count))
    return suppress(found, spec.nms_iou, spec.nms_cover)


def suppress(detections: Sequence[Detection], max_iou: float, max_cover: float) -> list[Detection]:
    """Non-maximum suppression across tags: strongest first, dropping any that overlap a kept one."""
    kept: list[Detection] = []
    for det in sorted(detections, key=lambda d: (-d.score, d.tag_id)):
        if all(box_iou(det.box, k.box) <= max_iou and box_cover(det.box, k.box) <= max_cover for k in kept):
            kept.append(det)
    return kept


def intersection(a: Box, b: Box) -> float:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0.0, w) * max(0.0, h)


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes; 0 when both are empty."""
    inter = intersection(a, b)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def box_cover(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area: 1 when one lies inside the other."""
    smaller = min(a[2] * a[3], b[2] * b[3])
    return intersection(a, b) / smaller if smaller > 0 else 0.0


def proposals(width: int, height: int, scales: Sequence[float] = (0.25, 0.5, 1.0), overlap: float = 0.5) -> list[Box]:
    """Square sliding windows, side = scale x the photo's short side, overlapping `overlap` of a side with the next.

    Normalised (x, y, w, h), every scale covering the whole frame: the last window of a row or column is moved
    flush with the edge rather than left hanging over it. Boxes of all scales, smallest first, row by row.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"photo size {width}x{height} is empty")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap {overlap} is not in [0, 1)")
    boxes: list[Box] = []
    for scale in sorted(scales):
        if not 0.0 < scale <= 1.0:
            raise ValueError(f"scale {scale} is not in (0, 1]")
        side = scale * min(width, height)
        stride = side * (1.0 - overlap)
        xs, ys = window_starts(width, side, stride), window_starts(height, side, stride)
        boxes += [(x / width, y / height, side / width, side / height) for y in ys for x in xs]
    return boxes


def window_starts(length: float, side: float, stride: float) -> list[float]:
    n = max(1, int(np.ceil((length - side) / stride - 1e-9)) + 1)
    return [min(i * stride, length - side) for i in range(n)]
