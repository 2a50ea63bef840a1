"""`tagsmith serve`: the HTTP API, thin over tagsmith.service like the CLI (FastAPI: OpenAPI at /openapi.json,
browsable docs at /docs).

Every endpoint under /v1 is scoped to one library by its bearer token alone (tagsmith/api/deps.py); anything of
another library answers `not_found`, word for word as if it did not exist. Errors are JSON with stable codes
(tagsmith/api/errors.py). Each request is logged in one line - method, path (never the query string or a
header), status, error code, library, token id (the public half of a token), milliseconds - and no token or
secret is ever logged.
"""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from resources import tagsmith_home
from resources.tokens import token_store
from tagsmith.api import errors, routes_read, routes_write
from tagsmith.api.deps import ApiSettings, RateLimiter
from tagsmith.api.errors import ApiError, error_response
from tagsmith.api.jobs import Jobs

log = logging.getLogger("tagsmith.api")
UPLOAD_PATHS = ("/v1/tag", "/v1/similar", "/v1/media")


class JsonBodyLimit:
    """Bodies of the JSON endpoints capped at `max_json_bytes` (uploads count their own limit as they stream):
    refused on `Content-Length` before a byte is read, or once a chunked body passes the cap."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send):
        if scope["type"] != "http" or scope["path"] in UPLOAD_PATHS:
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.limit:
            response = error_response("payload_too_large", f"the body is larger than {self.limit >> 10} KB")
            return await response(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise ApiError("payload_too_large", f"the body is larger than {self.limit >> 10} KB")
            return message

        return await self.app(scope, counted, send)


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    home = tagsmith_home()
    settings = settings or ApiSettings(tokens=token_store(home), tmp_dir=home / "tmp" / "api")
    app = FastAPI(
        title="tagsmith",
        version="1",
        summary="Custom AI tagging for product photo and video libraries: one library per token.",
        description="Authenticate with `Authorization: Bearer <token>` (`tagsmith token create LIBRARY`). Errors are "
        '`{"error": {"code": ..., "message": ...}}`; the codes are stable.',
    )
    app.state.settings = settings
    app.state.limiter = RateLimiter(settings.rate_per_s, settings.burst)
    app.state.jobs = Jobs()
    errors.install(app)
    app.include_router(routes_read.router, tags=["read"])
    app.include_router(routes_write.router, tags=["write"])
    app.add_middleware(JsonBodyLimit, limit=settings.max_json_bytes)

    @app.middleware("http")
    async def access_log(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        state = request.state
        log.info(
            f"{request.method} {request.url.path} {response.status_code} "
            f"code={getattr(state, 'error_code', '-')} library={getattr(state, 'library', '-')} "
            f"token={getattr(state, 'token_id', '-')} {1000 * (time.perf_counter() - start):.0f}ms"
        )
        return response

    @app.get("/healthz", tags=["health"], summary="The server answers")
    def healthz():
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="The server can serve: its token file and home are readable")
    def readyz():
        try:
            settings.tokens.list()
            settings.tmp_dir.mkdir(parents=True, exist_ok=True)
        except (OSError, ValueError) as exc:
            log.error(f"not ready: {type(exc).__name__}: {exc}")
            return error_response("busy", "not ready: see the server's log")
        return {"status": "ready"}

    return app


def serve(host: str, port: int, settings: ApiSettings | None = None, log_level: str = "info") -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", force=True)
    # uvicorn's own access log prints the query string; ours (above) does not, and names the library
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, access_log=False,
                limit_concurrency=256, timeout_keep_alive=10)  # fmt: skip
