"""Encryption at rest (store/crypt.py): with SLOENGINE_DB_ENCRYPTION_KEY the DuckDB file holds
no readable telemetry, the whole engine works on it unchanged, read-only and sandboxed opens
work with the key, and a missing or wrong key is one clear error naming the file.

This machine has no DuckDB httpfs extension (OpenSSL), so the files here are written with
DuckDB's mbedTLS module (``db_encryption_unsafe_mbedtls``); the file format and the key
checks are the same either way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from otlp_factory import span, trace_request

from sloengine.engine import Engine
from sloengine.errors import ConfigError
from sloengine.settings import load_settings
from sloengine.store import Store
from sloengine.store.crypt import Encryption, rekey

NAME = "checkout-very-secret-operation-name"
KEY = "correct horse battery staple"
UNSAFE = {"SLOENGINE_DB_ENCRYPTION_UNSAFE_MBEDTLS": "true"}


def _ingest(db: Path, key: str | None) -> None:
    settings = load_settings(None, db=db, db_encryption_key=key,
                             db_encryption_unsafe_mbedtls=True)
    body = trace_request([span(7, i + 1, name=NAME) for i in range(50)]).SerializeToString()
    with Engine(settings) as engine:
        engine.ingest_bytes(body, "traces", "otlp-proto", "t")
        engine.store.exec_("CHECKPOINT")  # the rows in the main file, not only the WAL


def _on_disk(db: Path) -> bytes:
    wal = db.with_name(db.name + ".wal")
    return db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_the_file_holds_no_readable_span_names(tmp_path: Path) -> None:
    plain, secret = tmp_path / "plain.duckdb", tmp_path / "secret.duckdb"
    _ingest(plain, None)
    _ingest(secret, KEY)
    assert NAME.encode() in _on_disk(plain)
    assert NAME.encode() not in _on_disk(secret)
    assert KEY.encode() not in _on_disk(secret)
    with Store(secret, encryption=Encryption(KEY), read_only=True) as ro:
        assert ro.one("SELECT count(*) FROM spans WHERE name = ?", [NAME]) == 50
        # rows_each reads on cursors of their own: they see the encrypted file too
        assert ro.rows_each([("SELECT count(*) FROM spans", None),
                             ("SELECT count(*) FROM ingest_batches", None)]) == [[(50,)], [(1,)]]


def test_missing_wrong_and_needless_keys_are_clear_errors(tmp_path: Path) -> None:
    secret, plain = tmp_path / "secret.duckdb", tmp_path / "plain.duckdb"
    _ingest(secret, KEY)
    _ingest(plain, None)
    with pytest.raises(ConfigError) as e:
        Store(secret)
    assert str(e.value) == (f"{secret}: this database file is encrypted: set "
                            "SLOENGINE_DB_ENCRYPTION_KEY to open it")
    with pytest.raises(ConfigError) as e:
        Store(secret, encryption=Encryption("not the key"), read_only=True)
    assert str(e.value) == (f"{secret}: wrong encryption key (SLOENGINE_DB_ENCRYPTION_KEY) "
                            "for this database file")
    with pytest.raises(ConfigError, match="is set but this database file is not encrypted"):
        Store(plain, encryption=Encryption(KEY, unsafe_mbedtls=True))
    # without a crypto module that writes (httpfs), writing is refused with the way out
    with pytest.raises(ConfigError, match="needs DuckDB's httpfs extension"):
        Store(tmp_path / "new.duckdb", encryption=Encryption(KEY))
    assert "not the key" not in repr(Encryption("not the key"))


def test_run_once_sql_and_rekey_on_an_encrypted_file(tmp_path: Path) -> None:
    """The whole path — ingest, evaluate, alerts — through the CLI on an encrypted file."""
    db = tmp_path / "e.duckdb"
    cfg = tmp_path / "sloengine.yaml"
    cfg.write_text(f"db: {db}\ninputs: [{ROOT / 'sample_data'}]\n"
                   f"slo_dir: {ROOT / 'slo_definitions'}\nreports_dir: {tmp_path / 'r'}\n"
                   f"notify_file: {tmp_path / 'none.yaml'}\n")
    env = {"SLOENGINE_DB_ENCRYPTION_KEY": KEY, **UNSAFE}
    p = run_cli("run", "--once", "--config", str(cfg), cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr
    assert "FIRING page: gateway-availability 99.9 (page-fast)" in p.stdout
    assert KEY not in p.stdout + p.stderr
    query = "SELECT count(*) AS n FROM spans WHERE service_name = 'api-gateway'"
    p = run_cli("sql", query, "--json", "--config", str(cfg), cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr
    n = json.loads(p.stdout)["rows"][0][0]
    assert n > 0
    p = run_cli("sql", query, "--config", str(cfg), cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.strip() == (f"sloengine: error: {db}: this database file is encrypted: "
                                "set SLOENGINE_DB_ENCRYPTION_KEY to open it")
    # a new key means a copy of the file
    copy = tmp_path / "rekeyed.duckdb"
    p = run_cli("db", "rekey", "--to", str(copy), "--config", str(cfg), cwd=tmp_path,
                env={**env, "SLOENGINE_DB_NEW_ENCRYPTION_KEY": "new key"})
    assert p.returncode == 0, p.stderr
    with Store(copy, encryption=Encryption("new key"), read_only=True) as ro:
        assert ro.one(query) == n
    with pytest.raises(ConfigError, match="wrong encryption key"):
        Store(copy, encryption=Encryption(KEY), read_only=True)
    # and back to a plain file
    plain = tmp_path / "plain.duckdb"
    rekey(str(copy), str(plain), Encryption("new key"), None)
    with Store(plain, read_only=True) as ro:
        assert ro.one(query) == n
