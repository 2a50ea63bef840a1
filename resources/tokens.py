"""API tokens: one or more per library, created and revoked by the CLI (`tagsmith token ...`), checked by the HTTP
API on every request. A token is the only thing that scopes a request to a library.

A token reads `tsk_<id>_<secret>`: `id` (8 hex characters) finds its record, `secret` (32 random bytes,
urlsafe base64) proves it. Only SHA-256 of the secret is stored, so the file gives nobody a working token. A
plain hash rather than a slow password hash (bcrypt, scrypt): the secret is 256 random bits, so there is nothing
to guess, and the API checks it on every request. The comparison is constant-time (`hmac.compare_digest`).

The records live in one JSON file under TAGSMITH_HOME (`api_tokens.json`, mode 0600), not in a library's
folder: a token of library A must never be found by looking in library B, and `tagsmith token list` answers
for every library at once. Writes take an exclusive lock and replace the file atomically; the API re-reads it
when its modification time changes, so a revoked token stops working on the next request, without a restart.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

TOKEN = re.compile(r"^tsk_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")


class TokenError(LookupError):
    """A token id that does not exist (CLI); the message is one line."""


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    library: str
    name: str
    secret_sha256: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore:
    """The token file of one TAGSMITH_HOME."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._cache: tuple[float, dict[str, TokenRecord]] | None = None
        self._lock = threading.Lock()

    def _read(self) -> dict[str, TokenRecord]:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        with self._lock:
            if self._cache is None or self._cache[0] != mtime:
                rows = json.loads(self.path.read_text() or "[]")
                self._cache = (mtime, {r["token_id"]: TokenRecord(**r) for r in rows})
            return self._cache[1]

    def _write(self, records: dict[str, TokenRecord]) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump([asdict(r) for r in records.values()], out, indent=1)
        os.replace(tmp, self.path)

    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path.with_suffix(".lock"), "a")
        fcntl.flock(handle, fcntl.LOCK_EX)
        return handle

    def create(self, library: str, name: str = "") -> tuple[TokenRecord, str]:
        """A new token of `library`: its record and the token itself (shown once, never stored)."""
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        with self._locked():
            records = dict(self._read())
            token_id = secrets.token_hex(4)
            while token_id in records:
                token_id = secrets.token_hex(4)
            record = TokenRecord(
                token_id=token_id,
                library=library,
                name=name or f"{library}-{token_id}",
                secret_sha256=_digest(secret),
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            )
            records[token_id] = record
            self._write(records)
        return record, f"tsk_{token_id}_{secret}"

    def revoke(self, token_id: str) -> TokenRecord:
        with self._locked():
            records = dict(self._read())
            record = records.get(token_id)
            if record is None:
                raise TokenError(f"no token {token_id!r}: `tagsmith token list` shows the token ids")
            if record.active:
                record = TokenRecord(
                    **{**asdict(record), "revoked_at": datetime.now(UTC).isoformat(timespec="seconds")}
                )
                records[token_id] = record
                self._write(records)
        return record

    def list(self, library: str = "") -> list[TokenRecord]:
        return [r for r in self._read().values() if not library or r.library == library]

    def verify(self, token: str) -> TokenRecord | None:
        """The active record `token` proves, or None (malformed, unknown, revoked or wrong secret alike)."""
        match = TOKEN.match(token or "")
        if match is None:
            return None
        record = self._read().get(match.group(1))
        if record is None or not record.active:
            return None
        return record if hmac.compare_digest(record.secret_sha256, _digest(match.group(2))) else None


def token_store(home: Path) -> TokenStore:
    return TokenStore(Path(home) / "api_tokens.json")
