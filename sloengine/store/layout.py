"""The id index of forensics: where the rows of a trace, a correlation id or a span id are.

Spans arrive in time order with random trace ids, so zone maps on ``trace_id`` prune nothing
and every lookup of a request scans the whole table. Re-clustering ``spans`` by trace id would
make the SLO path (``end_time_unix_nano`` ranges, pruned by zone maps today) scan instead, so
the base tables stay in arrival order and two narrow tables, sorted by key, say where to look:

* ``trace_index`` (sorted by ``h`` = 64 bits of md5(key): hex prefixes and shared prefixes of
  correlation ids alike spread evenly over row groups). ``trace`` rows: the batch-id and time
  ranges of a trace's spans, logs and span events, the correlation ids of its logs and the
  spans elsewhere linking to it; ``corr`` rows: correlation id → trace id (and where its log
  records are); ``span`` rows: span ids that are not plain lower-case hex.
* ``span_index``: span id → trace id as integers (exact; ids are 8/16 bytes of hex).

A lookup reads one row group of the index per run, then the base table restricted to those
batch ids and times — both are zone-map filters, because batch ids grow with appends and
times grow (nearly) with them. Rows of batches after the last run (the *tail*) are read
directly (``LayoutState.tail_sql``): little when the engine optimises every few minutes.

Each :func:`optimize` run indexes the batches since the previous run and appends them as one
more sorted run; after ``MAX_RUNS`` runs (or on request) a rebuild rewrites the index from all
data as a single run. Batches still ``ingesting`` are left in the tail until they finish.
Precondition, as for every write: the store's single writer runs it (the engine's lock), not
in the middle of an append. Code that deletes rows of spans, logs or span_events must call
``optimize(store, rebuild=True)`` afterwards (nothing deletes them today).
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sloengine.errors import StoreError

if TYPE_CHECKING:
    from sloengine.store.database import Store

#: the SQL twin of :func:`key_hash`
KEY_HASH_SQL = "(md5_number({}) & 18446744073709551615::UHUGEINT)::UBIGINT"
#: merge runs after a rebuild before the next optimize rebuilds (a lookup reads ~1 row group
#: per run, so runs cost lookup time; a rebuild of 10M spans costs seconds)
MAX_RUNS = 24
_HEX16 = re.compile(r"[0-9a-f]{16}")


def key_hash(key: str) -> int:
    """The index's sort key for ``key``: the low 64 bits of md5, as DuckDB's
    ``md5_number(key)`` has them (checked on every optimize)."""
    return int.from_bytes(hashlib.md5(key.encode()).digest()[:8], "little")


def span_int(span_id: str) -> int | None:
    """The ``span_index.sid`` of a span id, or None when it is not 16 lower-case hex digits
    (such ids, if any were stored, are ``span`` rows of ``trace_index``)."""
    return int(span_id, 16) if _HEX16.fullmatch(span_id) else None


@dataclass(frozen=True, slots=True)
class LayoutState:
    """What the index covers: batches up to ``watermark`` except ``open_batches``."""

    watermark: int
    open_batches: tuple[int, ...]
    runs: int  # runs since (and including) the last rebuild

    def tail_sql(self) -> str:
        """A predicate on ``batch_id`` for rows the index does not cover."""
        tail = f"batch_id > {int(self.watermark)}"
        if self.open_batches:
            tail = f"({tail} OR batch_id IN ({', '.join(str(int(b)) for b in self.open_batches)}))"
        return tail

    def covered_sql(self) -> str:
        """Restricts a read by index ranges (all ≤ watermark) to rows the index covers."""
        if not self.open_batches:
            return "TRUE"
        return f"batch_id NOT IN ({', '.join(str(int(b)) for b in self.open_batches)})"


@dataclass(frozen=True, slots=True)
class LayoutReport:
    kind: str  # rebuild | merge | none (nothing new since the last run)
    batch_lo: int
    batch_hi: int
    open_batches: tuple[int, ...]
    trace_rows: int
    span_rows: int
    seconds: float


def state(store: Store) -> LayoutState | None:
    """The index's coverage, or None when it was never built (lookups then scan)."""
    rows = store.rows(
        "SELECT batch_hi, open_batches, run_id - (SELECT max(run_id) FROM layout_runs "
        "WHERE kind = 'rebuild') + 1 FROM layout_runs ORDER BY run_id DESC LIMIT 1")
    if not rows or rows[0][2] is None:
        return None
    hi, open_b, runs = rows[0]
    return LayoutState(int(hi), tuple(int(b) for b in open_b), int(runs))


def optimize(store: Store, *, rebuild: bool = False) -> LayoutReport:
    """Index the batches that arrived since the last run (a merge run), or everything (a
    rebuild: the first time, on request, or after ``MAX_RUNS`` runs)."""
    started = time.perf_counter()
    canary = store.one(f"SELECT {KEY_HASH_SQL.format('?')}", ["sloengine"])
    if canary != key_hash("sloengine"):
        raise StoreError("DuckDB's md5_number no longer matches layout.key_hash; the trace "
                         "index cannot be built", where=store.path)
    prev = state(store)
    hi = int(store.one(
        "SELECT greatest((SELECT max(batch_id) FROM ingest_batches),"
        " (SELECT max(batch_id) FROM spans), (SELECT max(batch_id) FROM logs),"
        " (SELECT max(batch_id) FROM span_events), 0)"))
    ingesting = {int(r[0]) for r in store.rows(
        "SELECT batch_id FROM ingest_batches WHERE status = 'ingesting' AND batch_id <= ?",
        [hi])}
    full = rebuild or prev is None or prev.runs >= MAX_RUNS
    if full:
        lo, sel = 0, f"batch_id <= {hi}"
    else:
        assert prev is not None
        lo = prev.watermark
        finished = sorted(set(prev.open_batches) - ingesting)
        sel = f"(batch_id > {lo} AND batch_id <= {hi})"
        if finished:
            sel = f"({sel} OR batch_id IN ({', '.join(map(str, finished))}))"
        if hi == lo and not finished:
            return LayoutReport("none", lo, hi, prev.open_batches, 0, 0,
                                time.perf_counter() - started)
    open_now = tuple(sorted(ingesting))
    if open_now:
        sel += f" AND batch_id NOT IN ({', '.join(map(str, open_now))})"
    with store.transaction():
        if full:
            store.exec_("DELETE FROM trace_index")
            store.exec_("DELETE FROM span_index")
        trace_rows = int(store.one(_trace_rows_sql(sel)))
        span_rows = int(store.one(_span_rows_sql(sel)))
        run_id = int(store.one("SELECT coalesce(max(run_id), 0) + 1 FROM layout_runs"))
        seconds = time.perf_counter() - started
        store.exec_(
            "INSERT INTO layout_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, "rebuild" if full else "merge", store.now(), lo, hi, list(open_now),
             trace_rows, span_rows, seconds])
    if full:
        store.exec_("CHECKPOINT")  # the deleted index rows go now, not at some later write
    return LayoutReport("rebuild" if full else "merge", lo, hi, open_now, trace_rows,
                        span_rows, time.perf_counter() - started)


def _trace_rows_sql(sel: str) -> str:
    h = KEY_HASH_SQL
    # A span or trace id that does not round-trip through an integer goes to trace_index.
    plain = ("printf('%016x', TRY_CAST('0x' || span_id AS UBIGINT)) IS NOT DISTINCT FROM span_id"
             " AND (trace_id IS NULL OR printf('%032x', TRY_CAST('0x' || trace_id AS UHUGEINT))"
             " IS NOT DISTINCT FROM trace_id)")
    return f"""
INSERT INTO trace_index BY NAME
WITH s AS (
  SELECT trace_id, min(batch_id) AS span_b_lo, max(batch_id) AS span_b_hi,
    min(start_time_unix_nano) AS span_t_lo, max(start_time_unix_nano) AS span_t_hi
  FROM spans WHERE {sel} GROUP BY trace_id),
l AS (
  SELECT trace_id, min(batch_id) AS log_b_lo, max(batch_id) AS log_b_hi,
    min(time_unix_nano) AS log_t_lo, max(time_unix_nano) AS log_t_hi,
    list(DISTINCT correlation_id) FILTER (WHERE correlation_id IS NOT NULL) AS log_corrs
  FROM logs WHERE {sel} AND trace_id IS NOT NULL GROUP BY trace_id),
e AS (
  SELECT trace_id, min(batch_id) AS ev_b_lo, max(batch_id) AS ev_b_hi,
    min(time_unix_nano) AS ev_t_lo, max(time_unix_nano) AS ev_t_hi
  FROM span_events WHERE {sel} GROUP BY trace_id),
k AS (
  SELECT lk.trace_id AS trace_id,
    list({{'trace_id': src, 'span_id': lk.span_id}}) AS linked_from
  FROM (SELECT trace_id AS src, unnest(links) AS lk FROM spans
        WHERE {sel} AND len(links) > 0)
  WHERE lk.trace_id IS NOT NULL AND lk.span_id IS NOT NULL GROUP BY lk.trace_id),
t AS (
  SELECT 'trace' AS kind, trace_id AS key, * FROM s FULL JOIN l USING (trace_id)
    FULL JOIN e USING (trace_id) FULL JOIN k USING (trace_id)),
c AS (
  SELECT 'corr' AS kind, correlation_id AS key, trace_id FROM spans
  WHERE {sel} AND correlation_id IS NOT NULL GROUP BY ALL
  UNION ALL BY NAME
  SELECT 'corr' AS kind, correlation_id AS key, trace_id, min(batch_id) AS log_b_lo,
    max(batch_id) AS log_b_hi, min(time_unix_nano) AS log_t_lo, max(time_unix_nano) AS log_t_hi
  FROM logs WHERE {sel} AND correlation_id IS NOT NULL GROUP BY correlation_id, trace_id),
o AS (
  SELECT DISTINCT 'span' AS kind, span_id AS key, trace_id FROM spans
  WHERE {sel} AND NOT ({plain})
  UNION
  SELECT 'span' AS kind, span_id AS key, trace_id FROM logs
  WHERE {sel} AND span_id IS NOT NULL AND NOT ({plain})),
a AS (SELECT * FROM t UNION ALL BY NAME SELECT * FROM c UNION ALL BY NAME SELECT * FROM o)
SELECT {h.format('key')} AS h, * FROM a ORDER BY h
"""


def _span_rows_sql(sel: str) -> str:
    sid = "TRY_CAST('0x' || span_id AS UBIGINT)"
    tid = "TRY_CAST('0x' || trace_id AS UHUGEINT)"
    plain = (f"printf('%016x', {sid}) IS NOT DISTINCT FROM span_id AND (trace_id IS NULL"
             f" OR printf('%032x', {tid}) IS NOT DISTINCT FROM trace_id)")
    return f"""
INSERT INTO span_index
SELECT sid, tid FROM (
  SELECT {sid} AS sid, {tid} AS tid FROM spans WHERE {sel} AND {plain}
  UNION
  SELECT {sid}, {tid} FROM logs WHERE {sel} AND span_id IS NOT NULL AND {plain})
ORDER BY sid
"""
