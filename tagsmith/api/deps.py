"""What every request needs: the server's settings, the caller's library (from the token alone), the rate limit."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from resources.tokens import TokenStore
from tagsmith.api.errors import ApiError

MB = 1 << 20


@dataclass(frozen=True)
class ApiSettings:
    """`tagsmith serve`'s options. Uploads stream to `tmp_dir` (a folder of TAGSMITH_HOME) and are refused as
    soon as they pass their limit; other bodies (JSON) are small and capped lower."""

    tokens: TokenStore
    tmp_dir: Path
    max_photo_bytes: int = 50 * MB  # POST /v1/tag, /v1/similar
    max_media_bytes: int = 2048 * MB  # POST /v1/media (a video of an event)
    max_json_bytes: int = 1 * MB
    rate_per_s: float = 20.0  # per token: a sustained rate, with bursts of `burst` requests
    burst: int = 40
    max_page: int = 1000


@dataclass(frozen=True)
class Caller:
    library: str
    token_id: str
    name: str


@dataclass
class RateLimiter:
    """A token bucket per API token (in this process): `rate` requests a second, bursts of `burst`."""

    rate: float
    burst: int
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, key: str) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            level, seen = self._buckets.get(key, (float(self.burst), now))
            level = min(float(self.burst), level + (now - seen) * self.rate)
            if level < 1.0:
                self._buckets[key] = (level, now)
                return (1.0 - level) / self.rate
            self._buckets[key] = (level - 1.0, now)
            return 0.0


bearer = HTTPBearer(auto_error=False, description="A library's API token: `tagsmith token create LIBRARY`.")


def caller(request: Request, credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> Caller:
    """The library the request is scoped to: the token's, and nothing the request says can change it."""
    app = request.app
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(
            "unauthorized",
            "an API token is required: `Authorization: Bearer <token>` (tagsmith token create LIBRARY)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    record = app.state.settings.tokens.verify(credentials.credentials.strip())
    if record is None:
        raise ApiError("unauthorized", "invalid or revoked API token", headers={"WWW-Authenticate": "Bearer"})
    wait = app.state.limiter.take(record.token_id)
    request.state.library, request.state.token_id = record.library, record.token_id
    if wait > 0:
        raise ApiError(
            "rate_limited", f"too many requests: retry in {wait:.1f} s", headers={"Retry-After": str(int(wait) + 1)}
        )
    return Caller(record.library, record.token_id, record.name)
