"""The data of ``sloengine report``: ``"schema": "sloengine.report/v1"`` (``--format json``
writes it as is; the HTML and Markdown templates of ``report/`` render nothing else).

Versioned: fields are only added within v1; renaming or removing one makes v2. Times are ISO
8601 UTC (``2026-11-21T14:10:00Z``); exemplar times keep nanoseconds and come again as a
decimal string of unix nanoseconds (OTLP-NOTES.md §5). Ratios are unrounded floats
(0.999 = 99.9 %); ``null`` is "no data", never 0. Lists are sorted (SLOs by name, series by
objective then group, alerts by pending time), so the same store gives the same document.
Shape::

    {
      "schema": "sloengine.report/v1",
      "generated_at": iso,                  # the engine clock
      "period": {"from": iso, "to": iso, "label": str, "minutes": int, "step_minutes": int},
      "summary": [Row],                     # one per SLO × objective × group
      "slos": [Slo],                        # by name
      "auditor": null | Auditor             # with --auditor
    }
    Row = {"slo", "service", "objective", "target", "group", "status",
           "good", "total", "sli": float | null,          # events in the period
           "window_sli": float | null,                    # over the SLO window at "to"
           "budget_unit": "events" | "slices",
           "budget_remaining_start", "budget_remaining_end": float | null,
           "alerts": {"page": int, "ticket": int, ...}}   # alerts that fired, by severity
    Slo = {
      "name", "service", "display_name", "team", "owner", "runbook", "description",
      "version", "origin", "file", "window": "rolling 30d", "budgeting_method",
      "source": "spans" | "logs" | "metrics" | "prometheus",
      "indicator": {"kind": "ratio" | "latency", "threshold": "500ms" | null},
      "objectives": [{"name", "target"}],
      "tiers": [{"name", "severity", "long_window": "1h", "short_window": "5m",
                 "burn_rate": float}],                   # the alert policy in force
      "totals": [{"group", "good", "total", "sli"}],    # the period, corrections excluded
      "at_end": [{"objective", "target", "group", "status", "sli", "good", "total",
                  "budget": {"unit", "allowed", "consumed", "consumed_ratio",
                             "remaining_ratio"},
                  "burn_rates": {"1h": float | null, ...}, "time_to_exhaustion_seconds"}],
      "series": [{"objective", "target", "group",
                  "points": [{"t": iso, "status", "sli", "remaining_ratio", "consumed_ratio",
                              "step_good", "step_total", "step_sli"}],   # step ends at t
                  "days": [{"date": "2026-11-21", "good", "total", "sli",
                            "remaining_ratio_end"}]}],                    # UTC days
      "alerts": [{"id": "slo/objective/group|-/tier@pending_at", "objective", "group", "tier",
                  "severity", "pending_at", "firing_at": iso | null,
                  "resolved_at": iso | null,              # null: still on at "to"
                  "firing_minutes": int | null, "peak_long_burn_rate",
                  "peak_short_burn_rate"}],
      "corrections": [{"reason", "author", "start", "end", "duration", "repeat",
                       "excluded": [{"from", "to"}], "minutes", "events", "bad_events"}],
      "contributors": {"available": bool, "note": str | null, "bad_events", "total_events",
                       "by_route": [{"service", "route", "bad", "total", "bad_ratio",
                                     "share"}],          # share of the period's bad events
                       "by_service": [{"service", "bad_events", "spans", "share"}]},
      "exemplars": [{"time", "time_unix_nano": str, "trace_id", "span_id",
                     "correlation_id", "service", "route", "status_code", "duration_ns",
                     "detail", "command": "sloengine trace <id>"}]
    }
    Auditor = {"audit_head": "seq:sha256" | null,       # engine_meta audit_head, before
               "chain_verified": bool, "entries": int,  # this report's own entry
               "problem": str | null,
               "versions": [{"slo", "version", "origin", "file", "first_seen": iso | null,
                             "current": bool,      # the definition loaded now
                             "recorded": bool,     # false: evaluated but not in slo_versions
                             "evaluations": int,   # slo_evaluations rows in the period
                             "first_eval", "last_eval": iso | null}]}
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sloengine.compute.contributors import Contributors
from sloengine.compute.evaluate import window_label
from sloengine.compute.history import Series, SloHistory, VersionUse
from sloengine.spec.durations import format_duration
from sloengine.spec.model import LatencyIndicator
from sloengine.spec.policy import resolve

SCHEMA = "sloengine.report/v1"
_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class AuditHead:
    """The audit chain as the engine found it before writing the report."""

    head: str | None
    verified: bool
    entries: int
    problem: str | None


def iso_minute(m: int | None) -> str | None:
    if m is None:
        return None
    return datetime.fromtimestamp(m * 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_ns(ns: int) -> str:
    sec, frac = divmod(ns, _NS)
    return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def document(histories: list[SloHistory], t_from: int, t_to: int, step: int, *,
             generated_at: datetime, label: str | None = None,
             versions: list[VersionUse] | None = None, audit: AuditHead | None = None
             ) -> dict[str, Any]:
    """The v1 document (see the module docstring)."""
    slos = [slo_json(h) for h in sorted(histories, key=lambda h: h.loaded.slo.metadata.name)]
    return {
        "schema": SCHEMA,
        "generated_at": generated_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "period": {"from": iso_minute(t_from), "to": iso_minute(t_to),
                   "label": label or f"{iso_minute(t_from)} – {iso_minute(t_to)}",
                   "minutes": t_to - t_from, "step_minutes": step},
        "summary": [row for s in slos for row in _summary(s)],
        "slos": slos,
        "auditor": None if audit is None else _auditor(audit, versions or []),
    }


def _summary(s: dict[str, Any]) -> list[dict[str, Any]]:
    totals = {t["group"]: t for t in s["totals"]}
    series = {(x["objective"], x["group"]): x for x in s["series"]}
    out = []
    for r in s["at_end"]:
        tot = totals.get(r["group"], {"good": 0.0, "total": 0.0, "sli": None})
        pts = series.get((r["objective"], r["group"]), {"points": []})["points"]
        remaining = [p["remaining_ratio"] for p in pts if p["remaining_ratio"] is not None]
        fired = Counter(a["severity"] for a in s["alerts"] if a["firing_at"] is not None
                        and a["objective"] == r["objective"] and a["group"] == r["group"])
        out.append({
            "slo": s["name"], "service": s["service"], "objective": r["objective"],
            "target": r["target"], "group": r["group"], "status": r["status"],
            "good": tot["good"], "total": tot["total"], "sli": tot["sli"],
            "window_sli": r["sli"], "budget_unit": r["budget"]["unit"],
            "budget_remaining_start": remaining[0] if remaining else None,
            "budget_remaining_end": r["budget"]["remaining_ratio"],
            "alerts": dict(sorted(fired.items())),
        })
    return out


def slo_json(h: SloHistory) -> dict[str, Any]:
    slo, meta = h.loaded.slo, h.loaded.slo.metadata
    return {
        "name": meta.name, "service": meta.service, "display_name": meta.display_name,
        "team": meta.team, "owner": meta.owner, "runbook": meta.runbook,
        "description": meta.description, "version": h.loaded.version,
        "origin": h.loaded.origin, "file": h.loaded.file,
        "window": window_label(slo.spec.window), "budgeting_method": slo.spec.budgeting.method,
        "source": slo.spec.indicator.total.source,
        "indicator": {"kind": slo.spec.indicator.kind, "threshold": format_duration(
            slo.spec.indicator.threshold) if isinstance(slo.spec.indicator, LatencyIndicator)
            else None},
        "objectives": [{"name": o.name or f"{o.target:g}", "target": o.target}
                       for o in slo.spec.objectives],
        "tiers": [{"name": t.name, "severity": t.severity,
                   "long_window": format_duration(t.long_window),
                   "short_window": format_duration(t.short_window), "burn_rate": t.burn_rate}
                  for t in resolve(slo)],
        "totals": [{"group": t.group, "good": t.good, "total": t.total,
                    "sli": _ratio(t.good, t.total)} for t in h.totals],
        "at_end": [{
            "objective": r.objective, "target": r.target, "group": r.group,
            "status": r.status, "sli": r.sli, "good": r.good, "total": r.total,
            "budget": {"unit": r.error_budget.unit, "allowed": r.error_budget.allowed,
                       "consumed": r.error_budget.consumed,
                       "consumed_ratio": r.error_budget.consumed_ratio,
                       "remaining_ratio": r.error_budget.remaining_ratio},
            "burn_rates": dict(r.burn_rates),
            "time_to_exhaustion_seconds": r.time_to_exhaustion_seconds,
        } for r in sorted(h.at_end, key=lambda r: (r.objective, r.group))],
        "series": [_series_json(x, h.t_from) for x in h.series],
        "alerts": [{
            "id": f"{a.slo}/{a.objective}/{a.group or '-'}/{a.tier}@{iso_minute(a.pending)}",
            "objective": a.objective, "group": a.group, "tier": a.tier,
            "severity": a.severity, "pending_at": iso_minute(a.pending),
            "firing_at": iso_minute(a.firing), "resolved_at": iso_minute(a.resolved),
            "firing_minutes": None if a.firing is None
            else (a.resolved if a.resolved is not None else h.t_to) - a.firing,
            "peak_long_burn_rate": a.peak_long_burn, "peak_short_burn_rate": a.peak_short_burn,
        } for a in sorted(h.alerts, key=lambda a: (a.pending, a.objective, a.group, a.tier))],
        "corrections": [{
            "reason": c.reason, "author": c.author, "start": c.start, "end": c.end,
            "duration": c.duration, "repeat": c.repeat,
            "excluded": [{"from": iso_minute(a), "to": iso_minute(b)} for a, b in c.ranges],
            "minutes": sum(b - a for a, b in c.ranges), "events": c.events,
            "bad_events": c.bad_events,
        } for c in h.corrections],
        "contributors": _contributors_json(h.contributors),
        "exemplars": [{
            "time": _iso_ns(e.time_unix_nano), "time_unix_nano": str(e.time_unix_nano),
            "trace_id": e.trace_id, "span_id": e.span_id, "correlation_id": e.correlation_id,
            "service": e.service, "route": e.route, "status_code": e.status_code,
            "duration_ns": e.duration_ns, "detail": e.detail,
            "command": f"sloengine trace {e.trace_id or e.correlation_id}",
        } for e in h.contributors.exemplars if e.trace_id or e.correlation_id],
    }


def _series_json(x: Series, t_from: int) -> dict[str, Any]:
    days: dict[str, dict[str, Any]] = {}
    for p in x.points:
        if p.t <= t_from:  # its step lies before the period
            continue
        day = datetime.fromtimestamp((p.t - 1) * 60, UTC).strftime("%Y-%m-%d")
        d = days.setdefault(day, {"date": day, "good": 0.0, "total": 0.0})
        d["good"] += p.step_good
        d["total"] += p.step_total
        d["remaining_ratio_end"] = p.remaining_ratio
    return {
        "objective": x.objective, "target": x.target, "group": x.group,
        "points": [{"t": iso_minute(p.t), "status": p.status, "sli": p.sli,
                    "remaining_ratio": p.remaining_ratio, "consumed_ratio": p.consumed_ratio,
                    "step_good": p.step_good, "step_total": p.step_total,
                    "step_sli": _ratio(p.step_good, p.step_total)} for p in x.points],
        "days": [{"date": d["date"], "good": d["good"], "total": d["total"],
                  "sli": _ratio(d["good"], d["total"]),
                  "remaining_ratio_end": d["remaining_ratio_end"]} for d in days.values()],
    }


def _contributors_json(c: Contributors) -> dict[str, Any]:
    return {
        "available": c.available, "note": c.note, "bad_events": c.bad_events,
        "total_events": c.total_events,
        "by_route": [{"service": r.service, "route": r.route, "bad": r.bad, "total": r.total,
                      "bad_ratio": _ratio(r.bad, r.total), "share": _ratio(r.bad, c.bad_events)}
                     for r in c.by_route],
        "by_service": [{"service": s.service, "bad_events": s.bad_events, "spans": s.spans,
                        "share": _ratio(s.bad_events, c.bad_events)} for s in c.by_service],
    }


def _auditor(audit: AuditHead, versions: list[VersionUse]) -> dict[str, Any]:
    return {
        "audit_head": audit.head, "chain_verified": audit.verified, "entries": audit.entries,
        "problem": audit.problem,
        "versions": [{
            "slo": v.slo, "version": v.version, "origin": v.origin, "file": v.file,
            "first_seen": None if v.first_seen is None
            else v.first_seen.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "current": v.current, "recorded": v.known, "evaluations": v.evaluations,
            "first_eval": iso_minute(v.first_eval), "last_eval": iso_minute(v.last_eval),
        } for v in versions],
    }
