"""Errors the HTTP API answers with: JSON `{"error": {"code": ..., "message": ...}}`, the code stable (clients
branch on it), the message one line for people. Every mistake a client can make maps to a 4xx here; a 500
(`internal`) is a bug and is logged with its traceback, never with a request's headers or body."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("tagsmith.api")

# code -> HTTP status; the codes are the API's contract (README, "HTTP API")
CODES = {
    "invalid_request": 400,
    "unauthorized": 401,
    "not_found": 404,
    "method_not_allowed": 405,
    "not_ready": 409,
    "library_busy": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "unreadable_media": 422,
    "sql_refused": 400,
    "rate_limited": 429,
    "busy": 503,
    "internal": 500,
}


class ApiError(Exception):
    def __init__(self, code: str, message: str, headers: dict | None = None, details: list[str] | None = None):
        super().__init__(message)
        self.code, self.message, self.headers, self.details = code, message, headers or {}, details

    @property
    def status(self) -> int:
        return CODES[self.code]


def error_response(code: str, message: str, headers: dict | None = None, details: list[str] | None = None):
    body = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return JSONResponse(body, status_code=CODES[code], headers=headers)


def not_found(what: str) -> ApiError:
    """The one answer for anything outside the caller's library: the same words whether it exists elsewhere or
    nowhere, so a token never learns that another library exists."""
    return ApiError("not_found", f"{what} not found")


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        request.state.error_code = exc.code
        return error_response(exc.code, exc.message, exc.headers, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        request.state.error_code = "invalid_request"
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return error_response("invalid_request", problems[0] if problems else "invalid request", details=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
        request.state.error_code = code
        message = "no such endpoint (see /docs)" if exc.status_code == 404 else str(exc.detail)
        return error_response(code, message)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):
        request.state.error_code = "internal"
        log.exception(f"internal error on {request.method} {request.url.path}")
        return error_response("internal", "internal error (logged on the server)")
