"""The /api/v1 contract as pydantic models: request bodies are strict and refuse unknown
fields (mass assignment: a caller cannot set ``id``, ``created_by`` or a hash); response
models describe the versioned JSON shapes the CLI's ``--json`` prints (README "JSON
output") for the OpenAPI document, which schemathesis checks responses against.

Response models allow extra fields: within a version, shapes only grow.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["admin", "sre", "oncall", "auditor", "ingest"]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class KeyCreate(Body):
    role: Role
    name: str = Field(default="", max_length=100, pattern=r"^[\w .@:/+\-]*$")
    #: days until the key stops working (none: it does not expire)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class EvaluateRequest(Body):
    #: evaluate at this minute (default: now); ISO 8601 with a time zone
    at: datetime | None = Field(default=None, strict=False)  # ISO text in JSON
    slo: str | None = Field(default=None, min_length=1, max_length=200)


class AckRequest(Body):
    #: why, or what is being done (shown next to the alert)
    note: str | None = Field(default=None, min_length=1, max_length=500)
    #: the ack lapses then: an ISO 8601 time with a zone, or a duration from now (``2h``)
    until: str | None = Field(default=None, min_length=1, max_length=40)


class SqlRequest(Body):
    query: str = Field(min_length=1, max_length=10_000)
    limit: int = Field(default=1000, ge=1, le=10_000)


class Shape(BaseModel):
    model_config = ConfigDict(extra="allow")


class Problem(Shape):
    """RFC 7807 problem details (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    request_id: str


class Whoami(Shape):
    schema_: Literal["sloengine.whoami/v1"] = Field(alias="schema")
    id: str
    name: str
    role: Role
    permissions: list[str]


class KeyInfo(Shape):
    schema_: Literal["sloengine.key/v1"] = Field(alias="schema")
    id: str
    name: str
    role: Role
    created_at: str
    created_by: str
    expires_at: str | None
    revoked_at: str | None
    key: str | None = Field(default=None, description="the key itself: only when created")


class KeyList(Shape):
    schema_: Literal["sloengine.keys/v1"] = Field(alias="schema")
    keys: list[dict[str, Any]]


class Evaluation(Shape):
    schema_: Literal["sloengine.evaluate/v1"] = Field(alias="schema")
    evaluated_at: str | None
    results: list[dict[str, Any]]


class Validation(Shape):
    schema_: Literal["sloengine.validate/v1"] = Field(alias="schema")
    ok: bool
    slos: list[dict[str, Any]]
    diagnostics: list[dict[str, Any]]


class Replay(Shape):
    schema_: Literal["sloengine.replay/v1"] = Field(alias="schema")
    from_: str | None = Field(alias="from")
    to: str | None
    step_minutes: int
    alerts: list[dict[str, Any]]
    incidents: list[dict[str, Any]]
    missed: list[Any]
    false_alerts: list[str]


class Alerts(Shape):
    schema_: Literal["sloengine.alerts/v1"] = Field(alias="schema")
    alerts: list[dict[str, Any]]
    targets: list[dict[str, Any]]
    not_routed: int
    no_route: int
    dead: list[dict[str, Any]]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class AlertAck(Shape):
    schema_: Literal["sloengine.alert-ack/v1"] = Field(alias="schema")
    dedup_key: str
    state: str
    acknowledged: dict[str, Any] | None = Field(
        description="{by, at, note, until} of the ack in effect, or null")


class Trace(Shape):
    schema_: Literal["sloengine.trace/v1"] = Field(alias="schema")


class Exemplars(Shape):
    schema_: Literal["sloengine.traces/v1"] = Field(alias="schema")
    slo: str
    exemplars: list[dict[str, Any]]


class LineageDoc(Shape):
    schema_: Literal["sloengine.lineage/v1"] = Field(alias="schema")
    query: str
    trace_ids: list[str]
    hops: list[dict[str, Any]]
    batches: list[dict[str, Any]]


class Report(Shape):
    schema_: Literal["sloengine.report/v1"] = Field(alias="schema")


class AuditVerdict(Shape):
    schema_: Literal["sloengine.audit-verify/v1"] = Field(alias="schema")
    ok: bool
    entries: int
    head: str | None


class SqlResult(Shape):
    schema_: Literal["sloengine.sql/v1"] = Field(alias="schema")
    columns: list[str]
    rows: list[list[Any]]
