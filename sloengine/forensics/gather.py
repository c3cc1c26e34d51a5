"""Collect every span, span event and log record of one request, across trace ids.

A request can cross several traces: a Kafka consumer starts a new trace and only points back
at the producer through a span link (OTLP-NOTES.md "Messaging": follow links in both
directions), and correlation ids promoted at ingest tie traces and logs of the same request
together. The closure is

    ids → traces → (links out, links in, correlation ids of those traces) → traces → ...

bounded by ``max_traces``. The SQL below runs through the store's query API (ARCHITECTURE.md
rule 2); ids travel as parameters only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sloengine.errors import TerminalError
from sloengine.store import Store

#: One span row, in this column order (see ``SpanRow`` field names).
_SPAN_SQL = """
SELECT trace_id, span_id, parent_span_id, name, kind, service_name,
       resource_attributes['host.name'] AS host, start_time_unix_nano, end_time_unix_nano,
       status_code, status_message, is_error, http_route, http_method, http_status_code,
       rpc_system, rpc_method, rpc_status_code, db_system, db_operation, db_collection,
       messaging_system, messaging_destination, messaging_operation, correlation_id,
       [{'trace_id': l.trace_id, 'span_id': l.span_id} FOR l IN coalesce(links, [])] AS links
FROM spans WHERE trace_id IN (SELECT unnest(?::VARCHAR[]))
"""
_SPAN_FIELDS = (
    "trace_id", "span_id", "parent_span_id", "name", "kind", "service", "host", "start",
    "end", "status_code", "status_message", "is_error", "http_route", "http_method",
    "http_status_code", "rpc_system", "rpc_method", "rpc_status_code", "db_system",
    "db_operation", "db_collection", "messaging_system", "messaging_destination",
    "messaging_operation", "correlation_id", "links",
)
_SEED_SQL = """
SELECT DISTINCT trace_id, 'trace_id' FROM spans WHERE trace_id = $hex
UNION SELECT DISTINCT trace_id, 'span_id' FROM spans WHERE span_id = $short
UNION SELECT DISTINCT trace_id, 'correlation_id' FROM spans WHERE correlation_id = $raw
UNION SELECT DISTINCT trace_id, 'trace_id' FROM logs WHERE trace_id = $hex
UNION SELECT DISTINCT trace_id, 'span_id' FROM logs WHERE span_id = $short
UNION SELECT DISTINCT trace_id, 'correlation_id' FROM logs WHERE correlation_id = $raw
"""
_TRACES_OF_CORR_SQL = """
SELECT DISTINCT trace_id FROM spans WHERE correlation_id IN (SELECT unnest(?::VARCHAR[]))
UNION SELECT DISTINCT trace_id FROM logs
  WHERE correlation_id IN (SELECT unnest(?::VARCHAR[])) AND trace_id IS NOT NULL
"""
_CORR_OF_LOGS_SQL = """
SELECT DISTINCT correlation_id FROM logs
WHERE trace_id IN (SELECT unnest(?::VARCHAR[])) AND correlation_id IS NOT NULL
"""
#: Spans whose links point at any of the given span ids (consumers of a producer).
_LINKED_FROM_SQL = """
SELECT DISTINCT trace_id, [l.trace_id || ':' || l.span_id FOR l IN links] AS targets
FROM spans WHERE len(links) > 0 AND list_has_any([l.span_id FOR l IN links], ?::VARCHAR[])
"""
_TRACE_START_SQL = """
SELECT trace_id, min(start_time_unix_nano) AS t FROM spans
WHERE trace_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY 1 ORDER BY t, trace_id
"""
_LOG_SQL = """
SELECT time_unix_nano, severity_number, severity_text, body, service_name, trace_id, span_id,
       correlation_id, source_kind, http_status_code, record_id
FROM logs
WHERE trace_id IN (SELECT unnest($traces::VARCHAR[]))
   OR correlation_id IN (SELECT unnest($corrs::VARCHAR[]))
ORDER BY time_unix_nano, record_id
"""
_LOG_FIELDS = ("time", "severity_number", "severity_text", "body", "service", "trace_id",
               "span_id", "correlation_id", "source_kind", "http_status_code", "record_id")
_EVENT_SQL = """
SELECT trace_id, span_id, seq, time_unix_nano, name, attributes FROM span_events
WHERE trace_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY trace_id, span_id, seq
"""


class TraceNotFound(TerminalError):
    """No span or log record carries the id (as trace id, span id or correlation id)."""


@dataclass(slots=True)
class Gathered:
    """Raw rows of one request's story, before any tree is built."""

    query: str
    matched_as: list[str]
    spans: list[dict[str, Any]]
    logs: list[dict[str, Any]]
    events: list[dict[str, Any]]
    trace_ids: list[str]
    correlation_ids: list[str]
    truncated: bool = False
    max_traces: int = 50
    notes: list[str] = field(default_factory=list)


def gather(store: Store, ident: str, *, max_traces: int = 50) -> Gathered:
    """Every span/log/event reachable from ``ident`` (trace id, span id or correlation id)."""
    raw = ident.strip()
    if not raw:
        raise TraceNotFound("an empty id matches nothing")
    low = raw.lower()
    seeds = store.rows(_SEED_SQL, {"hex": low, "short": low, "raw": raw})
    matched = sorted({str(r[1]) for r in seeds})
    traces: list[str] = []
    corrs: list[str] = []
    frontier = sorted({str(r[0]) for r in seeds if r[0] is not None})
    corr_frontier: list[str] = []
    if "correlation_id" in matched:
        corr_frontier = [raw]
    if not matched:
        raise TraceNotFound(f"no span or log record has trace id, span id or correlation id "
                            f"{raw!r}")
    spans: dict[tuple[str, str], dict[str, Any]] = {}
    truncated = False
    while frontier or corr_frontier:
        if corr_frontier:
            corrs.extend(corr_frontier)
            found = store.rows(_TRACES_OF_CORR_SQL, [corr_frontier, corr_frontier])
            frontier = sorted(set(frontier) | {str(r[0]) for r in found})
            corr_frontier = []
        frontier = [t for t in frontier if t not in traces]
        room = max_traces - len(traces)
        if len(frontier) > room:
            truncated = True
            frontier = _earliest(store, frontier, room)
        if not frontier:
            break
        traces.extend(frontier)
        new_spans = _load_spans(store, frontier)
        spans.update(new_spans)
        frontier, corr_frontier = _next(store, frontier, new_spans, traces, corrs)
    logs = [dict(zip(_LOG_FIELDS, r, strict=True))
            for r in store.rows(_LOG_SQL, {"traces": traces, "corrs": corrs})]
    events = [dict(zip(("trace_id", "span_id", "seq", "time", "name", "attributes"), r,
                       strict=True)) for r in store.rows(_EVENT_SQL, [traces])]
    notes = []
    if truncated:
        notes.append(f"story truncated at {max_traces} traces: more traces are linked or "
                     "share a correlation id")
    return Gathered(raw, matched, list(spans.values()), logs, events, sorted(traces),
                    sorted(set(corrs)), truncated, max_traces, notes)


def _load_spans(store: Store, traces: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for r in store.rows(_SPAN_SQL, [traces]):
        row = dict(zip(_SPAN_FIELDS, r, strict=True))
        row["links"] = [(lk["trace_id"], lk["span_id"]) for lk in row["links"]
                        if lk["trace_id"] and lk["span_id"]]
        out[(row["trace_id"], row["span_id"])] = row
    return out


def _next(store: Store, loaded: list[str], new_spans: dict[tuple[str, str], dict[str, Any]],
          traces: list[str], corrs: list[str]) -> tuple[list[str], list[str]]:
    """Traces and correlation ids one step further out from the traces just loaded."""
    known = set(traces)
    nxt: set[str] = set()
    new_corrs = {s["correlation_id"] for s in new_spans.values() if s["correlation_id"]}
    new_corrs |= {str(r[0]) for r in store.rows(_CORR_OF_LOGS_SQL, [loaded])}
    for s in new_spans.values():  # links out: consumer → producer
        nxt.update(t for t, _ in s["links"])
    keys = {f"{t}:{sid}" for t, sid in new_spans}
    span_ids = sorted({sid for _, sid in new_spans})
    if span_ids:  # links in: spans elsewhere whose links point at these spans
        for trace_id, targets in store.rows(_LINKED_FROM_SQL, [span_ids]):
            if keys.intersection(targets or []):
                nxt.add(str(trace_id))
    return sorted(nxt - known), sorted(new_corrs - set(corrs))


def _earliest(store: Store, candidates: list[str], room: int) -> list[str]:
    """The ``room`` candidate traces that start first (deterministic under truncation)."""
    if room <= 0:
        return []
    ordered = [str(r[0]) for r in store.rows(_TRACE_START_SQL, [candidates])]
    rest = sorted(set(candidates) - set(ordered))  # traces known only from logs
    return (ordered + rest)[:room]
