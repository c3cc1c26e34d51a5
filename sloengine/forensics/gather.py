"""Collect every span, span event and log record of one request, across trace ids.

A request can cross several traces: a Kafka consumer starts a new trace and only points back
at the producer through a span link (OTLP-NOTES.md "Messaging": follow links in both
directions), and correlation ids promoted at ingest tie traces and logs of the same request
together. The closure is

    ids → traces → (links out, links in, correlation ids of those traces) → traces → ...

bounded by ``max_traces``. The rows come from a finder: the store's id index (locate.py) when
``Store.optimize_layout()`` has built it, a scan of the tables otherwise (finders.py) — the
same rows either way. The SQL runs through the store's query API (ARCHITECTURE.md rule 2);
ids travel as parameters only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sloengine.errors import TerminalError
from sloengine.forensics.finders import Finder, ScanFinder
from sloengine.forensics.locate import IndexedFinder
from sloengine.store import Store

#: One span row, in the column order of finders.SPAN_COLS.
_SPAN_FIELDS = (
    "trace_id", "span_id", "parent_span_id", "name", "kind", "service", "host", "start",
    "end", "status_code", "status_message", "is_error", "http_route", "http_method",
    "http_status_code", "rpc_system", "rpc_method", "rpc_status_code", "db_system",
    "db_operation", "db_collection", "messaging_system", "messaging_destination",
    "messaging_operation", "correlation_id", "links",
)
_LOG_FIELDS = ("time", "severity_number", "severity_text", "body", "service", "trace_id",
               "span_id", "correlation_id", "source_kind", "http_status_code", "record_id")


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


def gather(store: Store, ident: str, *, max_traces: int = 50,
           indexed: bool = True) -> Gathered:
    """Every span/log/event reachable from ``ident`` (trace id, span id or correlation id).

    ``indexed=False`` scans even when the id index exists (the reference it is checked
    against).
    """
    raw = ident.strip()
    if not raw:
        raise TraceNotFound("an empty id matches nothing")
    low = raw.lower()
    finder = _finder(store, indexed)
    seeds = finder.seeds(raw, low)
    matched = sorted({kind for _, kind in seeds})
    traces: list[str] = []
    corrs: list[str] = []
    frontier = sorted({str(t) for t, _ in seeds if t is not None})
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
            # the seeds already hold every trace carrying ``raw`` as correlation id
            if corr_frontier != [raw]:
                pending = [t for t in frontier if t not in traces]
                frontier = sorted(set(frontier)
                                  | finder.traces_of_corrs(corr_frontier, pending))
            corr_frontier = []
        frontier = [t for t in frontier if t not in traces]
        room = max_traces - len(traces)
        if len(frontier) > room:
            truncated = True
            frontier = _earliest(finder, frontier, room)
        if not frontier:
            break
        traces.extend(frontier)
        new_spans = _load_spans(finder, frontier)
        spans.update(new_spans)
        frontier, corr_frontier = _next(finder, frontier, new_spans, traces, corrs)
    logs = [dict(zip(_LOG_FIELDS, r, strict=True)) for r in finder.logs(traces, corrs)]
    events = [dict(zip(("trace_id", "span_id", "seq", "time", "name", "attributes"), r,
                       strict=True)) for r in finder.events(traces)]
    notes = []
    if truncated:
        notes.append(f"story truncated at {max_traces} traces: more traces are linked or "
                     "share a correlation id")
    return Gathered(raw, matched, [spans[k] for k in sorted(spans)], logs, events,
                    sorted(traces), sorted(set(corrs)), truncated, max_traces, notes)


def _finder(store: Store, indexed: bool) -> Finder:
    layout = store.layout_state() if indexed else None
    return ScanFinder(store) if layout is None else IndexedFinder(store, layout)


def _load_spans(finder: Finder, traces: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for r in finder.spans(traces):
        row = dict(zip(_SPAN_FIELDS, r, strict=True))
        row["links"] = [(lk["trace_id"], lk["span_id"]) for lk in row["links"] or []
                        if lk["trace_id"] and lk["span_id"]]
        out[(row["trace_id"], row["span_id"])] = row
    return out


def _next(finder: Finder, loaded: list[str], new_spans: dict[tuple[str, str], dict[str, Any]],
          traces: list[str], corrs: list[str]) -> tuple[list[str], list[str]]:
    """Traces and correlation ids one step further out from the traces just loaded."""
    known = set(traces)
    nxt: set[str] = set()
    linking, log_corrs = finder.neighbours(loaded, set(new_spans))
    new_corrs = {s["correlation_id"] for s in new_spans.values() if s["correlation_id"]}
    new_corrs |= log_corrs
    for s in new_spans.values():  # links out: consumer → producer
        nxt.update(t for t, _ in s["links"])
    nxt |= linking  # links in: spans elsewhere whose links point at these spans
    return sorted(nxt - known), sorted(new_corrs - set(corrs))


def _earliest(finder: Finder, candidates: list[str], room: int) -> list[str]:
    """The ``room`` candidate traces that start first (deterministic under truncation)."""
    if room <= 0:
        return []
    ordered = finder.by_start(candidates)
    rest = sorted(set(candidates) - set(ordered))  # traces known only from logs
    return (ordered + rest)[:room]
