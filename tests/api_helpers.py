"""What the HTTP API's tests share: tokens made by the CLI, a client per library, the libraries' media ids."""

from __future__ import annotations

import polars as pl
from typer.testing import CliRunner

from tagsmith.cli import app


def create_token(library: str, name: str = "") -> str:
    """`tagsmith token create LIBRARY`, as the README says; the token is stdout's last line."""
    result = CliRunner().invoke(app, ["token", "create", library, *(["--name", name] if name else [])])
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def media_ids(library: str) -> set[str]:
    """The library's tagged photos (the demo's broken files, the same bytes in both libraries, have no tags)."""
    from tagsmith import service

    return set(service.resources()["warehouse"].read(library, "tags")["media_id"].to_list())


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def tagged_photo(library: str) -> tuple[str, str]:
    """(media_id, uri) of a photo of `library` with a tag."""
    from tagsmith import service

    res = service.resources()["warehouse"]
    tags = res.read(library, "tags")
    media = res.read(library, "media").filter(pl.col("kind") == "image")
    row = media.filter(pl.col("media_id").is_in(tags["media_id"].to_list())).row(0, named=True)
    return row["media_id"], row["uri"]
