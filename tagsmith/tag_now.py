"""Tag one photo now, with the heads a library has in use: what the HTTP API's "tag this upload" calls.

A run tags a library's photos from the tables it wrote (assets_defs/tags/); a photo uploaded to the API is in
none of them, so `PhotoTagger` computes the same evidence for that one file (its vector with each head's own
backbone, its OCR boxes, its keypoints, a region head's detections) through the same functions the assets'
tasks use (ml/embedding.py model_input, ml/ocr.py ocr_picture, ml/keypoints.py photo_features,
ml/photo_tags.py) and scores it with the same code (ml/photo_tags.py, resources/tags_table.py). So the rows it
returns are the rows a run would write for that photo, retired tags left out and people's verdicts laid over.

Warm per library: heads, backbones, the OCR engine and the keypoint settings are loaded once, and loaded again
only when a file that decides them changed (the promotions table a run or a rollback rewrites, library.yaml,
the catalog, the verdict log): one `stat` per file per call. Thread-safe for the API's thread pool: a reload
swaps one immutable `_Loaded` under a lock (a call in flight finishes with what it started with);
onnxruntime sessions (the backbones) and OpenCV's matching are safe to call from several threads; the
RapidOCR engine is not documented as such, so each tagger's own engine is called under `_ocr_lock`.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from assets_defs.keypoints.assets import keypoint_spec
from assets_defs.ocr.assets import ocr_wanted
from ml.backbones import Backbone, cached_backbone
from ml.catalog import Catalog
from ml.embedding import embed_inputs, model_input
from ml.keypoints import KeypointSpec, photo_features
from ml.media import MediaProblem, open_image, sha256_bytes
from ml.ocr import OcrEngine, OcrSpec, ocr_picture, read_or_failure
from ml.photo_tags import joined, multi_tag_rows, pixel_tasks, reads_regions, single_tag_rows
from ml.sniff import HEAD_BYTES, sniff
from ml.word_marks import word_mark_detections
from resources import build_resources
from resources.backbone_plan import BackbonePlan
from resources.libraries import LibraryConfig, LibraryError
from resources.tags_table import people_labels, tags_table
from resources.verdicts import log_path

log = logging.getLogger(__name__)


class NotAPhoto(ValueError):
    """A file `tag` refuses before decoding it: not a photo, unreadable, or more pixels than the library allows."""


@dataclass(frozen=True)
class _Loaded:
    """Everything one version of a library's heads needs; replaced whole, never changed."""

    key: tuple
    config: LibraryConfig
    catalog: Catalog
    heads: dict  # {facet: (version, head)}
    model_of: dict[str, str]  # {facet: the model id of the backbone its head was trained on}
    backbones: dict[str, Backbone]  # {model id: built backbone}
    ocr: OcrEngine | None  # None: no head in use reads text, or the library reads none
    keypoints: KeypointSpec | None  # None: no head in use matches keypoints, or the library extracts none
    labels: pl.DataFrame  # people's labels (resources/tags_table.py)
    names: dict[str, str]  # {tag_id: display name}


class _OneFile:
    """A MediaReader over the bytes already read: region tasks see exactly the bytes that were hashed."""

    def __init__(self, data: bytes):
        self.data = data

    def open(self, uri: str):
        return io.BytesIO(self.data)

    def read(self, uri: str) -> bytes:
        return self.data


class PhotoTagger:
    """The heads of one library in use, warm, tagging one photo file at a time (`tag`)."""

    def __init__(self, library: str, res: Mapping | None = None):
        self.library = library
        self.res = res if res is not None else build_resources()
        self._reload_lock = threading.Lock()
        self._ocr_lock = threading.Lock()
        self._loaded = self._load(self._key())

    # ------------------------------------------------------------------------------------------ loading
    def _key(self) -> tuple:
        """What decides the loaded heads: the files a run, a rollback, a catalog or a review rewrites."""
        libraries, warehouse = self.res["libraries"], self.res["warehouse"]
        folder = libraries.dir(self.library)
        paths = [
            warehouse.table_path(self.library, "head_promotions"),
            folder / "library.yaml",
            folder / "catalog.yaml",
            folder / "catalog.csv",
            log_path(folder),
        ]
        return tuple(_stamp(p) for p in paths)

    def current(self) -> _Loaded:
        """The loaded heads, loaded again first when a file that decides them changed since."""
        key = self._key()
        if key != self._loaded.key:
            with self._reload_lock:
                if key != self._loaded.key:  # another thread may have reloaded meanwhile
                    self._loaded = self._load(key)
        return self._loaded

    def _load(self, key: tuple) -> _Loaded:
        libraries, warehouse, model_store = self.res["libraries"], self.res["warehouse"], self.res["model_store"]
        library = self.library
        config = libraries.config(library)
        catalog = libraries.catalog(library)
        promotions = warehouse.read(library, "head_promotions").filter(pl.col("promoted"))
        promoted = dict(promotions.select("facet", "version").iter_rows())
        if not promoted:
            raise LibraryError(f"library {library!r} has no heads in use yet: `tagsmith run {library}` first")
        heads = {f: (v, model_store.load_head(library, f, v)) for f, v in sorted(promoted.items())}
        plan = BackbonePlan(config, model_store, warehouse, library)
        base = plan.library_model_id()
        model_of = {f: head.model_id or base for f, (_, head) in heads.items()}
        name_of = {model_id: name for name, model_id in plan.candidate_models().values()}
        unknown = sorted(set(model_of.values()) - set(name_of))
        if unknown:
            raise LibraryError(
                f"library {library!r}: a head in use reads backbone {unknown[0]}, which is no longer one of its "
                f"candidates (a fine-tuned backbone of an earlier training set?): `tagsmith run {library}` first"
            )
        backbones = {m: cached_backbone(plan.spec(name=name_of[m])) for m in sorted(set(model_of.values()))}
        for _, head in heads.values():
            if reads_regions(head) and head.uses_crops:
                cached_backbone(head.crop_spec)  # built here, once, not by two threads at once in `tag`
        single = [h for _, h in heads.values() if not getattr(h, "multi", False)]
        regional = [h for _, h in heads.values() if reads_regions(h)]
        reads_text = any(h.reads_text for h in single) or any(h.uses_text for h in regional)
        # as a run: no OCR rows when the library reads no text (its heads then get no boxes), and the same for
        # keypoints (assets_defs/ocr, assets_defs/keypoints)
        ocr = None
        if reads_text and ocr_wanted(config.ocr, warehouse.read(library, "catalog")):
            ocr = OcrEngine(OcrSpec())
        spec = keypoint_spec(config)
        matching = spec is not None and any(h.matches_keypoints for h in single)
        return _Loaded(
            key=key,
            config=config,
            catalog=catalog,
            heads=heads,
            model_of=model_of,
            backbones=backbones,
            ocr=ocr,
            keypoints=spec if matching else None,
            labels=people_labels(libraries.dir(library), catalog),
            names={t.tag_id: t.name for t in catalog.tags},
        )

    # ------------------------------------------------------------------------------------------ tagging
    def read_photo(self, path: str | Path, max_pixels: int | None) -> bytes:
        """The file's bytes once they are known to be a photo of at most `max_pixels` (header only: nothing is
        decoded); NotAPhoto with one line otherwise."""
        path = Path(path)
        try:
            with path.open("rb") as stream:
                head = stream.read(HEAD_BYTES)
                found = sniff(head)
                if found.kind != "image":
                    raise NotAPhoto(f"{path.name} is not a photo: {found.what}")
                data = head + stream.read()
        except OSError as exc:
            raise NotAPhoto(f"{path.name} cannot be read: {exc.strerror or exc}") from None
        try:
            open_image(data, max_pixels).close()
        except MediaProblem as exc:
            raise NotAPhoto(f"{path.name}: {exc.reason}") from None
        return data

    def tag(self, path: str | Path) -> list[dict]:
        """The `tags` rows a run would write for the photo at `path` (each with its media_id: the sha256 of its
        bytes), plus each tag's display `name` and the `threshold` its head applies it at."""
        return self.tagged(path)["tags"]

    def tagged(self, path: str | Path) -> dict:
        """{media_id, tags}: `tag`'s rows and the photo's media_id (also when no head tagged it)."""
        loaded = self.current()
        data = self.read_photo(path, loaded.config.max_pixels)
        media_id = sha256_bytes(data)
        try:
            rows = self._score(loaded, media_id, data)
        except MediaProblem as exc:  # the header was fine, the pixels are not (a truncated file)
            raise NotAPhoto(f"{Path(path).name}: {exc.reason}") from None
        table = tags_table(rows, loaded.catalog, loaded.labels, [media_id]).table
        out = []
        for row in table.sort("facet", "score", descending=[False, True], nulls_last=True).to_dicts():
            head = loaded.heads.get(row["facet"], (None, None))[1]
            threshold = head.thresholds.get(row["tag_id"]) if head is not None else None
            out.append({**row, "name": loaded.names.get(row["tag_id"]), "threshold": threshold})
        return {"media_id": media_id, "tags": out}

    def _score(self, loaded: _Loaded, media_id: str, data: bytes) -> list[dict]:
        vectors = {m: embed_inputs(b, [model_input(b, data)]) for m, b in loaded.backbones.items()}
        boxes, text_rows = [], []
        if loaded.ocr is not None:
            picture = ocr_picture(data)
            with self._ocr_lock:
                read, failure = read_or_failure(loaded.ocr, picture)
            if failure is not None:  # as a run does (ml/ocr.py ocr_chunk): tagged without its text
                log.warning("OCR failed on %s, tagged without its text: %s", media_id, failure)
            boxes = [(b.text, b.confidence) for b in read]
            text_rows = [(b.text, b.confidence, list(b.box), picture.width, picture.height) for b in read]
        features = photo_features(data, loaded.keypoints) if loaded.keypoints is not None else None
        rows = []
        for facet, (version, head) in loaded.heads.items():
            X = vectors[loaded.model_of[facet]]
            if getattr(head, "multi", False):
                found = {media_id: self._detections(head, data, text_rows)} if reads_regions(head) else {}
                rows += multi_tag_rows(head, version, found, [media_id], X)
            else:
                rows += single_tag_rows(
                    head,
                    version,
                    [media_id],
                    X,
                    [boxes] if head.reads_text else None,
                    [features] if head.matches_keypoints else None,
                )
        return rows

    def _detections(self, head, data: bytes, text_rows: list) -> list:
        results = [task(*args)[0] for _, task, args in pixel_tasks(head, ["upload"], _OneFile(data))]
        if head.uses_text:
            results.append(word_mark_detections(text_rows, head.identifiers))
        found = joined(results)
        if isinstance(found, str):
            raise MediaProblem(found)
        return found


def _stamp(path: Path) -> tuple | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_mtime_ns, stat.st_size)
