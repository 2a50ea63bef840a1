"""Libraries (tenants): each has its own config file, catalog, examples, tables, heads and vectors."""

from __future__ import annotations

import csv
import difflib
import re
import shutil
from pathlib import Path
from typing import Literal, get_args, get_origin

import yaml
from dagster import ConfigurableResource
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ml.catalog import (
    NONE_TAG,
    RETIRE_HINT,
    Catalog,
    Example,
    examples_from_folders,
    load_catalog,
    parse_examples_manifest,
)
from ml.catalog import ValidationError as CatalogValidationError
from ml.media import DEFAULT_MAX_PIXELS, PIXEL_CEILING

NAME = re.compile(r"^[a-z0-9_]{1,48}$")
EVENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class LibraryError(LookupError):
    """A library, its catalog or its tables are not there yet; the message says what to run."""


class ConfigError(ValueError):
    """An invalid `library.yaml`: one line per problem, naming the key, the value and what is allowed."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


def _field_path(model: type[BaseModel], loc: tuple) -> tuple[list[str], type[BaseModel]]:
    """The config keys in a pydantic error location (union member tags dropped) and the innermost section."""
    keys: list[str] = []
    parts = list(loc)
    while parts:
        field = model.model_fields.get(str(parts[0]))
        if field is None:
            break
        keys.append(str(parts.pop(0)))
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif get_origin(annotation) is dict and parts:  # a mapping of names to sections (`events`)
            value = get_args(annotation)[1]
            if isinstance(value, type) and issubclass(value, BaseModel):
                keys.append(str(parts.pop(0)))
                model = value
    return keys, model


def config_problems(model: type[BaseModel], exc: ValidationError) -> list[str]:
    """pydantic's errors as one line per key: `ocr = 'maybe' is not allowed: ...`, `unknown key 'ocrr' (did you
    mean 'ocr'?)`; a union's alternatives are one line (`keypoints = 'surf' ...: a boolean, or 'orb' ...`)."""
    lines: dict[str, str] = {}
    for err in exc.errors():
        keys, section = _field_path(model, err["loc"])
        if err["type"] == "extra_forbidden":
            unknown = ".".join([*keys, str(err["loc"][len(keys)])])
            allowed = list(section.model_fields)
            close = difflib.get_close_matches(str(err["loc"][len(keys)]), allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "allowed: " + ", ".join(allowed)
            lines[unknown] = f"unknown key {unknown!r} ({hint})"
            continue
        key = ".".join(keys)
        if err["type"] == "missing":
            lines[key] = f"{key} is required"
        elif err["type"] == "value_error":  # our own validators: their message says what to do
            reason = err["msg"].removeprefix("Value error, ")
            lines[key] = f"{key} = {err['input']!r} is not allowed: {reason}" if key else reason
        else:
            expected = err["msg"].removeprefix("Input should be ").split(", unable to")[0]
            if key in lines:
                lines[key] += f", or {expected}"
            else:
                lines[key] = f"{key} = {err['input']!r} is not allowed: should be {expected}"
    return list(lines.values())


class FinetuneSettings(BaseModel):
    """Fine-tuning the default backbone on the library's examples (ml/finetune.py): one more candidate that
    `backbone_choice` compares on the holdout and keeps only where it wins. The budget is wall-clock minutes of
    training, once per training set; 0 turns it off."""

    model_config = ConfigDict(extra="forbid")

    budget_min: float = Field(10.0, ge=0)
    epochs: int = Field(10, ge=1)
    train_blocks: int = Field(3, ge=0, le=16)  # last MBConv blocks that learn, plus the head convolution
    augment: Literal["light", "strong"] = "strong"  # crops down to 60 % / 20 % of the photo (ml/finetune.py)
    device: str = "auto"  # auto: CUDA when there is one

    @property
    def enabled(self) -> bool:
        return self.budget_min > 0


class EventSpec(BaseModel):
    """One event of `library.yaml`'s `events:` (a sponsor report each, assets_defs/events): its media are the
    files under `folder` (relative to the library's `media`), or the media with an applied tag `tag` (a catalog
    tag of facet `event`). `sponsor_facet`: the catalog facet whose tags are the sponsors. The event sensor
    reports once its media listing has not changed for `quiet_minutes` and the library's tags are newer."""

    model_config = ConfigDict(extra="forbid")

    folder: str | None = None
    tag: str | None = None
    sponsor_facet: str = "sponsor"
    quiet_minutes: float = Field(10.0, ge=0)

    @field_validator("folder")
    @classmethod
    def _relative_folder(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = [p for p in value.replace("\\", "/").split("/") if p not in ("", ".")]
        if value.startswith(("/", "s3://")) or ".." in parts or not parts:
            raise ValueError("a sub-folder of the library's media, relative to it (e.g. 2026-06-cup/day1)")
        return "/".join(parts)

    @model_validator(mode="after")
    def _one_source(self) -> EventSpec:
        if (self.folder is None) == (self.tag is None):
            raise ValueError("give the event's media as `folder` (under media) or `tag` (a tag of facet event)")
        return self


class LibraryConfig(BaseModel):
    """What `library.yaml` holds. Defaults are the ones a new library gets; an unknown key is an error."""

    model_config = ConfigDict(extra="forbid")

    name: str
    media: str  # a local folder or s3://bucket/prefix
    backbone: str = "efficientnet-lite0"
    holdout_frac: float = Field(0.25, gt=0, lt=0.9)
    target_precision: float = Field(0.9, gt=0, le=1)
    min_holdout_accuracy: float = Field(0.6, ge=0, le=1)  # the promotion bar for every facet's head
    facet_min_accuracy: dict[str, float] = {}  # per-facet overrides of the bar
    head_strategies: list[str] = ["logreg", "lightgbm", "prototype"]
    train_augment: bool = True  # flipped copies of example photos as extra training rows
    ocr: Literal["auto", "on", "off"] = "auto"  # auto: read printed text when some catalog tag has identifiers
    # local features per photo for the "+keypoints" head strategies: true / "orb" (the default), "rootsift"
    # (SIFT descriptors, Hellinger-normalised, FLANN matching: 8x slower to extract, ml/keypoints.py), or false
    keypoints: bool | Literal["orb", "rootsift"] = True
    # the default backbone on the whole frame plus centre crops at two scales as a candidate backbone, kept per
    # facet only where it reads the group-aware holdout better (assets_defs/backbones)
    views: bool = True
    finetune: FinetuneSettings = FinetuneSettings()  # a fine-tuned backbone as one more candidate (off: budget 0)
    seed: int = 0
    # a photo with more pixels than this (width x height, read from its header before any decoding) is
    # quarantined as "too large: W x H": the bound on one decode's memory (ml/media.py says why 120 MP)
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1, le=PIXEL_CEILING)
    events: dict[str, EventSpec] = {}  # event name -> its media (folder or tag): a sponsor report each

    @field_validator("ocr", mode="before")
    @classmethod
    def _ocr_boolean(cls, value):
        # YAML reads `ocr: on` / `ocr: off` as booleans: they mean what they say
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("library name must be 1-48 of a-z, 0-9, '_'")
        return value

    @model_validator(mode="after")
    def _event_names(self) -> LibraryConfig:
        bad = [name for name in self.events if not EVENT_NAME.match(name)]
        if bad:
            raise ValueError(f"event name {bad[0]!r} (events:) must be 1-64 of a-z, 0-9, '_', '-', starting "
                             "with a letter or digit")
        return self

    def event(self, name: str) -> EventSpec:
        """The event `name` of this library.yaml; LibraryError (one line, the events it has) when there is none."""
        if name not in self.events:
            known = ", ".join(sorted(self.events)) or "none"
            raise LibraryError(f"library {self.name!r} has no event {name!r} in its library.yaml (events: {known})")
        return self.events[name]

    @property
    def finetunes(self) -> bool:
        """Whether the `finetuned_backbone` asset trains: a budget, and the default backbone (the one it tunes)."""
        return self.finetune.enabled and self.backbone == "efficientnet-lite0"

    @model_validator(mode="after")
    def _finetune_backbone(self) -> LibraryConfig:
        # the default budget applies to the default backbone only; one set by hand for another is a mistake
        explicit = "finetune" in self.model_fields_set and "budget_min" in self.finetune.model_fields_set
        if explicit and self.finetune.enabled and self.backbone != "efficientnet-lite0":
            raise ValueError(
                f"finetune works on the default backbone efficientnet-lite0 only, not {self.backbone!r}; "
                "set finetune.budget_min to 0 or use the default backbone"
            )
        return self

    @property
    def keypoint_kind(self) -> str | None:
        """"orb", "rootsift", or None when keypoints are off."""
        if self.keypoints is False:
            return None
        return "orb" if self.keypoints is True else self.keypoints

    def bar_for(self, facet: str) -> float:
        return self.facet_min_accuracy.get(facet, self.min_holdout_accuracy)


class LibraryStore(ConfigurableResource):
    """Library folders under `root`: library.yaml, catalog file, example manifests / folders."""

    root: str

    def dir(self, name: str) -> Path:
        if not NAME.match(name):
            raise ValueError(f"library name {name!r} must be 1-48 of a-z, 0-9, '_'")
        return Path(self.root) / name

    def names(self) -> list[str]:
        base = Path(self.root)
        return sorted(p.name for p in base.iterdir() if (p / "library.yaml").exists()) if base.exists() else []

    def create(self, config: LibraryConfig, exist_ok: bool = False) -> Path:
        path = self.dir(config.name)
        if (path / "library.yaml").exists() and not exist_ok:
            raise FileExistsError(f"library {config.name!r} already exists at {path}")
        path.mkdir(parents=True, exist_ok=True)
        (path / "library.yaml").write_text(yaml.safe_dump(config.model_dump(), sort_keys=False), "utf-8")
        return path

    def config(self, name: str) -> LibraryConfig:
        path = self.dir(name) / "library.yaml"
        if not path.exists():
            raise LibraryError(f"no library named {name!r} (looked in {path}); create it with `tagsmith init`")
        try:
            data = yaml.safe_load(path.read_text("utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{path}{where}", [f"not valid YAML ({getattr(exc, 'problem', None) or exc})"]) from None
        if not isinstance(data, dict):
            raise ConfigError(str(path), ["should be a mapping of keys to values (see README, library.yaml)"])
        try:
            return LibraryConfig(**data)
        except ValidationError as exc:
            raise ConfigError(str(path), config_problems(LibraryConfig, exc)) from None

    def catalog_path(self, name: str) -> Path:
        for suffix in (".yaml", ".csv"):
            path = self.dir(name) / f"catalog{suffix}"
            if path.exists():
                return path
        raise LibraryError(f"library {name!r} has no catalog yet: `tagsmith catalog {name} FILE`")

    def catalog(self, name: str) -> Catalog:
        return load_catalog(self.catalog_path(name))

    def set_catalog(self, name: str, source: Path) -> Catalog:
        """Validate first (all problems at once), then keep a copy as the library's catalog."""
        catalog = load_catalog(source)
        orphaned = self._orphaned_examples(name, catalog)
        if orphaned:
            raise CatalogValidationError(str(source), orphaned)
        suffix = ".csv" if Path(source).suffix.lower() == ".csv" else ".yaml"
        for old in self.dir(name).glob("catalog.*"):
            old.unlink()
        shutil.copyfile(source, self.dir(name) / f"catalog{suffix}")
        return catalog

    def _orphaned_examples(self, name: str, catalog: Catalog) -> list[str]:
        """One line per tag the library's stored examples name but `catalog` no longer has: refused when the
        catalog is set, not at the next run, with what to do instead (`retired: true`)."""
        known = set(catalog.by_id()) | {NONE_TAG}
        named: dict[str, list[str]] = {}
        folder = self.dir(name) / "examples"
        for manifest in sorted(folder.glob("*.csv")) if folder.exists() else []:
            with manifest.open(encoding="utf-8-sig", newline="") as handle:
                for line, row in enumerate(csv.DictReader(handle), start=2):
                    tag = (row.get("tag_id") or "").strip()
                    if tag not in known:
                        named.setdefault(tag, []).append(f"{manifest}:{line}")
        return [
            f"tag {tag!r} is not in the catalog but {len(where)} stored example(s) name it (first: {where[0]})"
            + RETIRE_HINT
            for tag, where in sorted(named.items())
        ]

    def add_examples(self, name: str, source: Path) -> list[Example]:
        """Validate a manifest (or folder-per-tag) against the catalog, then record it with absolute paths."""
        catalog = self.catalog(name)
        source = Path(source)
        examples = (
            examples_from_folders(source, catalog) if source.is_dir() else parse_examples_manifest(source, catalog)
        )
        target = self.dir(name) / "examples" / f"{source.stem}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["path", "tag_id", "facet", "group"])
            writer.writerows([e.uri, e.tag_id, e.facet, e.group or ""] for e in examples)
        return examples

    def examples(self, name: str) -> list[Example]:
        catalog = self.catalog(name)
        folder = self.dir(name) / "examples"
        out: list[Example] = []
        for manifest in sorted(folder.glob("*.csv")) if folder.exists() else []:
            out.extend(parse_examples_manifest(manifest, catalog))
        return out
