"""/api/v1: what the CLI reads and does, over HTTP, in the CLI's versioned JSON shapes.

Thin (ARCHITECTURE.md rule 1): parse and check the input, call one Engine method through
``calls.call`` (under the writer's lock, as the caller), shape the answer. Every route names
its permission (api/access.py); the OpenAPI document carries it as ``x-permission``.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import yaml
from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from starlette.responses import Response

from sloengine.api import models
from sloengine.api.access import Principal, guard
from sloengine.api.calls import cached, call, iso_minute, json_response, parse_time
from sloengine.api.problems import Problem
from sloengine.engine import Engine
from sloengine.model import SloResult
from sloengine.spec import load_paths, parse_duration

#: ranges a single read may span (bounded work per request)
MAX_REPLAY = timedelta(days=31)
MAX_REPORT = timedelta(days=400)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/plain")
#: a YAML document with more aliases than this is refused (alias bombs)
_MAX_ALIASES = 100

SloName = Annotated[str, PathParam(min_length=1, max_length=200, pattern=r"^[\w.\-]+$")]
Ident = Annotated[str, PathParam(min_length=1, max_length=200, pattern=r"^[\w.:\-]+$")]
DedupKey = Annotated[str, PathParam(min_length=1, max_length=600,
                                     description="slo/objective/group/tier")]
TimeQ = Annotated[str, Query(min_length=1, max_length=40, description="ISO 8601 time")]


def _route(permission: str, model: type[Any]) -> dict[str, Any]:
    """The route's permission (``x-permission``) and its 200 shape, for the OpenAPI doc."""
    return {"openapi_extra": {"x-permission": permission},
            "responses": {200: {"model": model}}}


def result_json(r: dict[str, Any]) -> dict[str, Any]:
    """One evaluate result as ``sloengine.evaluate/v1`` has it (cli_slo.result_json)."""
    out = dict(r)
    out["evaluated_at"] = iso_minute(out.pop("eval_minute"))
    out["alerts"] = [{k: a[k] for k in ("tier", "severity", "long_window", "short_window",
                                        "threshold", "long_burn_rate", "short_burn_rate",
                                        "state")} for a in out["alerts"]]
    return out


def evaluation(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schema": "sloengine.evaluate/v1",
            "evaluated_at": max((r["evaluated_at"] for r in results), default=None),
            "results": results}


def replay_json(rep: dict[str, Any]) -> dict[str, Any]:
    """``sloengine.replay/v1`` (the shape ``sloengine replay --json`` prints)."""
    sc = rep["score"]
    return {
        "schema": "sloengine.replay/v1", "from": iso_minute(rep["from"]),
        "to": iso_minute(rep["to"]), "step_minutes": rep["step"],
        "alerts": [{"slo": a.slo, "objective": a.objective, "group": a.group, "tier": a.tier,
                    "severity": a.severity, "pending_at": iso_minute(a.pending),
                    "firing_at": iso_minute(a.firing), "resolved_at": iso_minute(a.resolved),
                    "peak_long_burn_rate": a.peak_long_burn,
                    "peak_short_burn_rate": a.peak_short_burn} for a in rep["alerts"]],
        "incidents": [{**i, "start": iso_minute(i["start"]), "end": iso_minute(i["end"])}
                      for i in sc["incidents"]],
        "missed": sc["missed"],
        "false_alerts": [f"{a.slo}/{a.objective}/{a.group or '-'}/{a.tier}@"
                         f"{iso_minute(a.firing)}" for a in sc["false_alerts"]],
    }


def _known(engine: Engine, name: str) -> None:
    if name not in engine.slo_names():
        raise Problem(404, f"no SLO named {name!r}")


def _period(t_from: str, t_to: str, longest: timedelta) -> tuple[Any, Any]:
    a, b = parse_time(t_from, "from"), parse_time(t_to, "to")
    if b <= a:
        raise Problem(422, "to must be after from", title="Request does not validate",
                      kind="validation")
    if b - a > longest:
        raise Problem(422, f"the period is longer than {longest.days} days",
                      title="Request does not validate", kind="validation")
    return a, b


def _step(step: str) -> int:
    try:
        minutes = int(parse_duration(step).total_seconds()) // 60
    except ValueError as exc:
        raise Problem(422, f"step: {exc}", title="Request does not validate",
                      kind="validation") from None
    if minutes < 1:
        raise Problem(422, "step must be at least 1m", title="Request does not validate",
                      kind="validation")
    return minutes


def _until(value: str, now: datetime) -> datetime:
    """An ack's expiry: a duration from now (``2h``) or an ISO 8601 time."""
    try:
        return now + parse_duration(value)
    except ValueError:
        return parse_time(value, "until")


def build_router() -> APIRouter:
    r = APIRouter(prefix="/api/v1")

    @r.get("/slos", **_route("slos:read", models.Evaluation))
    async def slos(request: Request,
                   who: Annotated[Principal, Depends(guard("slos:read"))]) -> Response:
        """Every SLO's current state (the newest evaluation: SLI, budget, burn rates,
        alerts) — a read; nothing is evaluated."""
        rows = await call(request, who, lambda e: e.current_state(), locked=False)
        return json_response(evaluation([result_json(x) for x in rows]))

    @r.get("/state", deprecated=True, **_route("slos:read", models.Evaluation))
    async def state(request: Request,
                    who: Annotated[Principal, Depends(guard("slos:read"))]) -> Response:
        """Retired: use GET /api/v1/slos (answers with Deprecation and Sunset headers)."""
        return await slos(request, who)

    @r.get("/slos/{name}", **_route("slos:read", models.Evaluation))
    async def slo(request: Request, name: SloName,
                  who: Annotated[Principal, Depends(guard("slos:read"))]) -> Response:
        """One SLO's current state."""
        def read(e: Engine) -> list[dict[str, Any]]:
            _known(e, name)
            return e.current_state(name)
        return json_response(evaluation([result_json(x) for x in await call(request, who,
                                                                            read)]))

    @r.post("/evaluate", **_route("slos:evaluate", models.Evaluation))
    async def evaluate(request: Request,
                       who: Annotated[Principal, Depends(guard("slos:evaluate"))],
                       body: models.EvaluateRequest | None = None) -> Response:
        """Evaluate now (or at ``at``): records the evaluation and moves alert state."""
        req = body or models.EvaluateRequest()

        def run(e: Engine) -> list[SloResult]:
            if req.slo is not None:
                _known(e, req.slo)
            return e.evaluate(req.at, req.slo)
        results = await call(request, who, run)
        return json_response(evaluation([result_json(asdict(x)) for x in results]))

    @r.post("/slos/validate", openapi_extra={
        "x-permission": "slos:validate",
        "requestBody": {"required": True, "content": {
            t: {"schema": {"type": "string"}} for t in YAML_TYPES[:1] + YAML_TYPES[3:]}}},
        responses={200: {"model": models.Validation}})
    async def validate(request: Request,
                       who: Annotated[Principal, Depends(guard("slos:validate"))]) -> Response:
        """Validate SLO documents sent as YAML (native, OpenSLO, Sloth, slo-generator):
        errors and warnings with line and field; nothing is stored."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in YAML_TYPES:
            raise Problem(415, "send the SLO document as application/yaml")
        text = (await request.body()).decode("utf-8", "replace")
        try:
            aliases = sum(isinstance(ev, yaml.AliasEvent) for ev in yaml.parse(text))
        except yaml.YAMLError:
            aliases = 0  # load_paths reports the syntax error with its line
        if aliases > _MAX_ALIASES:
            raise Problem(422, f"more than {_MAX_ALIASES} YAML aliases",
                          title="Request cannot be carried out", kind="engine-refused")
        with tempfile.TemporaryDirectory() as tmp:
            f = Path(tmp) / "body.yaml"
            f.write_text(text, encoding="utf-8")
            result = load_paths([f])

            def name(file: str) -> str:
                return "<body>" if file == str(f) else file
            doc = {"schema": "sloengine.validate/v1", "ok": not result.errors,
                   "slos": [{"name": s.slo.metadata.name, "service": s.slo.metadata.service,
                             "file": name(s.file), "line": s.line, "origin": s.origin,
                             "version": s.version} for s in result.slos],
                   "diagnostics": [{**asdict(d), "file": name(d.file)}
                                   for d in result.diagnostics]}
        return json_response(doc)

    @r.get("/replay", **_route("replay:run", models.Replay))
    async def replay(request: Request, who: Annotated[Principal, Depends(guard("replay:run"))],
                     from_: Annotated[str, Query(alias="from", min_length=1, max_length=40)],
                     to: TimeQ, step: Annotated[str, Query(max_length=10)] = "1m",
                     slo: Annotated[str | None, Query(max_length=200)] = None) -> Response:
        """Backtest the alert policy over [from, to] (at most 31 days): the alert timeline
        and detection of the known incidents. Cached by ETag on the data version."""
        a, b = _period(from_, to, MAX_REPLAY)
        minutes = _step(step)

        def run(e: Engine) -> dict[str, Any]:
            if slo is not None:
                _known(e, slo)
            return replay_json(e.replay(a, b, minutes, slo))
        return await cached(request, who, run)

    @r.get("/alerts", **_route("alerts:read", models.Alerts))
    async def alerts(request: Request, who: Annotated[Principal, Depends(guard("alerts:read"))],
                     state: Annotated[list[Literal["pending", "firing", "resolved",
                                                   "inactive"]] | None, Query()] = None,
                     severity: Annotated[str | None, Query(max_length=50)] = None,
                     slo: Annotated[str | None, Query(max_length=200)] = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 50,
                     cursor: Annotated[str | None, Query(max_length=400)] = None,
                     acknowledged: bool | None = None) -> Response:
        """Alerts (default: pending and firing) filtered by state, severity, SLO and
        whether an ack is in effect, a page at a time (``next_cursor``), with the outbox
        per notifier."""
        states = tuple(state) if state else ("pending", "firing")
        view = await call(request, who, lambda e: e.alerts_view(
            states=states, severity=severity, slo=slo, after=cursor, limit=limit,
            acknowledged=acknowledged))
        return json_response({"schema": "sloengine.alerts/v1", **view})

    # dedup keys hold slashes (slo/objective/group/tier): a path converter takes them whole,
    # sent as they are or percent-encoded (%2F)
    @r.post("/alerts/{dedup_key:path}/ack", **_route("alerts:ack", models.AlertAck))
    async def ack(request: Request, dedup_key: DedupKey,
                  who: Annotated[Principal, Depends(guard("alerts:ack"))],
                  body: models.AckRequest | None = None) -> Response:
        """Acknowledge the alert's current firing (or pending) episode: who and when, an
        optional note and expiry. Acking again keeps the first ack. PagerDuty targets get
        an ``acknowledge`` event after the trigger. 404: no pending or firing alert."""
        req = body or models.AckRequest()

        def run(e: Engine) -> dict[str, Any]:
            until = None if req.until is None else _until(req.until, e.clock())
            return e.ack_alert(dedup_key, req.note, until)
        return json_response(await call(request, who, run))

    @r.delete("/alerts/{dedup_key:path}/ack", **_route("alerts:ack", models.AlertAck))
    async def unack(request: Request, dedup_key: DedupKey,
                    who: Annotated[Principal, Depends(guard("alerts:ack"))]) -> Response:
        """Take back the ack of the alert's current episode (``removed``: whether there was
        one). Nothing is sent: PagerDuty has no un-acknowledge event."""
        return json_response(await call(request, who, lambda e: e.unack_alert(dedup_key)))

    @r.get("/traces/{ident}", **_route("traces:read", models.Trace))
    async def trace(request: Request, ident: Ident,
                    who: Annotated[Principal, Depends(guard("traces:read"))],
                    adjust_skew: bool = False,
                    max_traces: Annotated[int, Query(ge=1, le=200)] = 50) -> Response:
        """One request by trace id, span id or correlation id: its tree, critical path,
        error origin, orphans and skew."""
        return json_response(await call(request, who, lambda e: e.trace_document(
            ident, adjust_skew=adjust_skew, max_traces=max_traces)))

    @r.get("/slos/{name}/bad-events", **_route("traces:read", models.Exemplars))
    async def bad_events(request: Request, name: SloName,
                         who: Annotated[Principal, Depends(guard("traces:read"))],
                         from_: Annotated[str, Query(alias="from", min_length=1,
                                                     max_length=40)],
                         to: TimeQ, status: Literal["error"] | None = None,
                         limit: Annotated[int, Query(ge=1, le=500)] = 20,
                         order: Literal["worst", "newest"] = "worst") -> Response:
        """Requests that burned the SLO's budget in [from, to), with their ids."""
        a, b = _period(from_, to, MAX_REPORT)

        def run(e: Engine) -> list[dict[str, Any]]:
            _known(e, name)
            return [x.to_json() for x in e.trace_exemplars(
                name, a, b, errors_only=status == "error", limit=limit, order=order)]
        found = await call(request, who, run)
        return json_response({"schema": "sloengine.traces/v1", "slo": name,
                              "from": a.isoformat(), "to": b.isoformat(), "order": order,
                              "exemplars": found})

    @r.get("/lineage/{ident}", **_route("lineage:read", models.LineageDoc))
    async def lineage(request: Request, ident: Ident,
                      who: Annotated[Principal, Depends(guard("lineage:read"))]) -> Response:
        """The hops of one request and the ingest batch behind every record."""
        lin = await call(request, who, lambda e: e.lineage(ident))
        return json_response({"schema": "sloengine.lineage/v1", **asdict(lin)})

    @r.get("/reports", **_route("reports:read", models.Report))
    async def report(request: Request, who: Annotated[Principal, Depends(guard("reports:read"))],
                     from_: Annotated[str, Query(alias="from", min_length=1, max_length=40)],
                     to: TimeQ, slo: Annotated[list[str] | None, Query()] = None,
                     step: Annotated[str, Query(max_length=10)] = "1h") -> Response:
        """The report of [from, to) as ``sloengine.report/v1`` (per SLO: SLI and budget
        series, alerts, top contributors; a summary across SLOs). Cached by ETag."""
        a, b = _period(from_, to, MAX_REPORT)
        minutes = _step(step)

        def run(e: Engine) -> Any:
            for name in slo or []:
                _known(e, name)
            with tempfile.TemporaryDirectory() as tmp:
                files = e.report(a, b, Path(tmp), "json", slos=slo or None,
                                 label=f"{a.isoformat()} – {b.isoformat()}",
                                 step_minutes=minutes)
                return orjson.loads(next(f for f in files if f.suffix == ".json").read_bytes())
        return await cached(request, who, run)

    return r
