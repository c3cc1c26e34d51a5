"""Where the bad events of a period came from: top routes and services, and exemplar requests.

The bad events are the SLO's own events (its ``total`` filter; not good by its ``good``/``bad``
filter or latency threshold), counted by the minute of their END time like the buckets
(buckets.py), corrections excluded — so ``bad_events`` here equals the budget's bad events for
the period. Event-sourced SLOs only (spans, logs); metric and PromQL SLOs have no events.

By service: inside the traces of the bad events, the services whose own spans failed (status
ERROR) — or, for a latency SLO, took longer than the threshold — counted once per bad event,
so a downstream failure that surfaced at the gateway is credited to the service it began in
as well as to the gateway. Spans are looked up within a day either side of the period.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sloengine.compute.exemplars import bad_event_filter
from sloengine.compute.filters import predicate
from sloengine.spec.model import (
    SLO,
    LatencyIndicator,
    LogSource,
    SpanSource,
)
from sloengine.store import Store

NS_PER_MIN = 60_000_000_000
_SLACK_NS = 24 * 60 * NS_PER_MIN

#: per event source: table, time column, the route label, a free-text detail
_SOURCES = {
    "spans": ("spans", "end_time_unix_nano",
              "coalesce(http_method || ' ' || http_route, http_route, "
              "rpc_service || '/' || rpc_method, messaging_destination, name)",
              "status_message"),
    "logs": ("logs", "time_unix_nano",
             "coalesce(http_method || ' ' || http_route, http_route, event_name)", "body"),
}


@dataclass(frozen=True, slots=True)
class RouteContributor:
    service: str
    route: str
    bad: int
    total: int


@dataclass(frozen=True, slots=True)
class ServiceContributor:
    service: str
    bad_events: int  # bad events whose trace holds a failing (or slow) span of this service
    spans: int


@dataclass(frozen=True, slots=True)
class Exemplar:
    time_unix_nano: int
    trace_id: str | None
    span_id: str | None
    correlation_id: str | None
    service: str | None
    route: str | None
    status_code: int | None
    duration_ns: int | None
    detail: str | None


@dataclass(frozen=True, slots=True)
class Contributors:
    available: bool
    note: str | None = None
    source: str | None = None
    bad_events: int = 0
    total_events: int = 0
    by_route: list[RouteContributor] = field(default_factory=list)
    by_service: list[ServiceContributor] = field(default_factory=list)
    exemplars: list[Exemplar] = field(default_factory=list)


def _events_sql(slo: SLO, source: str, t_from: int, t_to: int,
                excl: list[tuple[int, int]]) -> tuple[str, list[Any]]:
    """SELECT of every event of the SLO in the period with a ``bad`` flag — the bad-event
    predicate of exemplars.py, so "bad" means here what it means to the buckets."""
    ind = slo.spec.indicator
    table, tcol, route, detail = _SOURCES[source]
    assert isinstance(ind.total, SpanSource | LogSource)
    _, bad_where, bad_params = bad_event_filter(slo)
    total_params: list[Any] = []
    total = predicate(source, ind.total.where, total_params)
    if isinstance(ind, LatencyIndicator):
        total += " AND duration_ns IS NOT NULL"
    excl_params: list[Any] = []
    excl_sql = "FALSE"
    if excl:
        excl_sql = "(" + " OR ".join(f"({tcol} >= ? AND {tcol} < ?)" for _ in excl) + ")"
        for a, b in excl:
            excl_params.extend([a * NS_PER_MIN, b * NS_PER_MIN])
    sql = (f"SELECT {tcol} AS t, trace_id, span_id, correlation_id, service_name AS service, "
           f"{route} AS route, http_status_code AS status_code, duration_ns, "
           f"{detail} AS detail, coalesce(({bad_where}), FALSE) AS bad FROM {table} "
           f"WHERE ({total}) AND {tcol} >= ? AND {tcol} < ? AND NOT {excl_sql}")
    return sql, [*bad_params, *total_params, t_from * NS_PER_MIN, t_to * NS_PER_MIN,
                 *excl_params]


def contributors(store: Store, slo: SLO, t_from: int, t_to: int,
                 excl: list[tuple[int, int]], *, top: int = 10, exemplars: int = 5,
                 focus: list[tuple[int, int]] | None = None) -> Contributors:
    """Top ``top`` routes and services, and ``exemplars`` bad events: one per route in turn
    (most bad events first), each route's pick preferring the ``focus`` minute ranges (the
    times an alert was firing), then the earliest."""
    total_src = slo.spec.indicator.total
    if not isinstance(total_src, SpanSource | LogSource):
        return Contributors(False, f"{total_src.source} SLOs count events in aggregate: "
                            "no single events to attribute", total_src.source)
    ind = slo.spec.indicator
    if not isinstance(ind, LatencyIndicator) and not isinstance(
            ind.good if ind.good is not None else ind.bad, dict):
        return Contributors(False, "good/bad is not a filter on the same events",
                            total_src.source)
    source = total_src.source
    ev, params = _events_sql(slo, source, t_from, t_to, excl)
    route_rows = store.rows(f"""
WITH ev AS ({ev}),
g AS (
  SELECT coalesce(service, '(none)') AS service, coalesce(route, '(none)') AS route,
    count(*) FILTER (bad) AS bad, count(*) AS total FROM ev GROUP BY ALL),
w AS (SELECT *, sum(bad) OVER () AS all_bad, sum(total) OVER () AS all_total FROM g)
SELECT service, route, bad, total, all_bad, all_total FROM w
ORDER BY bad = 0, bad DESC, service, route
""", params)
    all_bad = int(route_rows[0][4]) if route_rows else 0
    all_total = int(route_rows[0][5]) if route_rows else 0
    by_route = [RouteContributor(r[0], r[1], int(r[2]), int(r[3]))
                for r in route_rows if r[2] > 0][:top]
    if all_bad == 0:
        return Contributors(True, None, source, 0, all_total, [], [], [])
    failing = "s.is_error"
    fail_params: list[Any] = []
    if isinstance(ind, LatencyIndicator):
        failing = "s.duration_ns > ?"
        fail_params.append(int(ind.threshold.total_seconds() * 1e9))
    svc_rows = store.rows(f"""
WITH ev AS ({ev}),
bt AS (SELECT DISTINCT trace_id FROM ev WHERE bad AND trace_id IS NOT NULL)
SELECT coalesce(s.service_name, '(none)') AS service, count(DISTINCT s.trace_id) AS n,
  count(*) AS spans
FROM spans s JOIN bt ON bt.trace_id = s.trace_id
WHERE {failing} AND s.start_time_unix_nano >= ? AND s.start_time_unix_nano < ?
GROUP BY 1 ORDER BY n DESC, spans DESC, service LIMIT ?
""", [*params, *fail_params, max(t_from * NS_PER_MIN - _SLACK_NS, 0),
      t_to * NS_PER_MIN + _SLACK_NS, top])
    focus_params: list[Any] = []
    focus_sql = "FALSE"
    if focus:
        focus_sql = "(" + " OR ".join("(t >= ? AND t < ?)" for _ in focus) + ")"
        for a, b in focus:
            focus_params.extend([a * NS_PER_MIN, b * NS_PER_MIN])
    ex_rows = store.rows(f"""
WITH ev AS ({ev}),
f AS (SELECT *, {focus_sql} AS focus FROM ev WHERE bad),
b AS (
  SELECT *, row_number() OVER (PARTITION BY service, route
                               ORDER BY NOT focus, t, trace_id, span_id) AS rk,
    count(*) OVER (PARTITION BY service, route) AS n
  FROM f)
SELECT t, trace_id, span_id, correlation_id, service, route, status_code, duration_ns, detail
FROM b ORDER BY rk, NOT focus, n DESC, service, route LIMIT ?
""", [*params, *focus_params, exemplars])
    examples = sorted((Exemplar(int(r[0]), r[1], r[2], r[3], r[4], r[5],
                                None if r[6] is None else int(r[6]),
                                None if r[7] is None else int(r[7]), r[8]) for r in ex_rows),
                      key=lambda e: (e.time_unix_nano, e.trace_id or "", e.span_id or ""))
    return Contributors(
        True, None, source, all_bad, all_total, by_route,
        [ServiceContributor(r[0], int(r[1]), int(r[2])) for r in svc_rows], examples)
