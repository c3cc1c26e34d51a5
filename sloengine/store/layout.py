"""The id index of forensics: where the rows of a trace, a correlation id or a span id are.

Spans arrive in time order with random trace ids, so zone maps on ``trace_id`` prune nothing
and every lookup of a request scans the whole table. Re-clustering ``spans`` by trace id would
make the SLO path (``end_time_unix_nano`` ranges, pruned by zone maps today) scan instead, so
the base tables stay in arrival order and three narrow tables, each sorted by its key, say
where to look (migrations/008_trace_index_numeric.sql):

* ``trace_index`` (by trace id): the batch-id and time ranges of a trace's spans, logs and
  span events, the links between traces (in both directions) and the keys of the trace's
  correlation ids (so the traces a request leads to can be looked up ahead);
* ``corr_index`` (by sha256 of the correlation id): the traces carrying it, and where its
  log records are;
* ``span_index`` (by span id): the trace of each span id of spans and logs.

Ids are stored as numbers (a 32-hex trace id is two UBIGINT halves), so a lookup compares
integers and decodes no strings: about a millisecond. A lookup reads one row group of an
index per run, then the base tables restricted to the batch ids and times found — zone
maps prune both, because batch ids grow with appends and times grow (nearly) with them. Rows
of batches after the last run (the *tail*) are read directly (``LayoutState.tail_sql``): few
when the engine optimises every few minutes.

Each :func:`optimize` call indexes the batches since the previous call as one more sorted
*run*; when the newest runs have grown to half the size of the run before them they are
merged (copied sorted into one), so there are O(log n) runs and each row is copied O(log n)
times — never a re-read of the base tables, unless ``rebuild=True``. Batches still
``ingesting`` stay in the tail until they finish. Precondition, as for every write: the
store's single writer runs it (the engine's lock), not in the middle of an append. Code that
deletes rows of spans, logs or span_events calls :func:`invalidate` in the same transaction
(``Store.delete_older`` does): lookups then scan until the next optimize rebuilds the index.
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

_HEX16 = re.compile(r"[0-9a-f]{16}")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_MASK64 = (1 << 64) - 1
#: the newest runs are merged into one when together they are at least this big relative to
#: the run before them (each merge makes a run ≥ 1.5× the one it joins: O(log n) runs, and
#: each row is copied O(log n) times; 1.0 would stall on runs of nearly equal size)
_MERGE_RATIO = 0.5


def key_hash(key: str) -> int:
    """DuckDB's ``md5_number(key)``: md5 as a little-endian 128-bit number."""
    return int.from_bytes(hashlib.md5(key.encode()).digest(), "little")


def trace_key(trace_id: str) -> tuple[int, int, str | None]:
    """(``tid_hi``, ``tid_lo``, ``tid_odd``) of a trace id in the index."""
    if _HEX32.fullmatch(trace_id):
        v, odd = int(trace_id, 16), None
    else:
        v, odd = key_hash(trace_id), trace_id
    return v >> 64, v & _MASK64, odd


def span_key(span_id: str) -> tuple[int, str | None]:
    """(``sid``, ``sid_odd``) of a span id in the index."""
    if _HEX16.fullmatch(span_id):
        return int(span_id, 16), None
    return key_hash(span_id) & _MASK64, span_id


def corr_key(corr: str) -> tuple[int, int]:
    """``corr_index`` (``h_hi``, ``h_lo``) of a correlation id: sha256's first 128 bits."""
    d = hashlib.sha256(corr.encode()).digest()
    return int.from_bytes(d[:8], "big"), int.from_bytes(d[8:16], "big")


def trace_str(hi: int | None, lo: int | None, odd: str | None) -> str | None:
    """The trace id an index row stands for."""
    if odd is not None:
        return odd
    return None if hi is None or lo is None else f"{hi:016x}{lo:016x}"


def span_str(sid: int | None, odd: str | None) -> str | None:
    if odd is not None:
        return odd
    return None if sid is None else f"{sid:016x}"


def _tid(col: str, prefix: str = "tid") -> str:
    """``{prefix}_hi, {prefix}_lo, {prefix}_odd`` of the trace ids in ``col``, which must sit
    next to a column ``{col}_plain`` (see :func:`_plain`)."""
    p = f"{col}_plain"
    return (f"CASE WHEN {p} THEN ('0x' || left({col}, 16))::UBIGINT ELSE (md5_number({col})"
            f" >> 64)::UBIGINT END AS {prefix}_hi, CASE WHEN {p} THEN ('0x' || right({col}, 16))"
            f"::UBIGINT ELSE (md5_number({col}) & {_MASK64}::UHUGEINT)::UBIGINT END AS"
            f" {prefix}_lo, CASE WHEN NOT {p} THEN {col} END AS {prefix}_odd")


def _sid(col: str) -> str:
    p = f"{col}_plain"
    return (f"CASE WHEN {p} THEN ('0x' || {col})::UBIGINT ELSE (md5_number({col})"
            f" & {_MASK64}::UHUGEINT)::UBIGINT END AS sid, CASE WHEN NOT {p} THEN {col} END"
            " AS sid_odd")


def _plain(col: str, digits: int) -> str:
    """``{col}_plain``: the id is ``digits`` lower-case hex digits (computed once a row)."""
    return f"regexp_full_match({col}, '[0-9a-f]{{{digits}}}') AS {col}_plain"


@dataclass(frozen=True, slots=True)
class LayoutState:
    """What the index covers: batches up to ``watermark`` except ``open_batches``; whether
    rows outside it exist right now (``tail``), and whether any indexed id is not plain hex
    (``odd``: lookups by such ids can skip the index when there are none)."""

    watermark: int
    open_batches: tuple[int, ...]
    tail: bool = True
    odd: bool = True

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
    kind: str  # rebuild | append | none (nothing new since the last run)
    batch_lo: int
    batch_hi: int
    open_batches: tuple[int, ...]
    index_rows: int  # rows this run added
    merged_runs: int  # earlier runs copied into this one
    runs: int  # live runs after it
    seconds: float


def state(store: Store) -> LayoutState | None:
    """The index's coverage, or None when it was never built (lookups then scan).

    One small statement, run before every indexed lookup (~1 ms): aggregates over
    ``layout_runs`` (ORDER BY ... LIMIT 1 costs a millisecond more) and the newest batch id
    of each base table (cheap: batch ids are constant over long stretches of rows).
    """
    row = store.rows(
        "SELECT arg_max(batch_hi, run_id), arg_max(open_batches, run_id),"
        " arg_max(odd_rows, run_id), (SELECT max(batch_id) FROM spans),"
        " (SELECT max(batch_id) FROM logs), (SELECT max(batch_id) FROM span_events)"
        " FROM layout_runs")[0]
    hi, open_b, odd, *newest = row
    if hi is None:
        return None
    tail = bool(open_b) or any(b is not None and b > hi for b in newest)
    return LayoutState(int(hi), tuple(int(b) for b in open_b), tail, bool(odd))


_TABLES = {"trace_index": "tid_hi, tid_lo", "corr_index": "h_hi, h_lo", "span_index": "sid"}
_ODD = {"trace_index": "tid_odd, oth_odd, sid_odd", "corr_index": "tid_odd",
        "span_index": "sid_odd, tid_odd"}


#: the base tables the index describes
INDEXED = ("spans", "logs", "span_events")


def invalidate(store: Store) -> None:
    """Forget the index (in the caller's transaction, if any): lookups scan until the next
    :func:`optimize`, which rebuilds it. For code that deletes rows of ``INDEXED`` tables
    (retention): an entry must never name rows that are gone — a lookup would find a trace a
    scan does not."""
    for table in (*_TABLES, "layout_runs"):
        store.exec_(f"DELETE FROM {table}")


def optimize(store: Store, *, rebuild: bool = False) -> LayoutReport:
    """Index the batches that arrived since the last call as a new run (merging the newest
    runs when they have grown), or everything from scratch (``rebuild``, or the first call)."""
    started = time.perf_counter()
    if store.one("SELECT md5_number(?)", ["sloengine"]) != key_hash("sloengine"):
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
    full = rebuild or prev is None
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
            return LayoutReport("none", lo, hi, prev.open_batches, 0, 0, len(_runs(store)),
                                time.perf_counter() - started)
    open_now = tuple(sorted(ingesting))
    if open_now:
        sel += f" AND batch_id NOT IN ({', '.join(map(str, open_now))})"
    run_id = int(store.one("SELECT coalesce(max(run_id), 0) + 1 FROM layout_runs"))
    odd_before = 0 if full else int(store.one(
        "SELECT arg_max(odd_rows, run_id) FROM layout_runs"))
    with store.transaction():
        sizes = {} if full else _runs(store)
        if full:
            for table in _TABLES:
                store.exec_(f"DELETE FROM {table}")
        added = odd = 0
        for table, sql in (("trace_index", _trace_rows(sel, run_id)),
                           ("corr_index", _corr_rows(sel, run_id)),
                           ("span_index", _span_rows(sel, run_id))):
            store.exec_(f"CREATE OR REPLACE TEMP TABLE _new_{table} AS {sql}")
            n, n_odd = store.rows(
                f"SELECT count(*), count(*) FILTER (WHERE coalesce({_ODD[table]})"
                f" IS NOT NULL) FROM _new_{table}")[0]
            added, odd = added + int(n), odd + int(n_odd)
        merged = _to_merge(sizes, added)
        keep = ", ".join(map(str, merged)) or "NULL"
        for table, key in _TABLES.items():
            store.exec_(
                f"INSERT INTO {table} BY NAME SELECT * FROM (SELECT * FROM _new_{table}"
                f" UNION ALL BY NAME SELECT * REPLACE ({run_id} AS run) FROM {table}"
                f" WHERE run IN ({keep})) ORDER BY {key}")
            if merged:
                store.exec_(f"DELETE FROM {table} WHERE run IN ({keep})")
            store.exec_(f"DROP TABLE _new_{table}")
        store.exec_(
            "INSERT INTO layout_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, "rebuild" if full else "append", merged, store.now(), lo, hi,
             list(open_now), added, odd_before + odd, time.perf_counter() - started])
    if full or merged:
        store.exec_("CHECKPOINT")  # deleted index rows go now, not at some later write
    return LayoutReport("rebuild" if full else "append", lo, hi, open_now, added, len(merged),
                        len(sizes) - len(merged) + 1, time.perf_counter() - started)


def _runs(store: Store) -> dict[int, int]:
    """Live runs and their sizes (rows over the three index tables), oldest first."""
    union = " UNION ALL ".join(f"SELECT run FROM {t}" for t in _TABLES)
    return {int(r): int(n) for r, n in store.rows(
        f"SELECT run, count(*) FROM ({union}) GROUP BY run ORDER BY run")}


def _to_merge(sizes: dict[int, int], added: int) -> list[int]:
    """The newest runs to copy into the new one: while what is being merged has grown to
    ``_MERGE_RATIO`` of the run before it, that run joins too."""
    merged: list[int] = []
    acc = added
    for run in sorted(sizes, reverse=True):
        if acc < _MERGE_RATIO * sizes[run]:
            break
        merged.append(run)
        acc += sizes[run]
    return sorted(merged)


def _ranges(prefix: str, time_col: str) -> str:
    return (f"min(batch_id) AS {prefix}_b_lo, max(batch_id) AS {prefix}_b_hi, "
            f"min({time_col}) AS {prefix}_t_lo, max({time_col}) AS {prefix}_t_hi")


def _sha(col: str) -> str:
    """``{col}``'s correlation-id key (:func:`corr_key`) as ``_hi``, ``_lo`` columns."""
    return (f"('0x' || left(sha256({col}), 16))::UBIGINT AS {{p}}_hi,"
            f" ('0x' || substr(sha256({col}), 17, 16))::UBIGINT AS {{p}}_lo")


def _trace_rows(sel: str, run: int) -> str:
    """Location rows (dir 0), link rows in both directions (dir 1: links in, 2: out) and
    the keys of the trace's correlation ids (dir 4)."""
    return f"""
WITH s AS (SELECT trace_id, {_ranges('span', 'start_time_unix_nano')} FROM spans
           WHERE {sel} GROUP BY trace_id),
l AS (SELECT trace_id, {_ranges('log', 'time_unix_nano')} FROM logs
      WHERE {sel} AND trace_id IS NOT NULL GROUP BY trace_id),
e AS (SELECT trace_id, {_ranges('ev', 'time_unix_nano')} FROM span_events
      WHERE {sel} GROUP BY trace_id),
loc AS (SELECT *, {_plain('trace_id', 32)} FROM s FULL JOIN l USING (trace_id)
        FULL JOIN e USING (trace_id)),
k AS (SELECT *, {_plain('src', 32)}, {_plain('dst', 32)}, {_plain('dst_span', 16)} FROM (
        SELECT DISTINCT src, lk.trace_id AS dst, lk.span_id AS dst_span
        FROM (SELECT trace_id AS src, unnest(links) AS lk FROM spans
              WHERE {sel} AND len(links) > 0)
        WHERE lk.trace_id IS NOT NULL AND lk.span_id IS NOT NULL))
SELECT {_tid('trace_id')}, {run} AS run, 0::UTINYINT AS dir,
  * EXCLUDE (trace_id, trace_id_plain) FROM loc
UNION ALL BY NAME
SELECT {_tid('dst')}, {run} AS run, 1::UTINYINT AS dir, {_tid('src', 'oth')},
  {_sid('dst_span')} FROM k
UNION ALL BY NAME
SELECT {_tid('src')}, {run} AS run, 2::UTINYINT AS dir, {_tid('dst', 'oth')}
FROM (SELECT DISTINCT src, dst, src_plain, dst_plain FROM k)
UNION ALL BY NAME
SELECT {_tid('trace_id')}, {run} AS run, 4::UTINYINT AS dir,
  {_sha('correlation_id').format(p='oth')} FROM (
  SELECT *, {_plain('trace_id', 32)} FROM (
    SELECT DISTINCT trace_id, correlation_id FROM spans
    WHERE {sel} AND correlation_id IS NOT NULL
    UNION
    SELECT DISTINCT trace_id, correlation_id FROM logs
    WHERE {sel} AND correlation_id IS NOT NULL AND trace_id IS NOT NULL))
"""


def _corr_rows(sel: str, run: int) -> str:
    return f"""
SELECT {_sha('corr').format(p='h')}, {run} AS run,
  {_tid('trace_id')}, * EXCLUDE (corr, trace_id, trace_id_plain) FROM (
  SELECT *, {_plain('trace_id', 32)} FROM (
    SELECT DISTINCT correlation_id AS corr, trace_id FROM spans
    WHERE {sel} AND correlation_id IS NOT NULL
    UNION ALL BY NAME
    SELECT correlation_id AS corr, trace_id, {_ranges('log', 'time_unix_nano')} FROM logs
    WHERE {sel} AND correlation_id IS NOT NULL GROUP BY correlation_id, trace_id))
"""


def _span_rows(sel: str, run: int) -> str:
    return f"""
SELECT DISTINCT {_sid('span_id')}, {run} AS run, {_tid('trace_id')} FROM (
  SELECT *, {_plain('span_id', 16)}, {_plain('trace_id', 32)} FROM (
    SELECT span_id, trace_id FROM spans WHERE {sel}
    UNION ALL
    SELECT DISTINCT span_id, trace_id FROM logs WHERE {sel} AND span_id IS NOT NULL))
"""
