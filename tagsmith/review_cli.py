"""`tagsmith review LIB`: the review queue in the terminal, or as a CSV round-trip (--export / --import).

Each item shows where the photo is (and the photo itself in terminals that display images: iTerm2, WezTerm,
kitty), the candidate tags with their scores, and takes one key: accept, reject, a candidate's number, `t TAG` to
replace with any tag of the facet, skip or quit. A verdict is written before the next item is shown, so quitting
(or a closed terminal) loses nothing.
"""

from __future__ import annotations

import base64
import io
import json
import os
import sys
from pathlib import Path

import click
import typer

HELP = "a accept · r reject · 1-3 pick that tag · t TAG replace with TAG · s skip · q quit"


def inline_image(path: str) -> str:
    """The escape sequence that draws a thumbnail of `path` in this terminal, or '' where it cannot (or the
    photo cannot be read: the path is shown either way)."""
    term, program = os.environ.get("TERM", ""), os.environ.get("TERM_PROGRAM", "")
    if not sys.stdout.isatty() or not (program in ("iTerm.app", "WezTerm") or term == "xterm-kitty"):
        return ""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.thumbnail((320, 320))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="PNG")
    except (OSError, UnidentifiedImageError):
        return ""
    data = base64.b64encode(buffer.getvalue()).decode()
    if term == "xterm-kitty":  # kitty's graphics protocol, in chunks of 4096
        chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]
        last = len(chunks) - 1
        parts = [f"\033_G{'f=100,a=T,' if i == 0 else ''}m={int(i < last)};{c}\033\\" for i, c in enumerate(chunks)]
        return "".join(parts) + "\n"
    return f"\033]1337;File=inline=1;width=20%;preserveAspectRatio=1:{data}\a\n"


def show_item(i: int, n: int, item: dict, names: dict[str, str]) -> list[str]:
    """Print one queue item; returns its candidate tag ids (the numbers a reviewer can type)."""
    from ml.segments import format_timestamp

    where = item["uri"] or item["media_id"]
    if item["kind"] == "segment":
        where += f"  {format_timestamp(item['start_s'])}–{format_timestamp(item['end_s'])}"
    typer.echo(f"\n[{i}/{n}] {item['facet']}  {where}")
    if item["kind"] == "photo" and item["uri"]:
        typer.echo(inline_image(item["uri"]), nl=False)
    candidates = [tuple(c) for c in json.loads(item["candidates"])] if item["candidates"] else []
    if not candidates:
        candidates = [(item["tag_id"], item["score"])]
    limit = f" (threshold {item['threshold']:.2f})" if item["threshold"] is not None else ""
    for k, (tag, score) in enumerate(candidates, 1):
        typer.echo(f"  {k}. {names.get(tag, tag)} [{tag}]  {score:.2f}{limit if k == 1 else ''}")
    return [tag for tag, _ in candidates]


def verdict_of(answer: str, item: dict, candidates: list[str], catalog) -> dict | None | str:
    """The verdict an answer means: a dict, None for skip, 'quit', or a one-line problem (str starting '!')."""
    from tagsmith.review import resolve_tag

    answer = answer.strip()
    key = {k: item[k] for k in ("media_id", "facet", "tag_id", "kind", "start_s", "end_s")}
    if answer in ("q", "quit"):
        return "quit"
    if answer in ("s", "skip", ""):
        return None
    if answer in ("a", "accept"):
        return {**key, "verdict": "accept"}
    if answer in ("r", "reject"):
        return {**key, "verdict": "reject"}
    if answer.isdigit() and 1 <= int(answer) <= len(candidates):
        picked = candidates[int(answer) - 1]
        return (
            {**key, "verdict": "accept"}
            if picked == item["tag_id"]
            else {**key, "verdict": "replace", "new_tag_id": picked}
        )
    if answer.startswith("t ") and answer[2:].strip():
        tag = resolve_tag(catalog, item["facet"], answer[2:].strip())
        if tag is None:
            return f"!no tag {answer[2:].strip()!r} in facet {item['facet']!r}"
        return (
            {**key, "verdict": "accept"} if tag == item["tag_id"] else {**key, "verdict": "replace", "new_tag_id": tag}
        )
    return f"!{HELP}"


def review(
    library: str,
    facet: str = typer.Option("", help="Only this facet's queue."),
    limit: int = typer.Option(0, help="At most this many items (0: the whole queue)."),
    who: str = typer.Option("", help="Who gives the verdicts (default: your user name)."),
    export: Path = typer.Option(None, "--export", help="Write the queue to this CSV instead (fill in `verdict`)."),
    import_: Path = typer.Option(None, "--import", help="Record the verdicts of a filled-in CSV."),
) -> None:
    """Work through the review queue: accept, reject or correct each tag the model was unsure of. Verdicts are
    kept, win over the model, and teach the facet's head on the next `tagsmith run`."""
    from tagsmith import review as svc
    from tagsmith.service import resources

    who = who or svc.reviewer()
    if export is not None:
        n = svc.export_queue(library, export, facet)
        typer.echo(
            f"{n} items to review written to {export} (fill in verdict: accept / reject / replace + "
            f"new_tag_id; then `tagsmith review {library} --import {export}`)"
        )
        return
    if import_ is not None:
        counts = svc.import_verdicts(library, import_, who)
        total = sum(counts.values())
        detail = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
        typer.echo(
            f"{total} verdicts recorded ({detail or 'none filled in'}); `tagsmith run {library}` learns from them"
        )
        return
    items = svc.queue(library, facet).to_dicts()
    if limit:
        items = items[:limit]
    if not items:
        typer.echo(f"nothing to review in library {library!r}")
        return
    catalog = resources()["libraries"].catalog(library)
    names = {t.tag_id: t.name for t in catalog.tags}
    uris = svc.media_uris(library)
    typer.echo(f"{len(items)} to review. {HELP}")
    done = 0
    for i, item in enumerate(items, 1):
        candidates = show_item(i, len(items), item, names)
        while True:
            try:
                answer = click.prompt(">", default="s", show_default=False)
            except click.exceptions.Abort:  # end of input (Ctrl-D, a closed pipe): what was given is kept
                answer = "q"
            verdict = verdict_of(answer, item, candidates, catalog)
            if isinstance(verdict, str) and verdict.startswith("!"):
                typer.echo(verdict[1:])
                continue
            break
        if verdict == "quit":
            break
        if verdict is not None:
            done += svc.record(library, [verdict], who, via="terminal", catalog=catalog, uris=uris)
    typer.echo(f"{done} verdicts recorded; `tagsmith run {library}` learns from them")
