"""Many chunks of many lineage batches in one statement per table (``Store.append_many``).

The OTLP/HTTP receiver gets small requests (an exporter's batch: a few hundred spans). Stored
one by one, each pays a transaction of its own and a handful of statements, which costs more
than the rows themselves (measured: ~95 ms per 500-span request, most of it commits and
per-statement overhead). Here the Arrow tables of many requests are concatenated with two
extra columns — ``batch_id`` (the lineage batch the row belongs to, so lineage still points
every row at its own request) and ``_ord`` (the item's position) — and each table is
deduplicated and inserted once.

Dedup means what ``Store.append`` means, applied in item order: a record already stored is
skipped; among the items of one call, the first item that carries a key wins (as if the
items had been appended one after the other). Span events go with the spans that were new
in the same item.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sloengine.model import BatchCounts, Chunk, SourceInfo

if TYPE_CHECKING:
    from sloengine.store.database import Store

#: (dedup key columns, time column whose range prunes the duplicate check by zone maps)
_KEYS = {
    "spans": (("trace_id", "span_id"), "start_time_unix_nano"),
    "logs": (("record_id",), "time_unix_nano"),
    "metric_points": (("point_id",), "time_unix_nano"),
}


def append_many(store: Store, items: Sequence[tuple[int, SourceInfo, Chunk]]
                ) -> list[BatchCounts]:
    """Store ``(batch_id, info, chunk)`` items; the caller holds the transaction. Returns
    the counts of each item, in order."""
    counts = [BatchCounts() for _ in items]
    by_table: dict[str, list[tuple[int, Any]]] = {}
    for i, (_bid, _info, chunk) in enumerate(items):
        for name, tbl in chunk.tables().items():
            by_table.setdefault(name, []).append((i, tbl))
    if by_table.get("resources"):
        store.add_resources(_tagged(by_table["resources"], items))
    for name in ("spans", "logs", "metric_points"):
        parts = by_table.get(name)
        if not parts:
            continue
        _insert(store, name, _tagged(parts, items), counts)
        if name == "spans" and by_table.get("span_events"):
            _events(store, _tagged(by_table["span_events"], items), counts)
        store.exec_(f"DROP TABLE IF EXISTS _bulk_new_{name}")
    for i, (bid, info, chunk) in enumerate(items):
        if chunk.dead_letters:
            counts[i].rejected = store._dead_letters(store.con, bid, info, chunk.dead_letters)
    return counts


def _tagged(parts: list[tuple[int, Any]], items: Sequence[tuple[int, SourceInfo, Chunk]]
            ) -> Any:
    """One Arrow table of all parts, each row tagged with its batch_id and item position."""
    tables = []
    for i, tbl in parts:
        n = tbl.num_rows
        tbl = tbl.append_column("batch_id", pa.array([items[i][0]] * n, pa.int64()))
        tables.append(tbl.append_column("_ord", pa.array([i] * n, pa.int32())))
    return pa.concat_tables(tables, promote_options="permissive")


def _insert(store: Store, table: str, tbl: Any, counts: list[BatchCounts]) -> None:
    keys, tcol = _KEYS[table]
    key_list = ", ".join(keys)
    on = " AND ".join(f"s.{k} = b.{k}" for k in keys)
    con = store.con
    con.register("_bulk_in", tbl)
    try:
        lo, hi = store.rows(f"SELECT min({tcol}), max({tcol}) FROM _bulk_in")[0]
        # the new keys, each with the first item that carries it
        store.exec_(
            f"CREATE OR REPLACE TEMP TABLE _bulk_new_{table} AS "
            f"SELECT {key_list}, min(_ord) AS _ord FROM _bulk_in b "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} s WHERE {on} "
            f"  AND s.{tcol} BETWEEN ? AND ?) GROUP BY ALL", [lo, hi])
        per_item = store.rows(f"SELECT _ord, count(*) FROM _bulk_new_{table} GROUP BY _ord")
        n_new = sum(int(n) for _, n in per_item)
        if n_new == tbl.num_rows:  # the common case: no key repeats and none is stored
            store.exec_(f"INSERT INTO {table} BY NAME SELECT * EXCLUDE (_ord) FROM _bulk_in")
        elif n_new:
            store.exec_(
                f"INSERT INTO {table} BY NAME SELECT b.* EXCLUDE (_ord) FROM "
                f"(SELECT * FROM _bulk_in QUALIFY row_number() OVER "
                f"  (PARTITION BY {key_list} ORDER BY _ord) = 1) b "
                f"SEMI JOIN _bulk_new_{table} n USING ({key_list}, _ord)")
    finally:
        con.unregister("_bulk_in")
    rows_in = _rows_per_item(tbl)
    accepted = {int(i): int(n) for i, n in per_item}
    for i, total in rows_in.items():
        counts[i].accepted[table] = counts[i].accepted.get(table, 0) + accepted.get(i, 0)
        counts[i].duplicates[table] = (counts[i].duplicates.get(table, 0) + total
                                       - accepted.get(i, 0))


def _rows_per_item(tbl: Any) -> dict[int, int]:
    vc = tbl.column("_ord").value_counts()
    return {int(v["values"]): int(v["counts"]) for v in vc.to_pylist()}


def _events(store: Store, events: Any, counts: list[BatchCounts]) -> None:
    """Span events of the spans that were new in the same item (one per span and seq)."""
    con = store.con
    con.register("_bulk_events", events)
    try:
        store.exec_(
            "CREATE OR REPLACE TEMP TABLE _bulk_ev AS SELECT e.* FROM "
            "(SELECT * FROM _bulk_events QUALIFY row_number() OVER "
            " (PARTITION BY trace_id, span_id, seq ORDER BY _ord) = 1) e "
            "SEMI JOIN _bulk_new_spans n USING (trace_id, span_id, _ord)")
    finally:
        con.unregister("_bulk_events")
    for i, n in store.rows("SELECT _ord, count(*) FROM _bulk_ev GROUP BY _ord"):
        c = counts[int(i)]
        c.accepted["span_events"] = c.accepted.get("span_events", 0) + int(n)
    store.exec_("INSERT INTO span_events BY NAME SELECT * EXCLUDE (_ord) FROM _bulk_ev")
    store.exec_("DROP TABLE _bulk_ev")


def insert_rows(store: Store, table: str, columns: list[str], rows: list[list[Any]]) -> None:
    """Many rows in one statement, through an Arrow table (executemany: ~1k rows/s)."""
    if not rows:
        return
    tbl = pa.table({c: [r[i] for r in rows] for i, c in enumerate(columns)})
    store.con.register("_bulk_rows", tbl)
    try:
        store.exec_(f"INSERT INTO {table} BY NAME SELECT * FROM _bulk_rows")
    finally:
        store.con.unregister("_bulk_rows")


def complete_batches(store: Store, sha256s: list[str]) -> dict[str, int]:
    """The first complete batch of each of these sha256s that has one (one query)."""
    if not sha256s:
        return {}
    rows = store.rows("SELECT sha256, min(batch_id) FROM ingest_batches WHERE status = "
                      "'complete' AND sha256 IN (SELECT unnest(?)) GROUP BY sha256",
                      [sha256s])
    return {str(s): int(b) for s, b in rows}


def new_batch_ids(store: Store, n: int) -> list[int]:
    """``n`` lineage batch ids from the sequence, in one query."""
    if n == 0:
        return []
    return [int(r[0]) for r in store.rows(
        "SELECT nextval('ingest_batch_seq') FROM range(?) ORDER BY 1", [n])]


#: the columns of a finished lineage row, in record_batches' order
BATCH_COLUMNS = ["batch_id", "source", "format", "signal", "sha256", "size_bytes",
                 "received_at", "finished_at", "status", "duplicate_of", "accepted_spans",
                 "accepted_span_events", "accepted_logs", "accepted_metric_points",
                 "duplicate_records", "rejected"]


def record_batches(store: Store, rows: list[tuple[int, SourceInfo, int | None, BatchCounts]]
                   ) -> None:
    """Finished lineage rows ``(batch_id, info, duplicate_of, counts)`` in one INSERT —
    what begin_batch + finish_batch leave, for batches stored inside one transaction."""
    now = store.now()
    out = []
    for bid, info, dup, c in rows:
        a = c.accepted
        out.append([bid, info.source, info.format, info.signal, info.sha256, info.size_bytes,
                    now, now, "duplicate" if dup is not None else "complete", dup,
                    a.get("spans", 0), a.get("span_events", 0), a.get("logs", 0),
                    a.get("metric_points", 0), sum(c.duplicates.values()), c.rejected])
    tbl = pa.table({c: [r[i] for r in out] for i, c in enumerate(BATCH_COLUMNS)},
                   schema=pa.schema([(c, pa.int64() if c in _INT_COLS else pa.string())
                                     if c not in ("received_at", "finished_at")
                                     else (c, pa.timestamp("us", tz="UTC"))
                                     for c in BATCH_COLUMNS]))
    store.con.register("_bulk_batches", tbl)
    try:
        store.exec_("INSERT INTO ingest_batches BY NAME SELECT * FROM _bulk_batches")
    finally:
        store.con.unregister("_bulk_batches")


_INT_COLS = {"batch_id", "size_bytes", "duplicate_of", "accepted_spans", "accepted_span_events",
             "accepted_logs", "accepted_metric_points", "duplicate_records", "rejected"}
