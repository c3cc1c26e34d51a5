"""Versioned schema migrations: ``migrations/NNN_name.sql`` applied in order, each once, each
in its own transaction, recorded in ``schema_migrations``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """The migrations shipped with the package, in version order."""
    out = []
    for entry in resources.files("sloengine.store").joinpath("migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            out.append(Migration(int(m.group(1)), m.group(2), entry.read_text("utf-8")))
    out.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in out]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version: {versions}")
    return out


def apply(con: Any, now: Any) -> list[int]:
    """Apply pending migrations; returns the versions applied now."""
    _exec(con,
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    done = {r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for mig in available():
        if mig.version in done:
            continue
        _exec(con, "BEGIN TRANSACTION")
        try:
            _exec(con, mig.sql)
            _exec(con,
                "INSERT INTO schema_migrations VALUES (?, ?, ?)", [mig.version, mig.name, now]
            )
            _exec(con, "COMMIT")
        except Exception:
            _exec(con, "ROLLBACK")
            raise
        applied.append(mig.version)
    return applied


def current_version(con: Any) -> int:
    rows = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchall()
    return int(rows[0][0])


def _exec(con: Any, sql: str, params: list[Any] | None = None) -> None:
    con.execute(sql, params or []).fetchall()
