"""The OWASP API Security Top 10 (2023) as a checklist against the real app on the sample
data, plus the HTTP mechanics the contract promises: X-Request-ID, ETag/304, Deprecation.

API1 BOLA · API2 broken authentication · API3 excessive data exposure / mass assignment ·
API4 resource consumption · API5 function-level authorization · API8 misconfiguration ·
injection through filters (API10-adjacent: data from callers is data, never SQL)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import Api, api
from otlp_factory import span, trace_request

from sloengine.api.access import PERMISSIONS

DAY = "from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z"


@pytest.fixture(scope="module")
def a(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with api(tmp_path_factory.mktemp("owasp"), failures=1000) as x:
        yield x


def _problem(r: object, status: int) -> dict[str, object]:
    resp = r  # an httpx.Response
    assert resp.status_code == status, resp.text  # type: ignore[attr-defined]
    assert resp.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    doc: dict[str, object] = resp.json()  # type: ignore[attr-defined]
    assert doc["status"] == status and doc["type"].startswith("https://sloengine.dev/problems/")  # type: ignore[union-attr]
    return doc


def test_api1_bola_a_key_cannot_reach_another_key(a: Api) -> None:
    """Keys are the only per-principal objects: only admins see or revoke them; whoami
    shows the caller only."""
    victim = a.ids["sre"]
    for role in ("sre", "oncall", "auditor", "ingest"):
        _problem(a.client.delete(f"/api/v1/keys/{victim}", headers=a.auth(role)), 403)
        _problem(a.client.get("/api/v1/keys", headers=a.auth(role)), 403)
    me = a.client.get("/api/v1/whoami", headers=a.auth("oncall")).json()
    assert me == {"schema": "sloengine.whoami/v1", "id": a.ids["oncall"], "name": "oncall key",
                  "role": "oncall", "permissions": sorted(PERMISSIONS["oncall"])}


def test_api2_broken_authentication(a: Api) -> None:
    c, good = a.client, a.keys["auditor"]
    key_id = good.split("_")[1]
    for header in ("", "Basic abc", "Bearer", "Bearer slo_nothex_x", f"Bearer {good}x",
                   f"Bearer slo_{key_id}_{'A' * 43}", f"bearer {a.keys['revoked']}",
                   f"Bearer {a.keys['expired']}"):
        doc = _problem(c.get("/api/v1/whoami", headers={"Authorization": header}), 401)
        assert good not in json.dumps(doc)
    # the session cookie works like the bearer token, and a bad cookie is a 401
    c.cookies.set("sloengine_session", good)
    assert c.get("/api/v1/whoami").status_code == 200
    c.cookies.set("sloengine_session", "slo_x")
    _problem(c.get("/api/v1/whoami"), 401)
    c.cookies.clear()


def test_api2_guessing_keys_is_throttled_per_address(tmp_path: Path) -> None:
    with api(tmp_path, failures=3) as x:
        bad = {"Authorization": f"Bearer slo_{x.ids['admin']}_{'B' * 43}"}
        codes = [x.client.get("/api/v1/whoami", headers=bad).status_code for _ in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        r = x.client.get("/api/v1/whoami", headers=bad)
        assert int(r.headers["retry-after"]) >= 1
        # a valid key from the same address still works (only failures are counted)
        assert x.client.get("/api/v1/whoami", headers=x.auth("admin")).status_code == 200


def test_api3_no_hashes_or_secrets_are_ever_returned(a: Api) -> None:
    c, admin = a.client, a.auth("admin")
    made = c.post("/api/v1/keys", json={"role": "oncall", "name": "pager"}, headers=admin)
    assert made.status_code == 201 and made.headers["cache-control"] == "no-store"
    key = made.json()["key"]
    assert key.startswith(f"slo_{made.json()['id']}_")
    listed = c.get("/api/v1/keys", headers=admin).text
    stored = a.engine.store.rows("SELECT secret_hash FROM api_keys")
    for (h,) in stored:
        assert h.startswith("scrypt$") and h not in listed
    for secret in [key, *a.keys.values()]:
        assert secret not in listed
    assert "secret_hash" not in listed and "scrypt" not in listed
    # nor through SQL: the key table and the engine's secrets are not readable
    for q in ("SELECT * FROM api_keys", "SELECT value FROM engine_meta",
              "WITH api_keys AS (SELECT 1) SELECT * FROM main.api_keys"):
        _problem(c.post("/api/v1/sql", json={"query": q}, headers=a.auth("auditor")), 422)


def test_api3_mass_assignment_extra_fields_are_refused(a: Api) -> None:
    admin = a.auth("admin")
    for extra in ({"id": "000000000000"}, {"created_by": "root"}, {"secret_hash": "x"},
                  {"revoked_at": None}, {"key": "slo_000000000000_" + "A" * 43}):
        doc = _problem(a.client.post("/api/v1/keys", json={"role": "admin", **extra},
                                     headers=admin), 422)
        assert doc["errors"][0]["type"] == "extra_forbidden"  # type: ignore[index]
    _problem(a.client.post("/api/v1/keys", json={"role": "root"}, headers=admin), 422)
    _problem(a.client.post("/api/v1/evaluate", json={"at": None, "force": True},
                           headers=a.auth("sre")), 422)


def test_api4_resource_consumption_limits(a: Api) -> None:
    c, h = a.client, a.auth("admin")
    big = {"query": "SELECT 1 --" + "x" * (1 << 20)}
    _problem(c.post("/api/v1/sql", json=big, headers=h), 413)
    _problem(c.get("/api/v1/alerts?limit=100000", headers=h), 422)
    _problem(c.get("/api/v1/replay?from=2026-01-01T00:00:00Z&to=2026-11-22T00:00:00Z",
                   headers=h), 422)
    bomb = "a: &a [x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefghijklmnopqrs", "bcdefghijklmnopqrst", strict=True))
    _problem(c.post("/api/v1/slos/validate", content=bomb,
                    headers={**h, "content-type": "application/yaml"}), 422)


def test_api4_rate_limit_per_key_with_retry_after(tmp_path: Path) -> None:
    with api(tmp_path, rate_per_second=0.5, rate_burst=3) as x:
        codes = [x.client.get("/api/v1/whoami", headers=x.auth("oncall")).status_code
                 for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = x.client.get("/api/v1/whoami", headers=x.auth("oncall"))
        assert r.headers["retry-after"] == "2"
        # another key has its own bucket: one noisy client does not starve the others
        assert x.client.get("/api/v1/whoami", headers=x.auth("sre")).status_code == 200


def test_api5_function_level_authorization_writes_need_write_roles(a: Api) -> None:
    for role in ("oncall", "auditor", "ingest"):
        _problem(a.client.post("/api/v1/evaluate", headers=a.auth(role)), 403)
        _problem(a.client.get(f"/api/v1/replay?{DAY}", headers=a.auth(role)), 403)
    for role in ("sre", "oncall", "ingest"):
        _problem(a.client.post("/api/v1/sql", json={"query": "SELECT 1"},
                               headers=a.auth(role)), 403)


def test_injection_through_filters_is_data(a: Api) -> None:
    h = a.auth("oncall")
    for value in ("' OR 1=1 --", "page' UNION SELECT secret_hash FROM api_keys --"):
        r = a.client.get("/api/v1/alerts", params={"severity": value, "state": "resolved"},
                         headers=h)
        assert r.status_code == 200 and r.json()["alerts"] == []
        r = a.client.get("/api/v1/alerts", params={"slo": value, "state": "resolved"},
                         headers=h)
        assert r.status_code == 200 and r.json()["alerts"] == []
    assert a.client.get("/api/v1/alerts?state=resolved&severity=page",
                        headers=h).json()["alerts"] != []
    for q in ("SELECT * FROM read_text('/etc/passwd')", "SELECT * FROM '/etc/passwd'",
              "SELECT getenv('HOME')", "SELECT 1; DROP TABLE spans", "DELETE FROM spans"):
        _problem(a.client.post("/api/v1/sql", json={"query": q}, headers=a.auth("auditor")),
                 422)
    assert a.engine.store.one("SELECT count(*) FROM spans") > 0


def test_api8_misconfiguration(a: Api, caplog: pytest.LogCaptureFixture) -> None:
    c = a.client
    assert c.get("/api/v1/docs").status_code == 404  # no docs UI unless http.docs
    r = c.get("/api/v1/whoami", headers=a.auth("sre"))
    assert "server" not in r.headers and r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    _problem(c.get("/nope"), 404)
    _problem(c.put("/api/v1/slos", headers=a.auth("admin")), 405)
    # a crash inside a handler: problem+json 500, no traceback, logged with the request id
    real = a.engine.current_state

    def boom(*_: object) -> object:
        raise RuntimeError("secret internals /srv/db.duckdb")
    a.engine.current_state = boom  # type: ignore[method-assign]
    try:
        with caplog.at_level(logging.ERROR, "sloengine.api"):
            r = c.get("/api/v1/slos", headers={**a.auth("sre"), "X-Request-ID": "crash-1"})
    finally:
        a.engine.current_state = real  # type: ignore[method-assign]
    doc = _problem(r, 500)
    assert doc["request_id"] == "crash-1" and "internals" not in r.text
    assert "Traceback" not in r.text and "RuntimeError" in caplog.text


def test_request_id_is_echoed_logged_and_audited(a: Api) -> None:
    h = {**a.auth("sre"), "X-Request-ID": "incident-4711"}
    r = a.client.post("/api/v1/evaluate", json={"slo": "gateway-availability"}, headers=h)
    assert r.status_code == 200 and r.headers["x-request-id"] == "incident-4711"
    rows = a.engine.store.rows("SELECT actor, action FROM audit_log WHERE correlation_id = ?",
                               ["incident-4711"])
    assert rows and {x[0] for x in rows} == {f"apikey:{a.ids['sre']}"}
    assert ("apikey:" + a.ids["sre"], "evaluate") in rows
    # a bad one (too long, control characters) is replaced by a fresh uuid4
    for bad in ("x" * 129, "a\tb"):
        got = a.client.get("/api/v1/whoami", headers={**a.auth("sre"), "X-Request-ID": bad})
        assert len(got.headers["x-request-id"]) == 36


def test_etag_304_and_cache_for_expensive_reads(a: Api) -> None:
    h = a.auth("sre")
    first = a.client.get(f"/api/v1/replay?{DAY}&step=5m", headers=h)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, no-cache"
    again = a.client.get(f"/api/v1/replay?{DAY}&step=5m", headers=h)
    assert again.headers["etag"] == etag and again.content == first.content
    r = a.client.get(f"/api/v1/replay?{DAY}&step=5m", headers={**h, "If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    # another query is another entity; new data is another version
    other = a.client.get(f"/api/v1/replay?{DAY}&step=10m", headers=h).headers["etag"]
    assert other != etag
    with a.service.lock:
        a.engine.create_key("oncall", "not data")  # the version stays
    assert a.client.get(f"/api/v1/replay?{DAY}&step=5m", headers=h).headers["etag"] == etag
    with a.service.lock:
        a.engine.ingest_bytes(trace_request([span(990, 1)]).SerializeToString(), "traces",
                              "otlp-proto", "test")
    fresh = a.client.get(f"/api/v1/replay?{DAY}&step=5m", headers={**h, "If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["etag"] != etag


def test_retired_route_says_so(a: Api) -> None:
    r = a.client.get("/api/v1/state", headers=a.auth("oncall"))
    assert r.status_code == 200
    assert r.headers["deprecation"] == "true"
    assert r.headers["sunset"] == "Thu, 31 Dec 2026 23:59:59 GMT"
    assert r.headers["link"] == '</api/v1/slos>; rel="successor-version"'
    assert "deprecation" not in a.client.get("/api/v1/slos", headers=a.auth("oncall")).headers


def test_ip_allowlist(tmp_path: Path) -> None:
    with api(tmp_path, allow_ips=["10.0.0.0/8"]) as x:  # the test client is 'testclient'
        _problem(x.client.get("/api/v1/whoami", headers=x.auth("admin")), 403)
        access = x.client.app.state.access  # type: ignore[attr-defined]
        assert access.client_allowed("10.1.2.3") and not access.client_allowed("127.0.0.1")
