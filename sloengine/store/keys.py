"""API keys at rest: only a salted hash of each key's secret is stored (scrypt, RFC 7914,
from the standard library), compared in constant time (``hmac.compare_digest``).

A key reads ``slo_<key_id>_<secret>``: the id is public (it names the key in lists and audit
entries, and finds its row without scanning), the secret is 256 random bits. With secrets
that strong a fast hash would already resist guessing; scrypt keeps a stolen database file
from being useful even so, and the service verifies each key once per process (api/access.py
caches the verdict), so its cost is paid once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sloengine.store.database import Store

#: scrypt cost: 16 MiB of memory and ~50 ms per check on this kind of machine (OWASP's
#: password storage cheat sheet names N=2^17 for passwords; keys are random, not chosen).
_N, _R, _P = 1 << 14, 8, 1
_TOKEN = re.compile(r"^slo_([0-9a-f]{12})_([A-Za-z0-9_\-]{43})$")
_COLS = "key_id, name, role, secret_hash, created_at, created_by, expires_at, revoked_at"


@dataclass(frozen=True, slots=True)
class KeyRow:
    key_id: str
    name: str
    role: str
    secret_hash: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None

    def public(self) -> dict[str, str | None]:
        """What may be shown about a key: never its hash."""
        return {"id": self.key_id, "name": self.name, "role": self.role,
                "created_at": self.created_at.isoformat(), "created_by": self.created_by,
                "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
                "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat()}


def new_token() -> tuple[str, str, str]:
    """(key_id, secret, the whole key) — the key is shown once and never stored."""
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    return key_id, secret, f"slo_{key_id}_{secret}"


def parse_token(token: str) -> tuple[str, str] | None:
    """(key_id, secret) of a well-formed key, else None."""
    m = _TOKEN.match(token)
    return (m[1], m[2]) if m else None


def hash_secret(secret: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, want = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                             p=int(p), dklen=len(want) // 2)
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), want)


def insert(store: Store, row: KeyRow) -> None:
    store.exec_(f"INSERT INTO api_keys ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [row.key_id, row.name, row.role, row.secret_hash, row.created_at,
                 row.created_by, row.expires_at, row.revoked_at])


def get(store: Store, key_id: str) -> KeyRow | None:
    found = store.rows(f"SELECT {_COLS} FROM api_keys WHERE key_id = ?", [key_id])
    return KeyRow(*found[0]) if found else None


def all_keys(store: Store) -> list[KeyRow]:
    return [KeyRow(*r) for r in store.rows(
        f"SELECT {_COLS} FROM api_keys ORDER BY created_at, key_id")]


def revoke(store: Store, key_id: str, at: datetime) -> None:
    store.exec_("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                [at, key_id])
