"""Where gather() reads the rows of a request: the questions it asks (:class:`Finder`), and
the answer by scanning the tables (:class:`ScanFinder`).

A scan costs a pass over the whole table per question: spans arrive in time order with random
trace ids, so zone maps on the id columns prune nothing. locate.py answers the same questions
with the same rows through the store's id index. Ids travel as parameters.
"""

from __future__ import annotations

from typing import Any, Protocol

from sloengine.store import Store

Row = tuple[Any, ...]

SPAN_COLS = """trace_id, span_id, parent_span_id, name, kind, service_name,
       (SELECT r.attributes['host.name'] FROM resources r
        WHERE r.resource_id = spans.resource_id) AS host, start_time_unix_nano,
       end_time_unix_nano,
       status_code, status_message, is_error, http_route, http_method, http_status_code,
       rpc_system, rpc_method, rpc_status_code, db_system, db_operation, db_collection,
       messaging_system, messaging_destination, messaging_operation, correlation_id,
       links"""  # (gather takes trace and span id of each link in Python: cheaper than SQL)
LOG_COLS = """time_unix_nano, severity_number, severity_text, body, service_name, trace_id,
       span_id, correlation_id, source_kind, http_status_code, record_id"""
EVENT_COLS = "trace_id, span_id, seq, time_unix_nano, name, attributes"

_SPAN_SQL = f"SELECT {SPAN_COLS} FROM spans WHERE trace_id IN (SELECT unnest(?::VARCHAR[]))"
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
_LOG_SQL = f"""
SELECT {LOG_COLS} FROM logs
WHERE trace_id IN (SELECT unnest($traces::VARCHAR[]))
   OR correlation_id IN (SELECT unnest($corrs::VARCHAR[]))
ORDER BY time_unix_nano, record_id
"""
_EVENT_SQL = f"""
SELECT {EVENT_COLS} FROM span_events
WHERE trace_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY trace_id, span_id, seq
"""


class Finder(Protocol):
    def seeds(self, raw: str, low: str) -> list[tuple[str | None, str]]:
        """(trace id or None, how it matched) for rows carrying ``low`` as trace or span id
        or ``raw`` as correlation id."""

    def traces_of_corrs(self, corrs: list[str], pending: list[str]) -> set[str]:
        """Traces carrying any of ``corrs``; ``pending``: traces about to be loaded next
        (a finder may prepare for them in the same query)."""

    def spans(self, traces: list[str]) -> list[Row]: ...

    def neighbours(self, traces: list[str], keys: set[tuple[str, str]]) -> tuple[
            set[str], set[str]]:
        """(traces with a span linking to one of ``keys``, correlation ids of the logs of
        ``traces``); ``keys`` are the (trace, span) ids loaded from ``traces``."""

    def by_start(self, traces: list[str]) -> list[str]:
        """Those of ``traces`` that have spans, by first start time, then id."""

    def logs(self, traces: list[str], corrs: list[str]) -> list[Row]: ...
    def events(self, traces: list[str]) -> list[Row]: ...


class ScanFinder:
    """Every question a query over the whole table."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def seeds(self, raw: str, low: str) -> list[tuple[str | None, str]]:
        return [(r[0], str(r[1]))
                for r in self.store.rows(_SEED_SQL, {"hex": low, "short": low, "raw": raw})]

    def traces_of_corrs(self, corrs: list[str], pending: list[str]) -> set[str]:
        return {str(r[0]) for r in self.store.rows(_TRACES_OF_CORR_SQL, [corrs, corrs])}

    def spans(self, traces: list[str]) -> list[Row]:
        return self.store.rows(_SPAN_SQL, [traces])

    def neighbours(self, traces: list[str], keys: set[tuple[str, str]]) -> tuple[
            set[str], set[str]]:
        corrs = {str(r[0]) for r in self.store.rows(_CORR_OF_LOGS_SQL, [traces])}
        linking: set[str] = set()
        span_ids = sorted({sid for _, sid in keys})
        if span_ids:
            want = {f"{t}:{sid}" for t, sid in keys}
            for trace_id, targets in self.store.rows(_LINKED_FROM_SQL, [span_ids]):
                if want.intersection(targets or []):
                    linking.add(str(trace_id))
        return linking, corrs

    def by_start(self, traces: list[str]) -> list[str]:
        return [str(r[0]) for r in self.store.rows(_TRACE_START_SQL, [traces])]

    def logs(self, traces: list[str], corrs: list[str]) -> list[Row]:
        return self.store.rows(_LOG_SQL, {"traces": traces, "corrs": corrs})

    def events(self, traces: list[str]) -> list[Row]:
        return self.store.rows(_EVENT_SQL, [traces])
