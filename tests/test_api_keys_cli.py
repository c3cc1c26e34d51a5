"""``sloengine keys create|list|revoke`` as an operator runs them (real processes on a real
DuckDB file): the key is printed once, only its salted hash is stored, every action is in
the hash-chained audit trail, and a revoked key no longer opens the API."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from api_helpers import TestClient, settings_for
from conftest import run_cli

from sloengine.api import build_app
from sloengine.api.app import StandIn
from sloengine.engine import Engine
from sloengine.store.keys import hash_secret, parse_token, verify_secret


def test_keys_are_salted_hashes_checked_in_constant_time() -> None:
    a, b = hash_secret("s3cret"), hash_secret("s3cret")
    assert a != b and a.startswith("scrypt$16384$8$1$")  # a fresh salt each time
    assert verify_secret("s3cret", a) and not verify_secret("s3cret!", a)
    assert not verify_secret("s3cret", "md5$x") and not verify_secret("s3cret", "garbage")
    assert parse_token("slo_0123456789ab_" + "A" * 43) == ("0123456789ab", "A" * 43)
    assert parse_token("slo_0123456789ab_short") is None


def test_cli_create_list_revoke_audited(tmp_path: Path) -> None:
    db = tmp_path / "keys.duckdb"
    made = run_cli("keys", "create", "--role", "sre", "--name", "ci bot", "--expires", "30d",
                   "--json", "--db", str(db))
    assert made.returncode == 0, made.stderr
    doc = json.loads(made.stdout)
    assert set(doc) == {"schema", "id", "name", "role", "created_at", "created_by",
                        "expires_at", "revoked_at", "key"}
    assert doc["schema"] == "sloengine.key/v1" and doc["role"] == "sre"
    assert doc["name"] == "ci bot" and doc["expires_at"] and doc["revoked_at"] is None
    key = doc["key"]
    assert key.startswith(f"slo_{doc['id']}_") and len(key) == 60
    bad = run_cli("keys", "create", "--role", "root", "--db", str(db))
    assert bad.returncode == 2 and "--role: 'root' is not one of admin, sre" in bad.stderr

    settings = settings_for(db, tmp_path)
    with Engine(settings) as engine:
        app = build_app(service=StandIn(engine, threading.RLock(), settings))
        with TestClient(app) as client:
            me = client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {key}"})
            assert me.status_code == 200 and me.json()["role"] == "sre"
        stored = engine.store.rows("SELECT secret_hash FROM api_keys")
    assert len(stored) == 1 and key.split("_", 2)[2] not in stored[0][0]

    revoked = run_cli("keys", "revoke", doc["id"], "--json", "--db", str(db))
    assert revoked.returncode == 0 and json.loads(revoked.stdout)["revoked_at"]
    listed = run_cli("keys", "list", "--json", "--db", str(db))
    keys = json.loads(listed.stdout)["keys"]
    assert [k["id"] for k in keys] == [doc["id"]] and keys[0]["revoked_at"]
    assert key not in listed.stdout and "scrypt" not in listed.stdout
    with Engine(settings) as engine:
        app = build_app(service=StandIn(engine, threading.RLock(), settings))
        with TestClient(app) as client:
            r = client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 401 and "revoked" in r.json()["detail"]
        trail = engine.store.rows("SELECT action, object, outcome FROM audit_log "
                                  "WHERE action LIKE 'key.%' ORDER BY seq")
        assert trail == [("key.create", doc["id"], "ok"), ("key.revoke", doc["id"], "ok"),
                         ("key.list", "api_keys", "ok")]
        assert engine.audit_verify().ok
