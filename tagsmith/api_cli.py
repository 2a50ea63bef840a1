"""`tagsmith serve` and `tagsmith token ...`: the HTTP API and its per-library tokens."""

from __future__ import annotations

import typer

token_app = typer.Typer(help="API tokens: one library each, shown once, stored hashed.", no_args_is_help=True)


def _store():
    from resources import tagsmith_home
    from resources.tokens import token_store

    return token_store(tagsmith_home())


@token_app.command("create")
def token_create(library: str, name: str = typer.Option("", help="A label for people (e.g. pim-prod).")) -> None:
    """A new token for LIBRARY: printed once (only its hash is kept); it sees that library and nothing else."""
    from tagsmith import service

    service.resources()["libraries"].config(library)  # LibraryError (one line) for a library that is not there
    record, token = _store().create(library, name)
    typer.secho(f"token {record.token_id} ({record.name}) for library {library}; shown once, keep it secret:", err=True)
    typer.echo(token)


@token_app.command("list")
def token_list(library: str = typer.Argument("", help="One library; all when left out.")) -> None:
    """Token ids, their library and label, and when they were created or revoked (never the tokens)."""
    for r in _store().list(library):
        state = f"revoked {r.revoked_at}" if r.revoked_at else "active"
        typer.echo(f"{r.token_id}  {r.library:<20} {r.name:<24} created {r.created_at}  {state}")


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    """Revoke a token by its id (`tagsmith token list`): the next request with it gets 401."""
    record = _store().revoke(token_id)
    typer.echo(f"token {record.token_id} of {record.library} revoked at {record.revoked_at}")


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000),
    max_photo_mb: int = typer.Option(50, help="Largest photo POST /v1/tag and /v1/similar take."),
    max_media_mb: int = typer.Option(2048, help="Largest file POST /v1/media takes (videos)."),
    rate: float = typer.Option(20.0, help="Requests a second per token (bursts of twice that)."),
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs); requests need a token (`tagsmith token`)."""
    from resources import tagsmith_home
    from tagsmith.api.app import serve as run
    from tagsmith.api.deps import MB, ApiSettings
    from tagsmith.service import ensure_dagster_home

    ensure_dagster_home()
    home = tagsmith_home()
    settings = ApiSettings(
        tokens=_store(), tmp_dir=home / "tmp" / "api", max_photo_bytes=max_photo_mb * MB,
        max_media_bytes=max_media_mb * MB, rate_per_s=rate, burst=max(1, int(2 * rate)),
    )  # fmt: skip
    typer.secho(f"tagsmith API on http://{host}:{port} (docs: /docs)", err=True)
    run(host, port, settings)
