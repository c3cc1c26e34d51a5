"""Encryption at rest: the DuckDB file (and its WAL and temporary files) encrypted with
AES-256-GCM under a key from the environment (``SLOENGINE_DB_ENCRYPTION_KEY``).

DuckDB (>= 1.4) opens an encrypted file only through ``ATTACH 'file' AS name
(ENCRYPTION_KEY '…')``; the connection is an in-memory host database with the file attached
and made the default (``USE``), so every statement of the store runs unchanged. Cursors of the
connection start in the host database again and are pointed at the file too (``cursor``).

Writing needs a crypto module with a secure random source for the nonces: DuckDB's is OpenSSL
from its ``httpfs`` extension (``INSTALL httpfs`` once, with network access; it is loaded here
when present). The built-in mbedTLS module reads encrypted files but DuckDB refuses to write
with it, because its random numbers are not fit for GCM nonces; ``unsafe_mbedtls`` overrides
that (DuckDB's ``force_mbedtls_unsafe``) for tests and for machines that cannot install httpfs,
knowing the nonces may repeat.

The key never appears in an error, a log line or the audit trail. Limits: the key cannot be
changed in place — a new key means a copy (``rekey``: ``COPY FROM DATABASE`` into a new file).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from sloengine.errors import ConfigError, StoreError

#: the name the encrypted file is attached under (the default catalog of the connection)
CATALOG = "sloengine"
ENV = "SLOENGINE_DB_ENCRYPTION_KEY"


@dataclass(frozen=True, slots=True)
class Encryption:
    """The key of an encrypted database file. ``repr`` hides it."""

    key: str
    unsafe_mbedtls: bool = False

    def __repr__(self) -> str:
        return f"Encryption(key=***, unsafe_mbedtls={self.unsafe_mbedtls})"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _run(con: Any, sql: str) -> None:
    con.execute(sql).fetchall()


def _use_crypto(con: Any, enc: Encryption, read_only: bool) -> None:
    """OpenSSL (httpfs) when installed; else mbedTLS, which writes only when allowed."""
    try:
        _run(con, "LOAD httpfs")
        return
    except duckdb.Error:
        pass
    if enc.unsafe_mbedtls and not read_only:
        _run(con, "SET force_mbedtls_unsafe = true")


def connect(path: str, enc: Encryption, *, read_only: bool, sandboxed: bool
            ) -> duckdb.DuckDBPyConnection:
    """A connection whose default database is the encrypted file at ``path`` (made, and
    encrypted, when it does not exist yet). Raises ConfigError naming the file for a missing
    or wrong key, a plain file given a key, or no crypto module to write with."""
    if not enc.key:
        raise ConfigError(f"{ENV} is set but empty", where=path)
    con = duckdb.connect()
    try:
        _use_crypto(con, enc, read_only)
        opts = "ENCRYPTION_KEY " + _quote(enc.key) + (", READ_ONLY" if read_only else "")
        _run(con, f"ATTACH {_quote(path)} AS {CATALOG} ({opts})")
        _run(con, f"USE {CATALOG}")
        if sandboxed:  # after ATTACH: a sandboxed connection could not open the file
            _run(con, "SET enable_external_access = false")
    except duckdb.Error as exc:
        con.close()
        raise _explain(str(exc).split("\n")[0], path) from None
    return con


def _explain(message: str, path: str) -> Exception:
    low = message.lower()
    if "wrong encryption key" in low:
        return ConfigError(f"wrong encryption key ({ENV}) for this database file", where=path)
    if "is not encrypted" in low:
        return ConfigError(f"{ENV} is set but this database file is not encrypted; unset it, "
                           "or copy the data into an encrypted file (`sloengine db rekey`)",
                           where=path)
    if "read-only crypto module" in low:
        return ConfigError(
            "writing an encrypted database needs DuckDB's httpfs extension (OpenSSL): run "
            "`INSTALL httpfs` once with network access (or set db_encryption_unsafe_mbedtls, "
            "for tests: DuckDB's mbedTLS nonces are not secure)", where=path)
    return StoreError(message.replace("ENCRYPTION_KEY", "ENCRYPTION_KEY (hidden)"), where=path)


def plain_error(message: str, path: str) -> Exception | None:
    """The ConfigError for opening an encrypted file without a key (None: another error)."""
    if "encrypted database" in message.lower() and "without a key" in message.lower():
        return ConfigError(f"this database file is encrypted: set {ENV} to open it",
                           where=path)
    return None


def cursor(con: Any) -> Any:
    """A cursor of an encrypted connection, pointed at the file (cursors start in the host
    database)."""
    cur = con.cursor()
    _run(cur, f"USE {CATALOG}")
    return cur


def rekey(src: str, dst: str, old: Encryption | None, new: Encryption | None) -> None:
    """Copy the database at ``src`` into a new file ``dst`` under another key (or none):
    DuckDB cannot re-encrypt a file in place. The caller swaps the files."""
    con = duckdb.connect()
    try:
        for enc in (old, new):
            if enc is not None:
                _use_crypto(con, enc, read_only=False)
        for name, path, enc, ro in (("src", src, old, True), ("dst", dst, new, False)):
            opts = ["READ_ONLY"] if ro else []
            if enc is not None:
                opts.insert(0, "ENCRYPTION_KEY " + _quote(enc.key))
            suffix = f" ({', '.join(opts)})" if opts else ""
            try:
                _run(con, f"ATTACH {_quote(path)} AS {name}{suffix}")
            except duckdb.Error as exc:
                msg = str(exc).split("\n")[0]
                raise (plain_error(msg, path) or _explain(msg, path)) from None
        _run(con, "COPY FROM DATABASE src TO dst")
        _run(con, "DETACH dst")
    finally:
        con.close()
