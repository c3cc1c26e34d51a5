"""gather()'s questions answered through the store's id index (store/layout.py).

``trace_index``, ``corr_index`` and ``span_index`` say where the rows of a trace or a
correlation id are — batch-id and time ranges, which zone maps prune to a row group or two
because both grow with appends — and the base tables are read only there, plus the *tail*:
batches appended since the last ``Store.optimize_layout()``, which the index does not cover
and which are read directly (a zone-map filter on ``batch_id``). The rows are the same as a
scan's (tests/test_forensics_layout.py); only integers read from the store are spelled into
the SQL.

At this size a query costs about a millisecond per table it touches, so round trips are what
to save: the index lookups of one question are one statement (equality per key — an IN list
is only a zone-map hint in DuckDB and decodes whole row groups); the seed query also locates
an id that looks like a trace id; a trace's spans, logs and events are read side by side
(``Store.rows_each``), with the lookups of its correlation ids beside them, and the traces its
links lead to (the index names them) are located first and read in the same round — so the
next rounds of gather() find what they ask for in memory. Reading ahead changes no answer:
gather() still asks every question, in its order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sloengine.forensics.finders import EVENT_COLS, LOG_COLS, SPAN_COLS, Row
from sloengine.store import (
    LayoutState,
    Store,
    corr_key,
    span_key,
    span_str,
    trace_key,
    trace_str,
)

#: (batch lo, batch hi, time lo, time hi)
Range = tuple[int, int, int, int]
_HEX32 = re.compile(r"[0-9a-f]{32}")
_KIND = {"trace": "trace_id", "span": "span_id", "corr": "correlation_id"}
_RANGES = ["span_b_lo", "span_b_hi", "span_t_lo", "span_t_hi", "log_b_lo", "log_b_hi",
           "log_t_lo", "log_t_hi", "ev_b_lo", "ev_b_hi", "ev_t_lo", "ev_t_hi"]
#: the one shape of every index lookup: what it is, the trace, where, and a link's other end
_SHAPE = ["kind", "tid_hi", "tid_lo", "tid_odd", "dir", *_RANGES, "oth_hi", "oth_lo",
          "oth_odd", "sid", "sid_odd"]
_TID = {"tid_hi": "tid_hi", "tid_lo": "tid_lo", "tid_odd": "tid_odd"}
#: traces a read may take along because links lead there (read now, used if gather asks)
_PREFETCH = 8


@dataclass(slots=True)
class _Where:
    """Where one trace's rows are, merged over the index runs, and what the tail adds."""

    spans: list[Range] = field(default_factory=list)
    logs: list[Range] = field(default_factory=list)
    events: list[Range] = field(default_factory=list)
    links_in: set[tuple[str, str]] = field(default_factory=set)  # (linking trace, our span)
    linked: set[str] = field(default_factory=set)  # traces at the other end of any link
    corr_keys: set[tuple[int, int]] = field(default_factory=set)  # its correlation ids
    tail_start: int | None = None


class _Lookup:
    """One statement of UNION ALL parts in ``_SHAPE`` (missing columns are NULL)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[Any] = []

    def add(self, cols: dict[str, str], rest: str, params: list[Any]) -> None:
        self.parts.append(f"SELECT {', '.join(cols.get(c, 'NULL') for c in _SHAPE)} {rest}")
        self.params += params

    def run(self, store: Store) -> list[dict[str, Any]]:
        if not self.parts:
            return []
        return [dict(zip(_SHAPE, r, strict=True))
                for r in store.rows("\nUNION ALL ".join(self.parts), self.params)]


def _trace_eq(trace_id: str) -> tuple[str, list[Any], bool]:
    """The index predicate for a trace id, its parameters, and whether it is plain hex."""
    hi, lo, odd = trace_key(trace_id)
    eq = "tid_hi = ?::UBIGINT AND tid_lo = ?::UBIGINT AND tid_odd "
    if odd is None:
        return eq + "IS NULL", [hi, lo], True
    return eq + "= ?", [hi, lo, odd], False


def _trace(r: dict[str, Any], prefix: str = "tid") -> str | None:
    return trace_str(r[f"{prefix}_hi"], r[f"{prefix}_lo"], r[f"{prefix}_odd"])


class IndexedFinder:
    """One per gather(): it keeps what the index said about each trace and correlation id,
    and the rows read for each trace."""

    def __init__(self, store: Store, layout: LayoutState) -> None:
        self.store = store
        self.tail = layout.tail_sql()
        self.covered = layout.covered_sql()
        self.has_tail = layout.tail
        self.odd = layout.odd  # the index holds ids that are not plain hex
        self.where: dict[str, _Where] = {}
        self.corr_logs: dict[str, list[tuple[str | None, Range]]] = {}
        #: corr_index rows by correlation-id key (looked up ahead, by key, when a trace is)
        self.corr_rows: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self.span_rows: dict[str, list[Row]] = {}
        self.log_rows: dict[str, list[Row]] = {}
        self.event_rows: dict[str, list[Row]] = {}

    # -- lookups ----------------------------------------------------------------------------
    def _locate_parts(self, q: _Lookup, traces: list[str]) -> list[str]:
        """Parts for the index rows of ``traces`` not located yet, and for what the tail
        adds: its spans linking to them (dir 1) and their first tail start (dir 3)."""
        todo = sorted({t for t in traces if t not in self.where})
        if not todo:
            return []
        cols = {c: c for c in _SHAPE if c != "kind"} | {"kind": "'loc'"}
        for t in todo:
            eq, params, plain = _trace_eq(t)
            if plain or self.odd:
                q.add(cols, f"FROM trace_index WHERE {eq}", params)
        if self.has_tail:
            marks = ", ".join("?" * len(todo))
            q.add({"kind": "'loc'", "tid_odd": "lk.trace_id", "dir": "1::UTINYINT",
                   "oth_odd": "src", "sid_odd": "lk.span_id"},
                  f"FROM (SELECT trace_id AS src, unnest(links) AS lk FROM spans WHERE"
                  f" {self.tail} AND len(links) > 0 AND list_has_any("
                  f"[l.trace_id FOR l IN links], ?::VARCHAR[])) WHERE lk.trace_id IN ({marks})"
                  " AND lk.span_id IS NOT NULL", [todo, *todo])
            q.add({"kind": "'loc'", "tid_odd": "trace_id", "dir": "3::UTINYINT",
                   "span_t_lo": "min(start_time_unix_nano)"},
                  f"FROM spans WHERE {self.tail} AND trace_id IN ({marks}) GROUP BY trace_id",
                  todo)
        return todo

    def _located(self, todo: list[str], rows: list[dict[str, Any]]) -> None:
        for t in todo:
            self.where[t] = _Where()
        for r in rows:
            if r["kind"] != "loc":
                continue
            w = self.where[str(_trace(r))]
            if r["dir"] == 0:
                for prefix, ranges in (("span", w.spans), ("log", w.logs), ("ev", w.events)):
                    if r[f"{prefix}_b_lo"] is not None:
                        ranges.append(_range(r, prefix))
            elif r["dir"] == 3:
                w.tail_start = int(r["span_t_lo"])
            elif r["dir"] == 4:
                w.corr_keys.add((int(r["oth_hi"]), int(r["oth_lo"])))
            else:
                other = str(_trace(r, "oth"))
                w.linked.add(other)
                if r["dir"] == 1:
                    w.links_in.add((other, str(span_str(r["sid"], r["sid_odd"]))))

    def _locate(self, traces: list[str]) -> None:
        q = _Lookup()
        todo = self._locate_parts(q, traces)
        self._located(todo, q.run(self.store))

    def _corr_parts(self, q: _Lookup, keys: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Parts for the ``corr_index`` rows of correlation-id keys not looked up yet (the
        key comes back in ``oth_hi``/``oth_lo``)."""
        todo = sorted({k for k in keys if k not in self.corr_rows})
        for hi, lo in todo:
            q.add({"kind": "'corr'", **_TID, **{r: r for r in _RANGES[4:8]},
                   "oth_hi": "?::UBIGINT", "oth_lo": "?::UBIGINT"},
                  "FROM corr_index WHERE h_hi = ?::UBIGINT AND h_lo = ?::UBIGINT",
                  [hi, lo, hi, lo])
        return todo

    def _corr_found(self, todo: list[tuple[int, int]], rows: list[dict[str, Any]]) -> None:
        for k in todo:
            self.corr_rows[k] = []
        for r in rows:
            if r["kind"] == "corr" and r["oth_hi"] is not None:
                self.corr_rows[(int(r["oth_hi"]), int(r["oth_lo"]))].append(r)

    def _traces_of(self, corr: str) -> set[str]:
        """The traces the index has for ``corr`` (looked up before); remembers where its log
        records are."""
        found = set()
        for r in self.corr_rows[corr_key(corr)]:
            trace_id = _trace(r)
            if r["log_b_lo"] is not None:
                self.corr_logs.setdefault(corr, []).append((trace_id, _range(r, "log")))
            if trace_id is not None:
                found.add(trace_id)
        return found

    # -- the questions ----------------------------------------------------------------------
    def seeds(self, raw: str, low: str) -> list[tuple[str | None, str]]:
        q = _Lookup()
        # an id that looks like a trace id is located right away (the trace rows say whether
        # it is one); otherwise only an odd trace id could match, if the index holds any
        todo = self._locate_parts(q, [low]) if _HEX32.fullmatch(low) else []
        eq, params, plain = _trace_eq(low)
        if not todo and (plain or self.odd):
            q.add({"kind": "'trace'", **_TID},
                  f"FROM trace_index WHERE {eq} AND dir = 0 AND (span_b_lo IS NOT NULL"
                  " OR log_b_lo IS NOT NULL)", params)
        sid, sid_odd = span_key(low)
        if sid_odd is None or self.odd:
            q.add({"kind": "'span'", **_TID},
                  "FROM span_index WHERE sid = ?::UBIGINT AND "
                  + ("sid_odd IS NULL" if sid_odd is None else "sid_odd = ?"),
                  [sid] if sid_odd is None else [sid, sid_odd])
        corr_todo = self._corr_parts(q, [corr_key(raw)])
        if self.has_tail:  # one part per column: each is a filter the scan applies itself
            for table in ("spans", "logs"):
                for kind, col, value in (("trace", "trace_id", low), ("span", "span_id", low),
                                         ("corr", "correlation_id", raw)):
                    q.add({"kind": f"'{kind}'", "tid_odd": "trace_id"},
                          f"FROM {table} WHERE {self.tail} AND {col} = ?", [value])
        rows = q.run(self.store)
        self._located(todo, rows)
        self._corr_found(corr_todo, rows)
        self._traces_of(raw)  # where the log records of ``raw`` are
        out = [(_trace(r), _KIND[r["kind"]]) for r in rows if r["kind"] in _KIND]
        if todo:
            w = self.where[low]
            if w.spans or w.logs:
                out.append((low, "trace_id"))
        return out

    def traces_of_corrs(self, corrs: list[str], pending: list[str]) -> set[str]:
        q = _Lookup()
        corr_todo = self._corr_parts(q, [corr_key(c) for c in corrs])
        if self.has_tail:
            marks = ", ".join("?" * len(corrs))
            for table, extra in (("spans", ""), ("logs", " AND trace_id IS NOT NULL")):
                q.add({"kind": "'tailcorr'", "tid_odd": "trace_id"},
                      f"FROM {table} WHERE {self.tail} AND correlation_id IN ({marks}){extra}",
                      corrs)
        todo = self._locate_parts(q, pending)
        rows = q.run(self.store)
        self._located(todo, rows)
        self._corr_found(corr_todo, rows)
        found = {str(r["tid_odd"]) for r in rows if r["kind"] == "tailcorr"}
        for c in corrs:
            found |= self._traces_of(c)
        return found

    def spans(self, traces: list[str]) -> list[Row]:
        """The spans of ``traces``, read together with their logs and events — and with
        the traces their links lead to, which gather() asks for next. The index names those
        and the keys of the traces' correlation ids: their lookups run ahead (beside the
        reads when there is nothing to locate first)."""
        self._locate(traces)
        want = [t for t in traces if t not in self.span_rows]
        if want:
            linked = sorted({o for t in want for o in self.where[t].linked
                             if o not in self.span_rows and o not in want})[:_PREFETCH]
            ahead = _Lookup()
            located = self._locate_parts(ahead, linked)
            corr_todo = self._corr_parts(ahead, [k for t in want
                                                 for k in self.where[t].corr_keys])
            if located:  # a trace must be located before it can be read
                rows = ahead.run(self.store)
                self._located(located, rows)
                self._corr_found(corr_todo, rows)
                self._read([*want, *linked], _Lookup())
            else:
                rows = self._read([*want, *linked], ahead)
                self._corr_found(corr_todo, rows)
        return [r for t in traces for r in self.span_rows[t]]

    def _read(self, traces: list[str], ahead: _Lookup) -> list[dict[str, Any]]:
        """Spans, logs and span events of ``traces`` (in their index ranges, and in the
        tail), and the ``ahead`` lookups, whose rows it returns: all at the same time
        (``Store.rows_each``)."""
        match = f"trace_id IN ({', '.join('?' * len(traces))})"
        w = [self.where[t] for t in traces]
        planned = [(table, self._query(table, cols, tcol, match, traces,
                                       [rg for x in w for rg in getattr(x, attr)]))
                   for table, cols, tcol, attr in (
                       ("spans", SPAN_COLS, "start_time_unix_nano", "spans"),
                       ("logs", LOG_COLS, "time_unix_nano", "logs"),
                       ("span_events", EVENT_COLS, "time_unix_nano", "events"))]
        reads: list[tuple[str, tuple[str, Sequence[Any] | dict[str, Any] | None]]] = [
            (table, q) for table, q in planned if q is not None]
        if ahead.parts:
            reads.append(("ahead", ("\nUNION ALL ".join(ahead.parts), ahead.params)))
        for t in traces:
            self.span_rows[t], self.log_rows[t], self.event_rows[t] = [], [], []
        results = self.store.rows_each([q for _, q in reads])
        looked: list[dict[str, Any]] = []
        for (table, _), rows in zip(reads, results, strict=True):
            if table == "ahead":
                looked = [dict(zip(_SHAPE, r, strict=True)) for r in rows]
            elif table == "spans":
                for r in rows:
                    self.span_rows[r[0]].append(r)
            elif table == "logs":
                for r in rows:
                    self.log_rows[r[5]].append(r)
            elif table == "span_events":
                for r in rows:
                    self.event_rows[r[0]].append(r)
        return looked

    def _query(self, table: str, cols: str, tcol: str, match: str, params: list[Any],
               ranges: list[Range]) -> tuple[str, list[Any]] | None:
        """Rows of ``table`` matching ``match``: inside the index ranges, and in the tail
        (None: neither can hold any)."""
        parts, args = [], []
        if ranges:
            b_sql = " OR ".join(f"batch_id BETWEEN {lo} AND {hi}"
                                for lo, hi in _merge([(r[0], r[1]) for r in ranges]))
            t_sql = " OR ".join(f"{tcol} BETWEEN {lo}::UBIGINT AND {hi}::UBIGINT"
                                for lo, hi in _merge([(r[2], r[3]) for r in ranges]))
            parts.append(f"SELECT {cols} FROM {table} WHERE ({match}) AND ({b_sql})"
                         f" AND ({t_sql}) AND {self.covered}")
            args += params
        if self.has_tail:
            parts.append(f"SELECT {cols} FROM {table} WHERE {self.tail} AND ({match})")
            args += params
        return ("\nUNION ALL ".join(parts), args) if parts else None

    def neighbours(self, traces: list[str], keys: set[tuple[str, str]]) -> tuple[
            set[str], set[str]]:
        linking = {src for t in traces for src, sid in self.where[t].links_in
                   if (t, sid) in keys}
        corrs = {str(r[7]) for t in traces for r in self.log_rows[t] if r[7] is not None}
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
        """The logs of ``traces`` (read with their spans) and those of ``corrs`` that belong
        to no trace of the story."""
        out = [r for t in traces for r in self.log_rows[t]]
        known = set(traces)
        ranges = [rg for c in corrs for t, rg in self.corr_logs.get(c, []) if t not in known]
        if corrs and (ranges or self.has_tail):
            match = f"correlation_id IN ({', '.join('?' * len(corrs))})"
            params = [*corrs]
            if traces:
                match += (f" AND (trace_id IS NULL OR trace_id NOT IN"
                          f" ({', '.join('?' * len(traces))}))")
                params += traces
            q = self._query("logs", LOG_COLS, "time_unix_nano", match, params, ranges)
            out += self.store.rows(*q) if q else []
        return sorted(out, key=lambda r: (r[0], r[10]))

    def events(self, traces: list[str]) -> list[Row]:
        return sorted((r for t in traces for r in self.event_rows[t]),
                      key=lambda r: (r[0], r[1], r[2]))


def _range(r: dict[str, Any], prefix: str) -> Range:
    return (int(r[f"{prefix}_b_lo"]), int(r[f"{prefix}_b_hi"]), int(r[f"{prefix}_t_lo"]),
            int(r[f"{prefix}_t_hi"]))


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching integer ranges merged (fewer, shorter OR terms)."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out
