"""/api/v1 for admins and auditors: who am I, API keys, the audit trail, read-only SQL.

Keys: only an admin lists, makes or revokes them (there is no route by which a key reads or
changes another key: object-level authorization is the role check). A key's hash never
leaves the store; the key itself is in the answer to its creation only.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from starlette.responses import Response

from sloengine.api import models
from sloengine.api.access import PERMISSIONS, Access, Principal, guard
from sloengine.api.calls import call, json_response, parse_time
from sloengine.api.problems import Problem
from sloengine.engine import Engine, KeyRow
from sloengine.model import json_value

KeyId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{12}$")]
#: an evidence bundle covers at most this period
MAX_EXPORT = timedelta(days=400)


def key_json(row: KeyRow, key: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"schema": "sloengine.key/v1", **row.public()}
    if key is not None:
        doc["key"] = key
    return doc


def build_router() -> APIRouter:
    r = APIRouter(prefix="/api/v1")

    @r.get("/whoami", openapi_extra={"x-permission": "self:read"},
           responses={200: {"model": models.Whoami}})
    async def whoami(who: Annotated[Principal, Depends(guard("self:read"))]) -> Response:
        """The calling key: its id, name, role and permissions."""
        return json_response({"schema": "sloengine.whoami/v1", "id": who.key_id,
                              "name": who.name, "role": who.role,
                              "permissions": sorted(PERMISSIONS[who.role])})

    @r.get("/keys", openapi_extra={"x-permission": "keys:admin"},
           responses={200: {"model": models.KeyList}})
    async def keys(request: Request,
                   who: Annotated[Principal, Depends(guard("keys:admin"))]) -> Response:
        """Every API key (id, name, role, dates; never a hash or a key)."""
        rows = await call(request, who, lambda e: e.list_keys())
        return json_response({"schema": "sloengine.keys/v1",
                              "keys": [row.public() for row in rows]})

    @r.post("/keys", status_code=201, openapi_extra={"x-permission": "keys:admin"},
            responses={201: {"model": models.KeyInfo}})
    async def create_key(request: Request, body: models.KeyCreate,
                         who: Annotated[Principal, Depends(guard("keys:admin"))]) -> Response:
        """A new key; the answer holds the key itself, once (it is stored only as a
        salted hash)."""
        access: Access = request.app.state.access

        def make(e: Engine) -> tuple[KeyRow, str]:
            expires = (e.clock() + timedelta(days=body.expires_in_days)
                       if body.expires_in_days else None)
            made = e.create_key(body.role, body.name, expires)
            access.refresh()
            return made
        row, key = await call(request, who, make)
        return json_response(key_json(row, key), 201, {"Cache-Control": "no-store"})

    @r.delete("/keys/{key_id}", openapi_extra={"x-permission": "keys:admin"},
              responses={200: {"model": models.KeyInfo}})
    async def revoke_key(request: Request, key_id: KeyId,
                         who: Annotated[Principal, Depends(guard("keys:admin"))]) -> Response:
        """Revoke a key: from now on it answers 401."""
        access: Access = request.app.state.access

        def revoke(e: Engine) -> KeyRow | None:
            row = e.revoke_key(key_id)
            access.refresh()
            return row
        row = await call(request, who, revoke)
        if row is None:
            raise Problem(404, f"no API key {key_id}")
        return json_response(key_json(row))

    @r.get("/audit/verify", openapi_extra={"x-permission": "audit:read"},
           responses={200: {"model": models.AuditVerdict}})
    async def audit_verify(request: Request,
                           who: Annotated[Principal, Depends(guard("audit:read"))],
                           head: Annotated[str | None, Query(
                               max_length=100, pattern=r"^\d+:[0-9a-f]{64}$")] = None
                           ) -> Response:
        """Check the hash chain of the audit trail (against ``head`` SEQ:HASH from an
        earlier bundle, default the head kept in the database)."""
        verdict = await call(request, who, lambda e: e.audit_verify(head))
        return json_response({"schema": "sloengine.audit-verify/v1", **asdict(verdict)})

    @r.get("/audit/export", openapi_extra={"x-permission": "audit:read"}, responses={200: {
        "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}},
        "description": "the evidence bundle as a .tar.gz (with MANIFEST.sha256)"}})
    async def audit_export(request: Request,
                           who: Annotated[Principal, Depends(guard("audit:read"))],
                           from_: Annotated[str, Query(alias="from", min_length=1,
                                                       max_length=40)],
                           to: Annotated[str, Query(min_length=1, max_length=40)]
                           ) -> Response:
        """The evidence bundle of [from, to) — audit entries, chain head, SLO versions,
        reports, a sha256 manifest — as a .tar.gz."""
        a, b = parse_time(from_, "from"), parse_time(to, "to")
        if not a < b <= a + MAX_EXPORT:
            raise Problem(422, "to must be after from, at most 400 days later",
                          title="Request does not validate", kind="validation")

        def export(e: Engine) -> bytes:
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "evidence"
                e.audit_export(a, b, out)
                buf = io.BytesIO()
                with tarfile.open(fileobj=buf, mode="w:gz") as tar:
                    tar.add(out, arcname="evidence")
                return buf.getvalue()
        data = await call(request, who, export)
        return Response(data, 200, {"Content-Disposition":
                                    'attachment; filename="evidence.tar.gz"'},
                        "application/gzip")

    @r.post("/sql", openapi_extra={"x-permission": "sql:query"},
            responses={200: {"model": models.SqlResult}})
    async def sql(request: Request, body: models.SqlRequest,
                  who: Annotated[Principal, Depends(guard("sql:query"))]) -> Response:
        """One read-only SELECT over the engine's tables (not the key table, not engine
        secrets; no files, no network). Every query, refused or not, is audited."""
        cols, rows = await call(request, who, lambda e: e.query_here(body.query, body.limit))
        return json_response({"schema": "sloengine.sql/v1", "columns": cols,
                              "rows": [[json_value(v) for v in row] for row in rows]})

    return r
