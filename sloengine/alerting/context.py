"""Alert context from the raw events: where the short window's bad events came from, and
example requests to reconstruct.

The SLI's bad-event predicate is compiled by compute (``compute/exemplars.py``
``bad_event_filter``, the same predicates the buckets use); alerting may not import compute,
so the Engine passes it in as ``BadEvents``. Events are placed in time by the buckets' column
(spans: end time; logs: record time) over the tier's short window ``[t − W_s, t)``, the window
whose burn rate fired (SLO-MATH.md "Windows").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sloengine.alerting.notice import TRACE_COMMAND, Exemplar, Offender, iso
from sloengine.store import Store

NS_PER_MIN = 60_000_000_000
_TIME_COL = {"spans": "end_time_unix_nano", "logs": "time_unix_nano"}
_ROUTE = {"spans": "coalesce(http_method || ' ' || http_route, http_route, name)",
          "logs": "coalesce(http_method || ' ' || http_route, http_route, event_name, '')"}
TOP = 5
EXEMPLARS = 3


@dataclass(frozen=True, slots=True)
class BadEvents:
    """The SLI's bad events as SQL: ``SELECT … FROM {table} WHERE {where}``; ``group_sql``
    renders an event's group (``'route=/orders'``, or ``''`` for an ungrouped SLO)."""

    table: str  # spans | logs
    where: str
    params: list[Any]
    group_sql: str = "''"
    group_params: list[Any] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Context:
    top_offenders: tuple[Offender, ...] = ()
    trace_errors: tuple[Offender, ...] = ()
    exemplars: tuple[Exemplar, ...] = ()


def gather(store: Store, bad: BadEvents, group: str, t: int, short_minutes: int,
           worst_first: bool) -> Context:
    """Top offenders, failing spans in the same traces, and exemplars for one alert."""
    tcol = _TIME_COL[bad.table]
    lo, hi = (t - short_minutes) * NS_PER_MIN, t * NS_PER_MIN
    where = (f"({bad.where}) AND ({bad.group_sql}) = ? AND {tcol} >= ? AND {tcol} < ?")
    params = [*bad.params, *bad.group_params, group, lo, hi]
    cte = f"WITH bad AS (SELECT * FROM {bad.table} WHERE {where})"
    top = store.rows(
        f"{cte} SELECT coalesce(service_name, '(none)'), {_ROUTE[bad.table]}, count(*) "
        f"FROM bad GROUP BY ALL ORDER BY 3 DESC, 1, 2 LIMIT {TOP}", params)
    # failing server/consumer spans inside the traces of the bad events: the services a
    # failure passed through, down to where it began (client spans only echo their callee)
    errors = store.rows(
        f"{cte} SELECT coalesce(s.service_name, '(none)'), "
        f"coalesce(s.http_method || ' ' || s.http_route, s.http_route, s.name), "
        f"count(DISTINCT s.trace_id) FROM spans s "
        f"SEMI JOIN (SELECT DISTINCT trace_id FROM bad WHERE trace_id IS NOT NULL) b "
        f"USING (trace_id) WHERE s.is_error AND s.kind NOT IN ('CLIENT', 'PRODUCER') "
        f"AND s.end_time_unix_nano BETWEEN ? AND ? "
        f"GROUP BY ALL ORDER BY 3 DESC, 1, 2 LIMIT {TOP}",
        [*params, lo - 60 * NS_PER_MIN, hi + 60 * NS_PER_MIN])
    order = "duration_ns DESC NULLS LAST" if worst_first else f"{tcol} DESC"
    ex = store.rows(
        f"{cte} SELECT coalesce(correlation_id, trace_id), trace_id, service_name, "
        f"{_ROUTE[bad.table]}, {tcol}, duration_ns FROM bad "
        f"WHERE coalesce(correlation_id, trace_id) IS NOT NULL "
        f"ORDER BY correlation_id IS NULL, {order}, 1 LIMIT {EXEMPLARS}", params)
    return Context(
        tuple(Offender(str(s), str(r), int(n)) for s, r, n in top),
        tuple(Offender(str(s), str(r), int(n)) for s, r, n in errors),
        tuple(Exemplar(str(i), tid, svc, route,
                       iso(datetime.fromtimestamp(int(ns) / 1e9, UTC)),
                       None if dur is None else dur / 1e6, TRACE_COMMAND.format(id=i))
              for i, tid, svc, route, ns, dur in ex),
    )
