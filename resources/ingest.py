"""Ingest: bring photos and videos into a library's media folder or bucket without losing or replacing any.

- Files keep their relative folders: `tagsmith ingest shop ~/shoots/2026-03-01` puts them under
  `<media>/2026-03-01/...`. A shoot's folder is information (ml/groups.py links the photos of one sub-folder
  and the runs of file numbers within a folder), and two sub-folders may both hold an `IMG_0001.jpg`.
- Bytes already in the library, under any name (same size, then same sha256), are the same media: nothing
  is copied, and the step says where they already are.
- A name taken by different bytes gets a distinct, stable name: `IMG_0001-<first 8 hex of its sha256>.jpg`
  (the same file always gets the same name, so a rerun recognises it as already there); `overwrite` replaces
  the existing file or key instead.
- Nothing is written under a media name until it is complete, and nothing is replaced unless asked
  (resources/media_destinations.py: a local folder or an S3 prefix).
- `plan_ingest` reads and hashes only; `apply_ingest` writes. A dry run is the plan alone.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Literal

from ml.media import media_kind
from resources.media_destinations import Destination, Digest, destination_for, file_digest

__all__ = ["apply_ingest", "destination_for", "gather_sources", "plan_ingest", "report_lines"]

Action = Literal["copy", "rename", "overwrite", "same", "skip", "failed"]
WRITES: tuple[Action, ...] = ("copy", "rename", "overwrite")


@dataclass(frozen=True)
class Source:
    path: Path
    relative: PurePosixPath  # where it goes under the media location


@dataclass(frozen=True)
class IngestStep:
    source: Path
    action: Action
    target: str | None = None  # relative to the media location (posix), None when nothing is written
    reason: str = ""
    digest: Digest | None = None
    wanted: str | None = None  # the name it keeps its folders under, before any renaming


def gather_sources(paths: Iterable[Path]) -> tuple[list[Source], list[IngestStep]]:
    """Every file under `paths` with the relative path it keeps, and the files that are skipped, with why.

    A folder's own name is kept (`~/shoots/2026-03-01/a/IMG_1.jpg` -> `2026-03-01/a/IMG_1.jpg`); a file given
    by itself goes to the top. Links to folders are not followed (a link loop cannot make this walk forever).
    Raises FileNotFoundError, before anything is read, for a path that does not exist.
    """
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.exists() and not path.is_symlink():
            raise FileNotFoundError(f"no such file or folder: {path}")
    sources, skipped = [], []
    for path in paths:
        if not path.is_dir():
            _consider(path, PurePosixPath(path.name), sources, skipped)
            continue
        top = PurePosixPath(Path(os.path.abspath(path)).name)
        for folder, dirs, files in os.walk(path, followlinks=False):
            dirs.sort()
            here = Path(folder)
            for name in list(dirs):
                if (here / name).is_symlink():
                    skipped.append(IngestStep(here / name, "skip", reason="a link to a folder: not followed"))
            for name in sorted(files):
                relative = top / PurePosixPath(*(here / name).relative_to(path).parts)
                _consider(here / name, relative, sources, skipped)
    return sources, skipped


def _consider(path: Path, relative: PurePosixPath, sources: list[Source], skipped: list[IngestStep]) -> None:
    if path.name.startswith("."):
        skipped.append(IngestStep(path, "skip", reason="hidden file (the pipeline ignores names starting with '.')"))
    elif media_kind(path.name) is None:
        skipped.append(IngestStep(path, "skip", reason="not a photo or video extension"))
    elif path.is_symlink() and not path.exists():
        skipped.append(IngestStep(path, "skip", reason="a broken link"))
    elif not path.is_file():
        skipped.append(IngestStep(path, "skip", reason="not a regular file"))
    else:
        sources.append(Source(path, relative))


def distinct_name(relative: str, sha256: str, taken: set[str]) -> str:
    """`IMG_0001-<sha8>.jpg` beside `IMG_0001.jpg`; more hex digits in the unlikely case that one is taken too."""
    path = PurePosixPath(relative)
    for digits in range(8, len(sha256) + 1, 4):
        candidate = str(path.with_name(f"{path.stem}-{sha256[:digits]}{path.suffix}"))
        if candidate not in taken:
            return candidate
    raise FileExistsError(f"no free name for {relative}")


def plan_ingest(
    sources: list[Source],
    destination: Destination,
    overwrite: bool = False,
    on_file: Callable[[IngestStep], None] | None = None,
) -> list[IngestStep]:
    """What ingesting `sources` would do, file by file; reads and hashes, writes nothing."""
    existing = destination.existing()
    by_size: dict[int, list[str]] = defaultdict(list)
    for relative, size in existing.items():
        if media_kind(relative) is not None:
            by_size[size].append(relative)
    taken, planned, batch = set(existing), {}, set()  # names in use; sha256 -> name in this batch
    steps = []
    for source in sources:
        step = _plan_one(source, destination, overwrite, existing, by_size, taken, planned, batch)
        if step.action in WRITES:
            taken.add(step.target)
            batch.add(step.target)
            planned[step.digest.sha256] = step.target
        steps.append(step)
        if on_file:
            on_file(step)
    return steps


def _plan_one(source, destination, overwrite, existing, by_size, taken, planned, batch) -> IngestStep:
    try:
        digest = file_digest(source.path)
    except OSError as exc:
        return IngestStep(source.path, "skip", reason=f"unreadable: {exc.strerror or exc}")
    if digest.sha256 in planned:
        return IngestStep(
            source.path,
            "same",
            planned[digest.sha256],
            f"same bytes as {planned[digest.sha256]} in this ingest",
            digest,
        )
    for relative in by_size.get(digest.size, []):
        if destination.same_bytes(relative, digest):
            return IngestStep(source.path, "same", relative, f"already in the library as {relative}", digest)
    wanted = str(source.relative)
    if wanted not in taken:
        return IngestStep(source.path, "copy", wanted, "", digest, wanted)
    if overwrite and wanted in existing and wanted not in batch:
        return IngestStep(source.path, "overwrite", wanted, f"replaces the library's {wanted}", digest, wanted)
    renamed = distinct_name(wanted, digest.sha256, taken)
    return IngestStep(source.path, "rename", renamed, f"{wanted} holds different bytes", digest, wanted)


def apply_ingest(
    steps: list[IngestStep], destination: Destination, on_file: Callable[[IngestStep], None] | None = None
) -> list[IngestStep]:
    """Write the plan. A name taken since planning gets a distinct name; a file that cannot be read or written
    is reported `failed` with its reason and the others go on."""
    taken = set(s.target for s in steps if s.target)
    done = []
    for step in steps:
        if step.action in WRITES:
            step = _write_one(step, destination, taken)
        done.append(step)
        if on_file:
            on_file(step)
    return done


def _write_one(step: IngestStep, destination: Destination, taken: set[str]) -> IngestStep:
    try:
        while not destination.write(step.source, step.target, step.digest, step.action == "overwrite"):
            taken.add(step.target)
            step = replace(
                step,
                action="rename",
                target=distinct_name(step.wanted, step.digest.sha256, taken),
                reason=f"{step.target} appeared while ingesting",
            )
        return step
    except OSError as exc:
        return replace(step, action="failed", reason=str(exc))


def shown(path: object) -> str:
    """A name on one line: control characters (a newline in a file name) escaped, every script kept as is."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(path))


def report_lines(steps: list[IngestStep], destination: Destination, dry_run: bool) -> tuple[list[str], str]:
    """One line per file worth a look (every file on a dry run), then the one-line summary."""
    would = "would be " if dry_run else ""
    lines = []
    for step in steps:
        src, where = shown(step.source), shown(destination.describe(step.target)) if step.target else ""
        if step.action == "copy" and dry_run:
            lines.append(f"would copy {src} -> {where}")
        elif step.action == "rename":
            lines.append(f"{'would store' if dry_run else 'stored'} {src} as {where}: {shown(step.reason)}")
        elif step.action == "overwrite":
            lines.append(f"{'would replace' if dry_run else 'replaced'} {where} with {src}")
        elif step.action == "same":
            lines.append(f"not copied {src}: {shown(step.reason)}")
        elif step.action in ("skip", "failed"):
            lines.append(f"{'skipped' if step.action == 'skip' else 'failed'} {src}: {shown(step.reason)}")
    count = {action: sum(s.action == action for s in steps) for action in ("copy", "rename", "overwrite")}
    count |= {action: sum(s.action == action for s in steps) for action in ("same", "skip", "failed")}
    written = count["copy"] + count["rename"] + count["overwrite"]
    notes = [f"{count['rename']} under a new name"] if count["rename"] else []
    notes += [f"{count['overwrite']} replacing a file"] if count["overwrite"] else []
    summary = (
        f"{written} files {would}copied into {shown(destination.describe('').rstrip('/'))}"
        + (f" ({', '.join(notes)})" if notes else "")
        + f", {count['same']} already in the library, {count['skip']} skipped"
        + (f", {count['failed']} failed" if count["failed"] else "")
    )
    return lines, summary + ("; dry run: nothing was written" if dry_run else "")
