"""Where gather() reads the rows of a request: by scanning, or through the store's id index.

:class:`ScanFinder` asks the base tables directly (a full scan per question: spans arrive in
time order with random trace ids, so zone maps prune nothing). :class:`IndexedFinder` asks
``trace_index`` / ``span_index`` (store/layout.py) where the rows are — batch-id and time
ranges, which zone maps do prune — and reads only there, plus the tail of batches appended
since the last ``Store.optimize_layout()``. Both answer every question with the same rows;
gather() does not know which one it has. Ids travel as parameters; only integers read from
the store are spelled into the SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sloengine.store import LayoutState, Store, key_hash, span_int

Row = tuple[Any, ...]

SPAN_COLS = """trace_id, span_id, parent_span_id, name, kind, service_name,
       resource_attributes['host.name'] AS host, start_time_unix_nano, end_time_unix_nano,
       status_code, status_message, is_error, http_route, http_method, http_status_code,
       rpc_system, rpc_method, rpc_status_code, db_system, db_operation, db_collection,
       messaging_system, messaging_destination, messaging_operation, correlation_id,
       [{'trace_id': l.trace_id, 'span_id': l.span_id} FOR l IN coalesce(links, [])] AS links"""
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

    def traces_of_corrs(self, corrs: list[str]) -> set[str]: ...
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

    def traces_of_corrs(self, corrs: list[str]) -> set[str]:
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


#: (batch lo, batch hi, time lo, time hi)
Range = tuple[int, int, int, int]


@dataclass(slots=True)
class _Where:
    """Where one trace's rows are, merged over the index runs and the tail."""

    spans: list[Range] = field(default_factory=list)
    logs: list[Range] = field(default_factory=list)
    events: list[Range] = field(default_factory=list)
    log_corrs: set[str] = field(default_factory=set)
    linked_from: set[tuple[str, str]] = field(default_factory=set)  # (linking trace, span)
    tail_start: int | None = None


_KIND = {"trace": "trace_id", "span": "span_id", "corr": "correlation_id"}
_WHERE_COLS = ("span_b_lo, span_b_hi, span_t_lo, span_t_hi, log_b_lo, log_b_hi, log_t_lo, "
               "log_t_hi, ev_b_lo, ev_b_hi, ev_t_lo, ev_t_hi")


class IndexedFinder:
    """Questions answered from the id index plus the tail; one instance per gather()
    (it caches what the index said about each trace and correlation id)."""

    def __init__(self, store: Store, layout: LayoutState) -> None:
        self.store = store
        self.tail = layout.tail_sql()
        self.covered = layout.covered_sql()
        self.where: dict[str, _Where] = {}
        self.corr_logs: dict[str, list[Range]] = {}

    def seeds(self, raw: str, low: str) -> list[tuple[str | None, str]]:
        kinds = ("unnest([CASE WHEN trace_id = ? THEN 'trace' END, CASE WHEN span_id = ? THEN"
                 " 'span' END, CASE WHEN correlation_id = ? THEN 'corr' END]) AS k")
        match = "(trace_id = ? OR span_id = ? OR correlation_id = ?)"
        sql = f"""
SELECT kind, trace_id, key, log_b_lo, log_b_hi, log_t_lo, log_t_hi FROM trace_index
WHERE h IN (?::UBIGINT, ?::UBIGINT) AND (
  (kind = 'trace' AND key = ? AND (span_b_lo IS NOT NULL OR log_b_lo IS NOT NULL))
  OR (kind = 'span' AND key = ?) OR (kind = 'corr' AND key = ?))
UNION ALL SELECT k, trace_id, NULL, NULL, NULL, NULL, NULL FROM (
  SELECT trace_id, {kinds} FROM spans WHERE {self.tail} AND {match}
  UNION ALL SELECT trace_id, {kinds} FROM logs WHERE {self.tail} AND {match})
WHERE k IS NOT NULL"""
        ids = [low, low, raw]
        params: list[Any] = [key_hash(low), key_hash(raw), *ids, *ids, *ids, *ids, *ids]
        sid = span_int(low)
        if sid is not None:
            sql += ("\nUNION ALL SELECT 'span', printf('%032x', tid), NULL, NULL, NULL, NULL,"
                    " NULL FROM span_index WHERE sid = ?::UBIGINT")
            params.append(sid)
        out = []
        for kind, trace_id, key, *loc in self.store.rows(sql, params):
            if kind == "corr" and loc[0] is not None:
                self.corr_logs.setdefault(key, []).append(_range(loc))
            out.append((trace_id, _KIND[kind]))
        return out

    def traces_of_corrs(self, corrs: list[str]) -> set[str]:
        marks = _marks(corrs)
        sql = f"""
SELECT key, trace_id, log_b_lo, log_b_hi, log_t_lo, log_t_hi FROM trace_index
WHERE h IN ({_marks(corrs, "?::UBIGINT")}) AND kind = 'corr' AND key IN ({marks})
UNION ALL SELECT correlation_id, trace_id, NULL, NULL, NULL, NULL FROM spans
WHERE {self.tail} AND correlation_id IN ({marks})
UNION ALL SELECT correlation_id, trace_id, NULL, NULL, NULL, NULL FROM logs
WHERE {self.tail} AND correlation_id IN ({marks}) AND trace_id IS NOT NULL"""
        found = set()
        for key, trace_id, *loc in self.store.rows(
                sql, [*map(key_hash, corrs), *corrs, *corrs, *corrs]):
            if loc[0] is not None:
                self.corr_logs.setdefault(key, []).append(_range(loc))
            if trace_id is not None:
                found.add(str(trace_id))
        return found

    def _locate(self, traces: list[str]) -> None:
        """Fill ``self.where`` for ``traces``: their index rows, and what the tail adds
        (correlation ids of tail logs, tail spans linking to them)."""
        todo = [t for t in traces if t not in self.where]
        if not todo:
            return
        marks = _marks(todo)
        pad = ", ".join(["NULL"] * 12)
        sql = f"""
SELECT key, {_WHERE_COLS}, log_corrs, linked_from, NULL FROM trace_index
WHERE h IN ({_marks(todo, "?::UBIGINT")}) AND kind = 'trace' AND key IN ({marks})
UNION ALL SELECT trace_id, {pad}, list(DISTINCT correlation_id), NULL, NULL FROM logs
WHERE {self.tail} AND trace_id IN ({marks}) AND correlation_id IS NOT NULL GROUP BY trace_id
UNION ALL SELECT lk.trace_id, {pad}, NULL,
  list({{'trace_id': src, 'span_id': lk.span_id}}), NULL
FROM (SELECT trace_id AS src, unnest(links) AS lk FROM spans WHERE {self.tail}
      AND len(links) > 0 AND list_has_any([l.trace_id FOR l IN links], ?::VARCHAR[]))
WHERE lk.trace_id IN ({marks}) AND lk.span_id IS NOT NULL GROUP BY lk.trace_id
UNION ALL SELECT trace_id, {pad}, NULL, NULL, min(start_time_unix_nano) FROM spans
WHERE {self.tail} AND trace_id IN ({marks}) GROUP BY trace_id"""
        params = [*map(key_hash, todo), *todo, *todo, todo, *todo, *todo]
        for t in todo:
            self.where[t] = _Where()
        for key, *loc, log_corrs, linked_from, tail_start in self.store.rows(sql, params):
            w = self.where[key]
            for i, ranges in enumerate((w.spans, w.logs, w.events)):
                if loc[4 * i] is not None:
                    ranges.append(_range(loc[4 * i:4 * i + 4]))
            w.log_corrs.update(log_corrs or [])
            w.linked_from.update((lk["trace_id"], lk["span_id"]) for lk in linked_from or [])
            if tail_start is not None:
                w.tail_start = int(tail_start)

    def _read(self, table: str, cols: str, tcol: str, match: str, match_params: list[Any],
              ranges: list[Range], order: str = "") -> list[Row]:
        """Rows of ``table`` matching ``match``: inside the index ranges, and in the tail."""
        parts, params = [], []
        if ranges:
            bs = _merge([(r[0], r[1]) for r in ranges])
            ts = _merge([(r[2], r[3]) for r in ranges])
            b_sql = " OR ".join(f"batch_id BETWEEN {lo} AND {hi}" for lo, hi in bs)
            t_sql = " OR ".join(f"{tcol} BETWEEN {lo}::UBIGINT AND {hi}::UBIGINT"
                                for lo, hi in ts)
            parts.append(f"SELECT {cols} FROM {table} WHERE ({match}) AND ({b_sql}) "
                         f"AND ({t_sql}) AND {self.covered}")
            params += match_params
        parts.append(f"SELECT {cols} FROM {table} WHERE {self.tail} AND ({match})")
        params += match_params
        sql = "\nUNION ALL ".join(parts)
        if order:
            sql = f"SELECT * FROM ({sql}) ORDER BY {order}"
        return self.store.rows(sql, params)

    def spans(self, traces: list[str]) -> list[Row]:
        self._locate(traces)
        ranges = [r for t in traces for r in self.where[t].spans]
        return self._read("spans", SPAN_COLS, "start_time_unix_nano",
                          f"trace_id IN ({_marks(traces)})", list(traces), ranges)

    def neighbours(self, traces: list[str], keys: set[tuple[str, str]]) -> tuple[
            set[str], set[str]]:
        self._locate(traces)
        linking = {src for t in traces for src, sid in self.where[t].linked_from
                   if (t, sid) in keys}
        corrs = {c for t in traces for c in self.where[t].log_corrs}
        return linking, corrs

    def by_start(self, traces: list[str]) -> list[str]:
        self._locate(traces)
        first = {}
        for t in traces:
            w = self.where[t]
            starts = [r[2] for r in w.spans] + ([] if w.tail_start is None else [w.tail_start])
            if starts:
                first[t] = min(starts)
        return sorted(first, key=lambda t: (first[t], t))

    def logs(self, traces: list[str], corrs: list[str]) -> list[Row]:
        self._locate(traces)
        ranges = [r for t in traces for r in self.where[t].logs]
        ranges += [r for c in corrs for r in self.corr_logs.get(c, [])]
        match = "FALSE"
        if traces:
            match = f"trace_id IN ({_marks(traces)})"
        if corrs:
            match += f" OR correlation_id IN ({_marks(corrs)})"
        return self._read("logs", LOG_COLS, "time_unix_nano", match, [*traces, *corrs],
                          ranges, order="time_unix_nano, record_id")

    def events(self, traces: list[str]) -> list[Row]:
        if not traces:
            return []
        self._locate(traces)
        ranges = [r for t in traces for r in self.where[t].events]
        return self._read("span_events", EVENT_COLS, "time_unix_nano",
                          f"trace_id IN ({_marks(traces)})", list(traces), ranges,
                          order="trace_id, span_id, seq")


def _marks(items: list[str], mark: str = "?") -> str:
    return ", ".join([mark] * len(items)) if items else "NULL"


def _range(loc: list[Any]) -> Range:
    return (int(loc[0]), int(loc[1]), int(loc[2]), int(loc[3]))


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching integer ranges merged (fewer, shorter OR terms)."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out
