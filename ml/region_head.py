"""The head of a multi facet: any number of its tags on a photo, each where it is, or none of them.

A multi facet (sponsor, products in event photos, inventory: ml/catalog.py's `mode: multi`) is recognised by
two channels, each scored per (photo, tag):

- `regions`: the facet's example photos as a logo index (ml/regions.py): keypoints that one homography maps
  from an example onto the photo. It finds a logo at 1-5 % of the frame, rotated, tilted, partly hidden, and
  says where it is (the box). Its score is inliers / (inliers + 15), from 0.35 (8 inliers, the fewest that
  fix a homography) up.
- `whole`: per-tag binary heads on the whole photo's embedding (ml/multilabel.py), for what fills the photo
  (a sofa in a lounge): no box.

Three strategies are compared on the group-aware holdout: each channel alone and both fused (a tag's score is
the higher of the two). The examples are cut into folds by group (ml/splits.py: a shoot, session or look-alike
cluster never on both sides); each fold's photos are scored by an index and heads built from the other folds,
so every example photo gets an out-of-fold score, and photos labelled `none` (explicit negatives) and other
tags' photos are the negatives. Per-tag thresholds come from these scores with ml/multilabel.py's rule (the
Wilson lower bound of precision reaches the facet's `target_precision`, 0.95 for sponsors, and at most 5 % of
the `none` photos get a tag), each then lowered to the bottom of the gap the holdout cannot see into
(`lowest_in_gap`: a new photo's small logo scores lower than an example's large one). A strategy must beat
the simpler one by `MARGIN` in exact-set accuracy to be chosen (regions, then whole, then both). The head in
use is then built from every example.

Scores under a tag's threshold but above the channel's floor are candidates sent to review; photos where no
channel sees anything get no row at all ("none of them" is an answer).

Pure ML code: no Dagster, no Ray (the caller maps `fold_task` and `detect_task` over its workers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ml.backbones import BackboneSpec
from ml.keypoints import SATURATION
from ml.media import MediaProblem, MediaReader, decode_image
from ml.multilabel import CANDIDATE, MultiLabelHead
from ml.regions import Detection, LogoIndex, RegionSpec, detect

# by cost, the simplest first (it wins ties); "+ocr": word marks OCR read (already paid for where OCR runs)
STRATEGIES = ("regions", "regions+ocr", "whole", "crops", "regions+whole", "regions+crops")
MARGIN = 0.02  # exact-set accuracy a costlier strategy must add
FOLDS = 4
DECODE_SIDE = 1280  # photos are decoded at about this long side (ml/regions.py works at 1280 px)


def region_floor(spec: RegionSpec) -> float:
    """The lowest score a detection can have: `min_matches` inliers."""
    return spec.min_matches / (spec.min_matches + SATURATION)


def floor_of(strategy: str, spec: RegionSpec) -> float:
    return region_floor(spec) if "regions" in strategy else CANDIDATE


@dataclass(frozen=True)
class MultiExample:
    media_id: str
    uri: str
    labels: frozenset[str]  # the facet's tags the photo shows; empty for a `none` example
    group: str


@dataclass
class RegionHead:
    """A multi facet's head; `strategy` is one of STRATEGIES."""

    facet: str
    classes: list[str]
    strategy: str
    thresholds: dict[str, float]
    spec: RegionSpec
    index: LogoIndex | None = None  # regions (None: the strategy reads the whole photo only)
    whole: MultiLabelHead | None = None  # whole-photo binary heads (None: regions only)
    crop_head: MultiLabelHead | None = None  # the same kind of heads on windows (ml/crop_channel.py)
    crop_spec: BackboneSpec | None = None  # the backbone that embeds the windows
    identifiers: dict[str, list[str]] | None = None  # per tag its word marks (ml/word_marks.py; None: no OCR)
    metrics: dict = field(default_factory=dict)
    holdout: list[dict] = field(default_factory=list)  # per example photo: truth, out-of-fold scores, applied
    model_id: str | None = None  # the backbone the whole-photo heads read
    multi = True
    reads_text = False  # no OCR or whole-photo keypoint evidence: regions carry their own keypoints
    matches_keypoints = False

    @property
    def uses_regions(self) -> bool:
        return self.index is not None

    @property
    def uses_crops(self) -> bool:
        return self.crop_head is not None

    @property
    def uses_text(self) -> bool:
        return self.identifiers is not None

    def tag_rows(self, detections: Sequence[Detection] | None, vector: np.ndarray | None) -> list[dict]:
        """Rows {tag_id, score, status, box} for one photo: a tag whose score reaches its threshold is `applied`,
        one above the floor goes to `review`; the box is the tag's best detection (None: the whole photo)."""
        best: dict[str, Detection] = {}
        for d in detections or []:
            if d.tag_id in self.thresholds and (d.tag_id not in best or d.score > best[d.tag_id].score):
                best[d.tag_id] = d
        whole = (
            dict(zip(self.whole.tags, self.whole.scores(vector[None, :])[0], strict=True))
            if (self.whole is not None and vector is not None)
            else {}
        )
        rows = []
        for tag in self.classes:
            found = best.get(tag)
            region = found.score if found else 0.0
            score = max(region, float(whole.get(tag, 0.0)))
            if score < floor_of(self.strategy, self.spec):
                continue
            status = "applied" if score >= self.thresholds[tag] else "review"
            box = list(found.box) if found and region >= score else None
            rows.append({"tag_id": tag, "score": float(score), "status": status, "box": box})
        return sorted(rows, key=lambda r: -r["score"])


def load_picture(reader: MediaReader, uri: str):
    return decode_image(reader.read(uri), DECODE_SIDE)


def build_index(examples: Mapping[str, Sequence[str]], reader: MediaReader, spec: RegionSpec) -> LogoIndex:
    """The logo index of {tag: example uris}; an example that cannot be decoded is left out."""
    pictures: dict[str, list] = {}
    for tag, uris in examples.items():
        for uri in uris:
            try:
                pictures.setdefault(tag, []).append(load_picture(reader, uri))
            except MediaProblem:
                continue  # the examples step quarantined it with its reason
    return LogoIndex.build(pictures, spec)


def detect_task(index: LogoIndex, uris: Sequence[str], reader: MediaReader, floor: float) -> list:
    """Per uri, its detections at or above `floor`, or the reason it could not be read (a str)."""
    out: list = []
    for uri in uris:
        try:
            out.append(detect(index, load_picture(reader, uri), floor))
        except (MediaProblem, OSError) as exc:
            out.append(f"cannot read: {exc}")
    return out


def detect_video_task(index: LogoIndex, uri: str, timestamps: Sequence[float], reader: MediaReader, floor: float):
    """[(ts, detections)] at the video's sampled frames, or the reason it could not be read (a str)."""
    from ml.video import open_video  # PyAV/decord load only where videos are read

    try:
        video = open_video(uri, media=reader)
    except MediaProblem as exc:
        return f"cannot read: {exc.reason}"
    try:
        wanted = sorted(timestamps)
        out = []
        for frame in video.frames_at(wanted):
            ts = min(wanted, key=lambda t, at=frame.ts: abs(t - at))  # the sampled stamp the frame stands for
            out.append((ts, detect(index, frame.image, floor)))
        return out
    except MediaProblem as exc:
        return f"cannot read: {exc.reason}"
    finally:
        video.close()
