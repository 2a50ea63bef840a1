"""Pinned head versions: a person's choice of a facet's head (`tagsmith rollback`) that later runs honour.

A pin lives in the library's folder as `pins.yaml`, beside the user's `library.yaml` but apart from it: the CLI
writes it and never rewrites the file a person edits. It is read by `promoted_heads` on every run (a nightly
retag, a sensor's run, `tagsmith run`), so a newer candidate that passes the blocking check is still not
promoted over a pinned facet until the pin is released.

`choose_promotions` is the promotion rule as a plain function, without Dagster: which version each facet
uses, given the candidates of this run, the versions in use and the pins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from resources.libraries import ConfigError

PINS_FILE = "pins.yaml"
HEADER = "# pinned head versions, written by `tagsmith rollback`; `tagsmith rollback LIB FACET --release` removes one\n"


def pins_path(library_dir: Path) -> Path:
    return Path(library_dir) / PINS_FILE


def read_pins(library_dir: Path) -> dict[str, str]:
    """{facet: pinned version}; {} when the library has no pin. A file a person broke by hand is a ConfigError
    (one line), not a silent "no pins": a pin ignored would let a head the person rejected back in."""
    path = pins_path(library_dir)
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"not valid YAML ({getattr(exc, 'problem', None) or exc})"]) from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), ["should be a mapping of facets to pins (rewrite it with `tagsmith rollback`)"])
    pins, problems = {}, []
    for facet, entry in data.items():
        version = entry.get("version") if isinstance(entry, dict) else None
        if isinstance(version, str) and version:
            pins[str(facet)] = version
        else:
            problems.append(f"{facet}: should be a mapping with a `version` (rewrite it with `tagsmith rollback`)")
    if problems:
        raise ConfigError(str(path), problems)
    return pins


def _write(library_dir: Path, entries: dict[str, dict]) -> None:
    path = pins_path(library_dir)
    if not entries:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(HEADER + yaml.safe_dump(entries, sort_keys=True), "utf-8")
    os.replace(tmp, path)  # a run reading the pins never sees half a file


def _entries(library_dir: Path) -> dict[str, dict]:
    read_pins(library_dir)  # refuses a broken file before it is rewritten
    path = pins_path(library_dir)
    return (yaml.safe_load(path.read_text("utf-8")) or {}) if path.exists() else {}


def pin(library_dir: Path, facet: str, version: str, replaced: str | None = None) -> None:
    """Pin `facet` to `version` (`replaced`: the version in use until now, kept for the record)."""
    entries = _entries(library_dir)
    entries[facet] = {
        "version": version,
        "pinned_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "replaced": replaced,
    }
    _write(library_dir, entries)


def release(library_dir: Path, facet: str) -> str | None:
    """Remove `facet`'s pin; returns the version it pinned (None: there was no pin)."""
    entries = _entries(library_dir)
    removed = entries.pop(facet, None)
    _write(library_dir, entries)
    return removed["version"] if removed else None


@dataclass
class Promotion:
    """What `promoted_heads` promotes ({facet: version}), the facets a pin decided, and one note per candidate
    a pin kept out (for the run's log)."""

    chosen: dict[str, str]
    pinned: dict[str, str] = field(default_factory=dict)
    held_back: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def choose_promotions(
    candidates: dict[str, str], in_use: dict[str, str], pins: dict[str, str], keep_in_use: bool = False
) -> Promotion:
    """Per facet, the version to use.

    `candidates`: this run's heads (they passed the blocking check when the check ran in this run). With
    `keep_in_use` (the `retag` job: no check ran in its run) the versions in use stay instead, so a retag
    changes only what a pin changes. A pinned facet uses its pinned version either way, and a candidate other
    than it is named in `notes` (trained, not promoted). A pin of a facet with no head now is left alone.
    """
    base = dict(in_use if keep_in_use else candidates)
    out = Promotion(chosen=base)
    for facet, version in sorted(pins.items()):
        if facet not in base and facet not in candidates:
            out.notes.append(f"{facet}: pinned to {version}, but the library has no head of that facet now")
            continue
        out.chosen[facet] = version
        out.pinned[facet] = version
        candidate = candidates.get(facet)
        if candidate and candidate != version:
            out.held_back[facet] = candidate
            out.notes.append(
                f"{facet}: candidate {candidate} was trained but not promoted: the facet is pinned to {version} "
                f"(`tagsmith rollback LIB {facet} --release` lets the newest passing candidate in again)"
            )
    return out
