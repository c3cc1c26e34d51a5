"""Erasure on request (GDPR art. 17) for the Engine: ``Engine.erase``.

The engine knows what the store does not: which column an attribute key is promoted to
(ingest/semconv.py), which keys carry the correlation id (settings), and the redaction key
that turned a value into ``[redacted:RULE:HMAC]`` at ingest — so a redacted e-mail address is
found by its token. The store deletes (store/erase.py); the audit trail gets one entry that
says what was matched and how much went, per table and per lineage batch, never the value
itself: only its keyed HMAC (the token's hash), which an auditor holding the redaction key
can check against a value and nobody else can reverse.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sloengine.errors import ConfigError
from sloengine.ingest.semconv import LOG_PROMOTED, SPAN_PROMOTED
from sloengine.settings import Settings
from sloengine.store.crypt import Encryption, rekey
from sloengine.store.erase import ErasureMatch, ErasureReport
from sloengine.store.erase import erase as store_erase

if TYPE_CHECKING:
    from sloengine.engine_ingest import IngestFacade as Engine


def parse_attribute(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` (the value may contain ``=``; neither part may be empty)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or not value:
        raise ConfigError(f"expected KEY=VALUE, got {text!r}", where="--attribute")
    return key, value


def erase(engine: Engine, key: str, value: str, *, dry_run: bool = False) -> ErasureReport:
    """Erase (or with ``dry_run`` only count) the records carrying ``key=value``; audited
    either way (a dry run is a look-up of personal data too)."""
    if engine.store.read_only:
        raise ConfigError("erasure needs the writer; stop `sloengine run` or use its API",
                          where=engine.store.path)
    # the HMAC part of the token redaction made of this value (the rule name is before it)
    token_hash = engine.read_options().redactor.token("", value).rsplit(":", 1)[1][:-1]
    match = ErasureMatch(
        key=key, value=value,
        token_hash=token_hash if engine.settings.redaction.enabled else None,
        span_column=SPAN_PROMOTED[key][0] if key in SPAN_PROMOTED else None,
        log_column=LOG_PROMOTED[key][0] if key in LOG_PROMOTED else None,
        correlation=key in engine.settings.correlation_keys)
    report = store_erase(engine.store, match, dry_run=dry_run)
    engine.audit("erase.dry_run" if dry_run else "erase", f"attribute:{key}", "ok", {
        "key": key, "value_hmac": token_hash, "dry_run": dry_run, "counts": report.counts,
        "by_batch": {str(b): c for b, c in sorted(report.by_batch.items())}})
    return report


def rekey_database(settings: Settings, target: Path, new_key: str | None) -> None:
    """Copy the database (opened with the configured key, if any) into a new file
    ``target`` encrypted with ``new_key`` (None: not encrypted). DuckDB cannot change the key
    of a file in place; the caller moves the new file over the old one while nothing runs."""
    if target.exists():
        raise ConfigError("the target file exists; pick a new path", where=str(target))
    old = settings.db_encryption_key
    unsafe = settings.db_encryption_unsafe_mbedtls
    rekey(str(settings.db), str(target),
          None if old is None else Encryption(old.get_secret_value(), unsafe),
          None if not new_key else Encryption(new_key, unsafe))
