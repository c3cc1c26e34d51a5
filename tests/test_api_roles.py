"""Every route of the app, called with every role's key, with no key, an expired key and a
revoked key, against a real app on a real DuckDB file holding the sample data: the exact
allow/deny table is pinned in tests/golden/api-roles.json (regenerate with UPDATE_GOLDEN=1
after a deliberate policy change), and it must agree with the role → permission table of
sloengine/api/access.py route by route."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from api_helpers import Api, api
from conftest import ROOT
from fastapi.routing import APIRoute
from otlp_factory import span, trace_request

from sloengine.api.access import PERMISSIONS

GOLDEN = ROOT / "tests" / "golden" / "api-roles.json"
WHO = ("none", "expired", "revoked", "admin", "sre", "oncall", "auditor", "ingest")
DAY = "from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z"
TRACE = "05019d3c8e385faa6d852cab90acc5d7"
SLO_YAML = (ROOT / "slo_definitions" / "gateway.yaml").read_text()

#: one request per route: (path with its parameters, keyword arguments of the request)
SAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "GET /api/v1/slos": ("/api/v1/slos", {}),
    "GET /api/v1/state": ("/api/v1/state", {}),
    "GET /api/v1/slos/{name}": ("/api/v1/slos/gateway-availability", {}),
    "POST /api/v1/evaluate": ("/api/v1/evaluate", {"json": {"slo": "gateway-availability"}}),
    "POST /api/v1/slos/validate": ("/api/v1/slos/validate", {
        "content": SLO_YAML, "headers": {"content-type": "application/yaml"}}),
    "GET /api/v1/replay": (f"/api/v1/replay?{DAY}&step=5m", {}),
    "GET /api/v1/alerts": ("/api/v1/alerts?state=resolved&limit=5", {}),
    # nothing fires at the sample's "now": a role allowed through gets 404 (no such alert)
    "POST /api/v1/alerts/{dedup_key:path}/ack": (
        "/api/v1/alerts/gateway-availability/99.9/-/page-fast/ack", {"json": {"note": "walk"}}),
    "DELETE /api/v1/alerts/{dedup_key:path}/ack": (
        "/api/v1/alerts/gateway-availability/99.9/-/page-fast/ack", {}),
    "GET /api/v1/traces/{ident}": (f"/api/v1/traces/{TRACE}", {}),
    "GET /api/v1/slos/{name}/bad-events": (
        f"/api/v1/slos/gateway-availability/bad-events?{DAY}&limit=3", {}),
    "GET /api/v1/lineage/{ident}": (f"/api/v1/lineage/{TRACE}", {}),
    "GET /api/v1/reports": (f"/api/v1/reports?{DAY}&slo=gateway-availability", {}),
    "GET /api/v1/whoami": ("/api/v1/whoami", {}),
    "GET /api/v1/keys": ("/api/v1/keys", {}),
    "POST /api/v1/keys": ("/api/v1/keys", {"json": {"role": "oncall", "name": "walk"}}),
    "DELETE /api/v1/keys/{key_id}": ("/api/v1/keys/000000000000", {}),
    "GET /api/v1/audit/verify": ("/api/v1/audit/verify", {}),
    "GET /api/v1/audit/export": (
        "/api/v1/audit/export?from=2026-11-23T00:00:00Z&to=2026-11-25T00:00:00Z", {}),
    "POST /api/v1/sql": ("/api/v1/sql", {"json": {"query": "SELECT count(*) FROM spans"}}),
    "POST /v1/traces": ("/v1/traces", {
        "content": trace_request([span(900, 1)]).SerializeToString(),
        "headers": {"content-type": "application/x-protobuf"}}),
    "POST /v1/logs": ("/v1/logs", {"content": b"{}",
                                   "headers": {"content-type": "application/json"}}),
    "POST /v1/metrics": ("/v1/metrics", {"content": b"{}",
                                         "headers": {"content-type": "application/json"}}),
    "GET /healthz": ("/healthz", {}),
    "GET /api/v1/openapi.json": ("/api/v1/openapi.json", {}),
    # the status pages (api/pages.py), asked for as an API client would (no text/html)
    "GET /": ("/", {}),
    "GET /slos/{name}": ("/slos/gateway-availability", {}),
    "GET /traces/{ident}": (f"/traces/{TRACE}", {}),
    "GET /login": ("/login", {}),
    "POST /login": ("/login", {}),
    "POST /logout": ("/logout", {}),
}


@pytest.fixture(scope="module")
def app_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with api(tmp_path_factory.mktemp("roles")) as a:
        yield a


def _routes(a: Api) -> dict[str, str | None]:
    """'METHOD path' → the permission its guard asks for (None: public)."""
    out: dict[str, str | None] = {}
    for route in _flat(a.client.app.routes):  # type: ignore[attr-defined]
        methods = sorted(getattr(route, "methods", None) or [])
        perm = None
        if isinstance(route, APIRoute):
            perms = [getattr(d.call, "permission", None) for d in route.dependant.dependencies]
            perm = next((p for p in perms if p), None)
        for m in methods:
            if m != "HEAD":
                out[f"{m} {route.path}"] = perm  # type: ignore[attr-defined]
    return out


def _flat(routes: list[Any]) -> Iterator[Any]:
    """Routes, with those of included routers (FastAPI keeps them nested)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _flat(inner.routes)
        else:
            yield route


def _call(a: Api, route: str, who: str) -> int:
    method = route.split(" ")[0]
    path, kw = SAMPLES[route]
    headers = {**kw.get("headers", {}), **a.auth(who)}
    extra = {k: v for k, v in kw.items() if k != "headers"}
    return a.client.request(method, path, headers=headers, **extra).status_code


def test_every_route_with_every_role(app_api: Api) -> None:
    routes = _routes(app_api)
    missing = sorted(set(routes) - set(SAMPLES))
    assert missing == [], f"routes without a sample request in this test: {missing}"
    table = {r: {who: _call(app_api, r, who) for who in WHO} for r in sorted(routes)}
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(table, indent=1) + "\n")
    assert table == json.loads(GOLDEN.read_text())
    # and the table is the policy: a guarded route answers 401 to every bad key, 403 to a
    # role without its permission, and lets every role with it through
    for route, perm in routes.items():
        row = table[route]
        if perm is None:
            continue
        assert {row[w] for w in ("none", "expired", "revoked")} == {401}, route
        for role, granted in PERMISSIONS.items():
            assert (row[role] != 403) == (perm in granted), (route, role, row[role])
            assert row[role] != 401, (route, role)
