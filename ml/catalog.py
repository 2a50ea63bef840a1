"""Catalog and example manifests: parsed, validated, and refused with every problem listed by line.

Validation happens before any expensive work (hashing, embedding): a team fixing a 2,000-line PIM export
wants all of its problems at once, each with its line number, not one per run.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ml.catalog_facets import MODE_BY_FACET, PRECISION_BY_FACET, facet_settings
from ml.catalog_names import names_column, parse_names
from ml.media import IMAGE_SUFFIXES  # one list of photo extensions (HEIC and AVIF too) for example folders
from ml.search_text import tag_search_text

SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class ValidationError(ValueError):
    """A file with problems; `problems` holds one human-readable line each ("catalog.csv:12: ...")."""

    def __init__(self, what: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"{what} refused, {len(problems)} problem(s):\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class CatalogTag:
    tag_id: str
    facet: str
    name: str
    aliases: tuple[str, ...] = ()
    identifiers: tuple[str, ...] = ()
    attributes: dict = field(default_factory=dict, hash=False, compare=False)
    # no longer recognised: kept in the catalog (and its table) so history keeps its name, its examples are left
    # out of training and no head predicts it; taking it out of the file instead would orphan its examples
    retired: bool = False
    # display names by language code (ml/catalog_names.py): {"fr": "Veste Aurore", "ja": "オーロラシェル"}
    names: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    def as_row(self) -> dict:
        return {
            "tag_id": self.tag_id,
            "facet": self.facet,
            "name": self.name,
            "aliases": list(self.aliases),
            "identifiers": list(self.identifiers),
            "attributes": yaml.safe_dump(self.attributes, allow_unicode=True) if self.attributes else "",
            "retired": self.retired,
            "names": names_column(self.names),
            # what sql/search.sql matches, folded like a query (ml/search_text.py)
            "search_text": tag_search_text(
                self.tag_id, self.name, self.aliases, self.identifiers, self.names.values()
            ),
        }


# a tag taken out of the catalog while examples still name it: what to do instead, said where it is refused
BOOL_WORDS = {"": False, "true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}
RETIRE_HINT = " (to stop recognising a tag, keep it in the catalog with `retired: true`: its history stays)"
NONE_TAG = "none"  # reserved: an example of a multi facet that shows none of its tags (an explicit negative)


@dataclass(frozen=True)
class Catalog:
    tags: tuple[CatalogTag, ...]
    # per facet: {"strategy": name, "backbone": one of BACKBONE_CHOICES} forces the head's strategy / backbone
    # instead of the holdout's best; "target_precision" overrides the library's for the facet (YAML `facets:`)
    facet_settings: dict = field(default_factory=dict, hash=False, compare=False)

    def target_precision(self, facet: str, library_default: float) -> float:
        """The precision the facet's thresholds are calibrated for: the catalog's `facets:` setting, else the
        facet's default (PRECISION_BY_FACET), else the library's `target_precision`."""
        setting = (self.facet_settings.get(facet) or {}).get("target_precision")
        return float(setting if setting is not None else PRECISION_BY_FACET.get(facet, library_default))

    def mode(self, facet: str) -> str:
        """`multi` or `single`: the catalog's `facets:` setting, else the facet's default (MODE_BY_FACET)."""
        return (self.facet_settings.get(facet) or {}).get("mode") or MODE_BY_FACET.get(facet, "single")

    def multi_facets(self) -> list[str]:
        return [f for f in self.facets() if self.mode(f) == "multi"]

    def forced_strategy(self, facet: str) -> str | None:
        return (self.facet_settings.get(facet) or {}).get("strategy")

    def forced_backbone(self, facet: str) -> str | None:
        return (self.facet_settings.get(facet) or {}).get("backbone")

    def by_id(self) -> dict[str, CatalogTag]:
        return {t.tag_id: t for t in self.tags}

    def retired(self) -> set[str]:
        """The tag_ids marked `retired: true`: kept for history, never trained on or predicted."""
        return {t.tag_id for t in self.tags if t.retired}

    def facets(self) -> list[str]:
        return sorted({t.facet for t in self.tags})


def _as_list(value) -> tuple[str, ...]:
    """Aliases/identifiers: a YAML list, or a CSV cell separated by '|' or ';'."""
    if value is None or value == "":
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(p.strip() for p in re.split(r"[|;]", str(value)) if p.strip())


def _as_bool(value) -> bool | None:
    """`retired`: a YAML boolean, or in a CSV cell true/false (yes/no, 1/0, empty = false); None: neither."""
    if value is None or isinstance(value, bool):
        return bool(value)
    return BOOL_WORDS.get(value.strip().lower()) if isinstance(value, str) else None


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


def parse_catalog(text: str, source: str = "catalog") -> Catalog:
    """Parse a catalog from YAML (`tags:` list, or a bare list) or CSV (header tag_id,facet,name,...)."""
    records, facet_node = _catalog_records(text, source)
    problems: list[str] = []
    tags: list[CatalogTag] = []
    seen: dict[str, int] = {}
    for line, rec in records:
        where = f"{source}:{line}"
        if not isinstance(rec, dict):
            problems.append(f"{where}: expected a mapping with tag_id, facet, name; got {rec!r}")
            continue
        tag_id = _nfc(str(rec.get("tag_id") or ""))
        facet = _nfc(str(rec.get("facet") or ""))
        name = _nfc(str(rec.get("name") or "")) or tag_id
        if not tag_id:
            problems.append(f"{where}: missing tag_id")
        elif not SLUG.match(tag_id):
            problems.append(f"{where}: tag_id {tag_id!r} must be a lowercase slug (a-z, 0-9, '-', '_', '.')")
        elif tag_id == NONE_TAG:
            problems.append(f"{where}: tag_id 'none' is reserved: it labels examples that show none of a facet's tags")
        if not facet:
            problems.append(f"{where}: missing facet")
        elif not SLUG.match(facet):
            problems.append(f"{where}: facet {facet!r} must be a lowercase slug")
        if tag_id in seen:
            problems.append(f"{where}: duplicate tag_id {tag_id!r} (first on line {seen[tag_id]})")
            continue
        seen[tag_id] = line
        attributes = rec.get("attributes") or {}
        if not isinstance(attributes, dict):
            problems.append(f"{where}: attributes must be a mapping")
            attributes = {}
        names = parse_names(rec, where, problems)
        retired = _as_bool(rec.get("retired"))
        if retired is None:
            problems.append(f"{where}: retired {rec.get('retired')!r} must be true or false")
        tags.append(
            CatalogTag(
                tag_id=tag_id,
                facet=facet,
                name=name,
                aliases=tuple(_nfc(a) for a in _as_list(rec.get("aliases"))),
                identifiers=tuple(_nfc(a) for a in _as_list(rec.get("identifiers"))),
                attributes=attributes,
                retired=bool(retired),
                names=names,
            )
        )
    if not records:
        problems.append(f"{source}: no tags")
    settings = facet_settings(facet_node, {t.facet for t in tags}, source, problems)
    if problems:
        raise ValidationError(source, problems)
    return Catalog(tuple(tags), settings)


def _catalog_records(text: str, source: str) -> list[tuple[int, object]]:
    if source.lower().endswith(".csv") or (text.lstrip().lower().startswith("tag_id") and "," in text[:200]):
        reader = csv.DictReader(io.StringIO(text))
        return [(i + 2, row) for i, row in enumerate(reader)], None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise ValidationError(source, [f"{source}: not valid YAML or CSV: {exc}"]) from exc
    if node is None:
        return [], None
    facets = None
    if isinstance(node, yaml.MappingNode):
        items = [v for k, v in node.value if k.value == "tags"]
        facets = next((v for k, v in node.value if k.value == "facets"), None)
        if not items:
            raise ValidationError(source, [f"{source}: a YAML catalog needs a top-level 'tags:' list"])
        node = items[0]
    if not isinstance(node, yaml.SequenceNode):
        raise ValidationError(source, [f"{source}: expected a list of tags"])
    return [(item.start_mark.line + 1, loader.construct_object(item, deep=True)) for item in node.value], facets


def load_catalog(path: Path) -> Catalog:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(str(path), [f"{path}: not UTF-8 ({exc})"]) from exc
    return parse_catalog(text, source=str(path))


@dataclass(frozen=True)
class Example:
    uri: str
    tag_id: str
    facet: str
    line: int
    source: str = "import"
    group: str | None = None  # the manifest's shoot / session / date: photos the holdout keeps together


def parse_examples_manifest(path: Path, catalog: Catalog) -> list[Example]:
    """`path,tag_id[,facet][,group]` CSV; paths relative to the manifest's folder (or absolute, or s3://).

    `group` (optional) names the shoot, session or day a photo comes from: the holdout never puts one group on
    both sides (ml/groups.py derives groups where it is empty)."""
    path = Path(path)
    tags = catalog.by_id()
    problems: list[str] = []
    examples: list[Example] = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(str(path), [f"{path}: cannot read: {exc}"]) from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = {"path", "tag_id"} - set(reader.fieldnames or [])
    if missing:
        need = f"{path}:1: header needs columns path,tag_id[,facet][,group]; missing {sorted(missing)}"
        raise ValidationError(str(path), [need])
    multi = catalog.multi_facets()
    seen: dict[tuple[str, str], dict[str, int]] = {}  # (photo, facet) -> {tag: line}
    for i, row in enumerate(reader):
        line = i + 2
        where = f"{path}:{line}"
        raw_path = (row.get("path") or "").strip()
        tag_id = _nfc(row.get("tag_id") or "")
        facet = _nfc(row.get("facet") or "")
        if not raw_path:
            problems.append(f"{where}: empty path")
            continue
        uri = raw_path if raw_path.startswith("s3://") else str((path.parent / raw_path).resolve())
        if not uri.startswith("s3://") and not Path(uri).is_file():
            problems.append(f"{where}: file not found: {raw_path}")
        if tag_id == NONE_TAG:
            facet, problem = _none_facet(facet, multi)
            if problem:
                problems.append(f"{where}: {problem}")
                continue
        else:
            tag = tags.get(tag_id)
            if tag is None:
                problems.append(f"{where}: unknown tag_id {tag_id!r}{RETIRE_HINT}")
                continue
            if facet and facet != tag.facet:
                problems.append(f"{where}: tag {tag_id!r} is in facet {tag.facet!r}, not {facet!r}")
                continue
            facet = tag.facet
        problem = _labelled_twice(seen.setdefault((uri, facet), {}), tag_id, facet, facet in multi)
        if problem:
            problems.append(f"{where}: {raw_path} {problem}")
            continue
        seen[(uri, facet)][tag_id] = line
        group = _nfc(row.get("group") or "") or None
        examples.append(Example(uri=uri, tag_id=tag_id, facet=facet, line=line, group=group))
    if not examples and not problems:
        problems.append(f"{path}: no examples")
    if problems:
        raise ValidationError(str(path), problems)
    return examples


def _none_facet(facet: str, multi: list[str]) -> tuple[str, str | None]:
    """The facet a `none` example is for: the row's, which must be multi, or the catalog's only multi facet."""
    if facet:
        if facet not in multi:
            return facet, f"'none' examples are for multi facets; {facet!r} is single (set its facets: mode)"
        return facet, None
    if len(multi) == 1:
        return multi[0], None
    if not multi:
        return "", "'none' examples are for multi facets, and the catalog has none (facets: {FACET: {mode: multi}})"
    return "", f"a 'none' example needs its facet (one of {multi}) in the facet column"


def _labelled_twice(labels: dict[str, int], tag_id: str, facet: str, multi: bool) -> str | None:
    """Why a photo may not take this label beside its others (None: it may). A multi facet takes several tags
    per photo, but not one twice and not `none` beside a tag; a single facet takes one."""
    if tag_id in labels or (labels and not multi):
        return f"already labelled for facet {facet!r} on line {labels.get(tag_id) or min(labels.values())}"
    if labels and NONE_TAG in {tag_id, *labels}:
        return f"is labelled both 'none' and a tag of facet {facet!r} (line {min(labels.values())})"
    return None


def examples_from_folders(root: Path, catalog: Catalog) -> list[Example]:
    """A folder per tag: `root/<tag_id>/*.jpg`. Unknown folder names are problems, listed together."""
    root = Path(root)
    tags = catalog.by_id()
    problems: list[str] = []
    examples: list[Example] = []
    multi = catalog.multi_facets()
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        tag = tags.get(folder.name)
        if folder.name == NONE_TAG:  # the none examples of the catalog's only multi facet
            facet, problem = _none_facet("", multi)
            if problem:
                problems.append(f"{folder}: {problem}")
                continue
            tag = CatalogTag(NONE_TAG, facet, NONE_TAG)
        if tag is None:
            problems.append(f"{folder}: folder name is not a tag_id in the catalog")
            continue
        for n, file in enumerate(sorted(_image_files(folder))):
            examples.append(Example(uri=str(file.resolve()), tag_id=tag.tag_id, facet=tag.facet, line=n + 1))
    if not examples and not problems:
        problems.append(f"{root}: no tag folders with images")
    if problems:
        raise ValidationError(str(root), problems)
    return examples


def _image_files(folder: Path) -> Iterable[Path]:
    return (p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
