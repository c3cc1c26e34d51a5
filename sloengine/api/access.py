"""Zero-trust access to the HTTP front door: every request names a key, every key has one
role, every route names one permission, and the role→permission table below is the whole
policy (data, not code paths). Least privilege: a role has only what its people need.

The contract other routers rely on (the status pages, sloengine/api/pages.py):

- ``Principal(key_id, name, role)`` — who is calling.
- ``guard(permission)`` — a FastAPI dependency that resolves the Principal from
  ``Authorization: Bearer <key>`` or else the ``sloengine_session`` cookie (its value is the
  key; the pages' login form sets it HttpOnly, SameSite=Strict, Secure under TLS), and raises
  problem+json 401 (no, malformed, unknown, expired or revoked key) or 403 (the role lacks
  the permission); 429 with Retry-After when the key's token bucket is empty.
- It reads ``request.app.state.access`` (an ``Access``, made by build_app) and
  ``request.app.state.service`` holds the service (``.engine``, ``.lock``, ``.settings``).

Keys are checked against their salted scrypt hash once per process; after that a key is
recognised by a SHA-256 of it held in memory (constant-time compare), while expiry and
revocation are read from the key table cache on every request. Key changes made through the
API refresh that cache at once; an unknown key id refreshes it at most once a second.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from fastapi import Request

from sloengine.api.problems import Problem
from sloengine.engine import Engine, KeyRow
from sloengine.model import ROLES
from sloengine.settings import HttpSettings, Settings

log = logging.getLogger("sloengine.api")

COOKIE = "sloengine_session"

_READ = frozenset({"self:read", "pages:read", "slos:read", "alerts:read", "traces:read",
                   "lineage:read", "reports:read"})
#: The policy. admin: everything; sre: SLOs, evaluation, replays, acks; oncall: read state,
#: acknowledge alerts; auditor: read-only, plus the audit trail and SQL (nothing that
#: writes); ingest: only the OTLP routes /v1/*.
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": _READ | {"slos:validate", "slos:evaluate", "replay:run", "audit:read",
                      "sql:query", "keys:admin", "ingest:write", "alerts:ack"},
    "sre": _READ | {"slos:validate", "slos:evaluate", "replay:run", "alerts:ack"},
    "oncall": _READ | {"alerts:ack"},
    "auditor": _READ | {"audit:read", "sql:query"},
    "ingest": frozenset({"ingest:write"}),
}
ALL_PERMISSIONS = frozenset().union(*PERMISSIONS.values())


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    name: str
    role: str

    @property
    def actor(self) -> str:
        """Who acts, in audit entries."""
        return f"apikey:{self.key_id}" if self.key_id else "anonymous (auth off)"


#: who acts when ``http.auth`` is false (a trusted loopback setup)
ANONYMOUS = Principal("", "anonymous", "admin")


class Service(Protocol):
    """What the API needs of ``EngineService``: the engine and its writer's lock."""

    @property
    def engine(self) -> Engine: ...
    @property
    def lock(self) -> threading.RLock: ...
    @property
    def settings(self) -> Settings: ...


class TokenBucket:
    """``rate`` tokens a second up to ``burst``; a request takes one (Retry-After: when
    the next token comes)."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.at = float(burst), now

    def take(self, now: float) -> float:
        """0 when a token was taken, else the seconds until one is there."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class Buckets:
    rate: float
    burst: int
    _all: dict[str, TokenBucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, who: str, now: float) -> float:
        with self._lock:
            bucket = self._all.get(who)
            if bucket is None:
                if len(self._all) > 10_000:  # bounded memory under a flood of ids
                    self._all.clear()
                bucket = self._all[who] = TokenBucket(self.rate, self.burst, now)
            return bucket.take(now)


class Access:
    """Authentication, rate limits and the allowlist for one app."""

    def __init__(self, http: HttpSettings, service: Service | None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.http = http
        self.service = service
        self.monotonic = monotonic
        self.api_buckets = Buckets(http.rate_per_second, http.rate_burst)
        self.ingest_buckets = Buckets(http.ingest_rate_per_second, http.ingest_rate_burst)
        #: failed authentications per client address: guessing keys is throttled
        self.failures = Buckets(1.0, 20)
        self.networks = [ipaddress.ip_network(n, strict=False) for n in http.allow_ips]
        self._rows: dict[str, KeyRow] = {}
        self._loaded_at: float | None = None
        self._verified: dict[str, bytes] = {}
        self._lock = threading.Lock()

    # -- the key table cache -----------------------------------------------------------
    def refresh(self) -> None:
        """Reload the key table (call with the service lock held, or from a request)."""
        if self.service is None:
            return
        with self.service.lock:
            rows = {r.key_id: r for r in self.service.engine.key_rows()}
        with self._lock:
            self._rows, self._loaded_at = rows, self.monotonic()
            self._verified = {k: v for k, v in self._verified.items() if k in rows}

    def _row(self, key_id: str) -> KeyRow | None:
        with self._lock:
            row, loaded = self._rows.get(key_id), self._loaded_at
        now = self.monotonic()
        if loaded is None or (row is None and now - loaded >= 1.0) or now - loaded >= 30:
            self.refresh()
            with self._lock:
                row = self._rows.get(key_id)
        return row

    # -- one request -------------------------------------------------------------------
    def client_allowed(self, host: str | None) -> bool:
        if not self.networks:
            return True
        try:
            addr = ipaddress.ip_address(host or "")
        except ValueError:
            return False
        return any(addr in net for net in self.networks)

    def authenticate(self, request: Request) -> Principal:
        if not self.http.auth:
            return ANONYMOUS
        client = request.client.host if request.client else "unknown"
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return self._fail(client, "the Authorization header must be 'Bearer <key>'")
            token = token.strip()
        else:
            token = request.cookies.get(COOKIE, "")
            if not token:
                raise Problem(401, "this route needs an API key (Authorization: Bearer "
                              "<key>); an admin makes one with `sloengine keys create`",
                              headers={"WWW-Authenticate": 'Bearer realm="sloengine"'})
        parsed = Engine.parse_key(token)
        row = self._row(parsed[0]) if parsed else None
        if parsed is None or row is None or not self._matches(row, token, parsed[1]):
            return self._fail(client, "the API key is not valid")
        now = self._now()
        if row.revoked_at is not None:
            return self._fail(client, f"the API key {row.key_id} was revoked")
        if row.expires_at is not None and row.expires_at <= now:
            return self._fail(client, f"the API key {row.key_id} expired")
        return Principal(row.key_id, row.name, row.role)

    def _now(self) -> datetime:
        if self.service is None:
            return datetime.now().astimezone()
        return self.service.engine.clock()

    def _matches(self, row: KeyRow, token: str, secret: str) -> bool:
        digest = hashlib.sha256(token.encode()).digest()
        with self._lock:
            known = self._verified.get(row.key_id)
        if known is not None:
            return hmac.compare_digest(known, digest)
        if not Engine.key_matches(row, secret):  # scrypt: once per key and process
            return False
        with self._lock:
            self._verified[row.key_id] = digest
        return True

    def _fail(self, client: str, detail: str) -> Principal:
        wait = self.failures.take(client, self.monotonic())
        log.warning("authentication failed from %s: %s", client, detail)
        if wait:
            raise Problem(429, "too many failed authentications from this address",
                          headers={"Retry-After": str(math.ceil(wait))})
        raise Problem(401, detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    def admit(self, principal: Principal, permission: str) -> None:
        """Rate limit (per key), then the role check."""
        if principal.key_id:
            buckets = self.ingest_buckets if permission == "ingest:write" else self.api_buckets
            wait = buckets.take(principal.key_id, self.monotonic())
            if wait:
                raise Problem(429, f"rate limit of key {principal.key_id} reached",
                              headers={"Retry-After": str(math.ceil(wait))})
        if permission not in PERMISSIONS.get(principal.role, frozenset()):
            raise Problem(403, f"role {principal.role!r} lacks the permission {permission!r}")


def guard(permission: str) -> Callable[[Request], Principal]:
    """A FastAPI dependency: the caller's Principal when its role has ``permission``."""
    if permission not in ALL_PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def dependency(request: Request) -> Principal:
        access: Access = request.app.state.access
        principal = access.authenticate(request)
        access.admit(principal, permission)
        request.state.principal = principal
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency


def roles_table(permissions: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Which role has which permission (README, ``sloengine keys roles``)."""
    return [{"permission": p, **{r: p in PERMISSIONS[r] for r in ROLES}}
            for p in sorted(permissions or ALL_PERMISSIONS)]
