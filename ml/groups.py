"""Which example photos belong together: shoots, sessions and near-copies, so no holdout is fooled by them.

Photos of one shoot (burst shots, the same carton seconds apart) are near-copies: a holdout that puts one shoot
on both sides of the split measures how well the model recognises a photo it has nearly seen (0.95 on
grocery-produce) instead of the next shoot (0.74). So every example gets a *group*, and ml/splits.py never
puts one group on both sides.

Where a group comes from, strongest first:
- the manifest's optional `group` column (shoot, session, date: the team knows best); when given, it is the
  group of that photo and nothing is derived for it;
- otherwise links between photos, joined transitively (union-find):
  - a sub-folder that holds examples of two or more tags of one facet is a shoot folder (a folder holding one
    tag's examples, as in a folder-per-tag layout, says nothing about shoots and links nothing);
  - the same EXIF capture date and camera (one session);
  - runs of consecutive file numbers in one folder (IMG_0412, IMG_0413 ...; a gap of more than RUN_GAP
    numbers ends a run);
  - near-copies: photos with the same tags whose embeddings have cosine similarity >= NEAR_COPY.
- a tag whose photos all lie in one shoot has no second shoot to hold out. With 2 x CLUSTER_SIZE photos or
  more they are cut into look-alike clusters (Ward linkage of its embeddings, about CLUSTER_SIZE photos each;
  near-copies always in one cluster) and whole clusters are held out: the closest a single shoot gets to
  "photos unlike the ones trained on". With fewer, clusters of two or three would hold out whole variants (a
  colourway, a shot type) the tag has one photo of, so only near-copies are kept together. Either way its
  figures are flagged as optimistic in the report.

Why Ward clusters of about 8: on grocery-produce (a folder per tag, no metadata: every tag is "one group"),
holding out whole Ward clusters of ~8 per tag gave holdout top-1 0.724 +- 0.03 against 0.717 for the same
model on the test session (a random split: 0.95 against 0.74; clusters of 3: 0.86; average linkage is
unstable, one giant cluster per tag). Measured in benchmarks/trust.py, which prints the promise beside
the test photos.

Pure ML code: no Dagster, no Ray.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
from PIL import Image
from scipy.cluster.hierarchy import fcluster, linkage

NEAR_COPY = 0.95  # cosine similarity of L2-normalised embeddings: no two photos of different tags reach 0.90
RUN_GAP = 3  # file numbers further apart than this start a new run
CLUSTER_SIZE = 8  # photos per look-alike cluster of a single-group tag
_NUMBER = re.compile(r"^(.*?)(\d+)$")

# where a group came from (the `group_kind` column of `examples`)
KINDS = ("manifest", "shoot", "copy", "cluster", "photo")


@dataclass(frozen=True)
class PhotoFacts:
    """What is known of one example photo before grouping."""

    media_id: str
    uri: str
    labels: tuple[tuple[str, str], ...]  # ((facet, tag_id), ...) sorted
    group: str | None = None  # the manifest's `group`
    session: str | None = None  # EXIF capture date and camera, "2026-05-04|Canon EOS R6"


def exif_session(data: bytes) -> str | None:
    """ "<capture date>|<make model>" from a photo's EXIF, or None when it has no capture date."""
    try:
        exif = Image.open(io.BytesIO(data)).getexif()
    except (OSError, ValueError, SyntaxError):  # unreadable EXIF is no session, never a failure
        return None
    taken = exif.get_ifd(0x8769).get(0x9003) or exif.get(0x0132)  # DateTimeOriginal, else DateTime
    if not taken or not isinstance(taken, str):
        return None
    camera = " ".join(str(exif.get(tag, "")).strip("\x00 ") for tag in (0x010F, 0x0110)).strip()
    return f"{taken.strip()[:10].replace(':', '-')}|{camera}"


class _Links:
    """Union-find over photo indices."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, members: Sequence[int]) -> None:
        for other in members[1:]:
            a, b = self.find(members[0]), self.find(other)
            if a != b:
                self.parent[max(a, b)] = min(a, b)


def _folder_and_number(uri: str) -> tuple[str, str, int | None]:
    path = PurePosixPath(uri.replace("\\", "/"))
    match = _NUMBER.match(path.stem)
    return str(path.parent), (match.group(1) if match else path.stem), int(match.group(2)) if match else None


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def near_copy_pairs(vectors: np.ndarray, same: Sequence[object], threshold: float = NEAR_COPY) -> list[tuple[int, int]]:
    """(i, j) pairs, i < j, with cosine similarity >= threshold and equal `same` keys; in blocks, so a large
    training set never builds its whole similarity matrix."""
    X = _normalised(vectors)
    ids: dict[object, int] = {}
    keys = np.array([ids.setdefault(k, len(ids)) for k in same])
    pairs = []
    for start in range(0, len(X), 1024):
        block = X[start : start + 1024] @ X.T
        rows, cols = np.nonzero(block >= threshold)
        for i, j in zip(rows + start, cols, strict=True):
            if i < j and keys[i] == keys[j]:
                pairs.append((int(i), int(j)))
    return pairs


def shoot_groups(photos: Sequence[PhotoFacts], vectors: np.ndarray | None = None) -> list[str]:
    """The group of every photo: "manifest:<group>", else the linked set it belongs to, "shoot:<id>" when some
    link says "same shoot" (folder, session, run of numbers) and "copy:<id>" when only near-copies (or nothing)
    link it: a set of look-alikes is not a shoot, and says nothing about how many shoots a tag has."""
    n = len(photos)
    links = _Links(n)
    derived = [i for i, p in enumerate(photos) if not p.group]
    by_manifest: dict[str, list[int]] = {}
    for i, p in enumerate(photos):
        if p.group:
            by_manifest.setdefault(p.group, []).append(i)
    for members in by_manifest.values():
        links.join(members)
    folders: dict[str, list[int]] = {}
    sessions: dict[str, list[int]] = {}
    numbered: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for i in derived:
        folder, prefix, number = _folder_and_number(photos[i].uri)
        folders.setdefault(folder, []).append(i)
        if photos[i].session:
            sessions.setdefault(photos[i].session, []).append(i)
        if number is not None:
            numbered.setdefault((folder, prefix), []).append((number, i))
    informed = [bool(p.group) for p in photos]  # in a link that says "same shoot" (not only "looks the same")

    def link(members: Sequence[int]) -> None:
        if len(members) >= 2:
            links.join(members)
            for i in members:
                informed[i] = True

    shoot_folders = set()
    for folder, members in folders.items():
        per_facet: dict[str, set[str]] = {}
        for i in members:
            for facet, tag in photos[i].labels:
                per_facet.setdefault(facet, set()).add(tag)
        if any(len(tags) >= 2 for tags in per_facet.values()):
            shoot_folders.add(folder)
            link(members)
    for members in sessions.values():
        link(members)
    for (folder, _), numbers in numbered.items():
        numbers.sort()
        runs, run = [], [numbers[0][1]]
        for (a, _), (b, j) in zip(numbers, numbers[1:], strict=False):
            if b - a > RUN_GAP:
                runs.append(run)
                run = []
            run.append(j)
        runs.append(run)
        # one run over a whole folder of one tag is how an export numbers files, not how a camera does
        if len(runs) > 1 or folder in shoot_folders:
            for run in runs:
                link(run)
    if vectors is not None and derived:
        sub = np.asarray(vectors)[derived]
        for a, b in near_copy_pairs(sub, [photos[i].labels for i in derived]):
            links.join([derived[a], derived[b]])
    informed_root = {links.find(i) for i in range(n) if informed[i]}
    out = []
    for i, p in enumerate(photos):
        root = links.find(i)
        kind = "shoot" if root in informed_root else "copy"  # copy: near-copies only, or a photo alone
        out.append(f"manifest:{p.group}" if p.group else f"{kind}:{photos[root].media_id}")
    return out


def holdout_units(
    photos: Sequence[PhotoFacts], groups: Sequence[str], vectors: np.ndarray | None, cluster_size: int = CLUSTER_SIZE
) -> tuple[list[str], list[str], dict[tuple[str, str], int]]:
    """(unit per photo, its kind per photo, {(facet, tag): number of shoots}).

    A unit is what a holdout keeps together: the photo's group, except for the photos of a tag with fewer than
    two shoots (manifest or shoot groups; near-copy sets do not count), which are cut into look-alike clusters
    (finest facet first: a photo clustered for its product is not cut again for its colourway). Without vectors
    those photos are their own units ("photo")."""
    groups = list(groups)
    units = list(groups)
    kinds = [g.split(":", 1)[0] for g in groups]
    of_tag: dict[tuple[str, str], list[int]] = {}
    for i, p in enumerate(photos):
        for label in p.labels:
            of_tag.setdefault(label, []).append(i)
    n_groups = {
        label: len({groups[i] for i in members if not groups[i].startswith("copy:")})
        for label, members in of_tag.items()
    }
    tags_per_facet: dict[str, int] = {}
    for facet, _ in of_tag:
        tags_per_facet[facet] = tags_per_facet.get(facet, 0) + 1
    cut: set[int] = set()
    X = _normalised(vectors) if vectors is not None else None
    for label in sorted(of_tag, key=lambda fl: (-tags_per_facet[fl[0]], fl)):
        if n_groups[label] >= 2:
            continue
        members = [i for i in of_tag[label] if i not in cut]
        if not members:
            continue
        cut.update(members)
        if X is None:
            for i in members:
                units[i], kinds[i] = f"photo:{photos[i].media_id}", "photo"
            continue
        links = _Links(len(members))
        clustered = len(members) >= 2 * cluster_size
        if clustered:
            clusters = fcluster(linkage(X[members], "ward"), round(len(members) / cluster_size), criterion="maxclust")
            for c in np.unique(clusters):
                links.join(list(np.flatnonzero(clusters == c)))
        for a, b in near_copy_pairs(X[members], [0] * len(members)):  # near-copies stay together whatever Ward did
            links.join([a, b])
        kind = "cluster" if clustered else "copy"
        for local, i in enumerate(members):
            root = members[links.find(local)]
            units[i], kinds[i] = f"{kind}:{label[0]}/{label[1]}/{photos[root].media_id}", kind
    return units, kinds, n_groups
