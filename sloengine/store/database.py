"""The one owner of the DuckDB file (ARCHITECTURE.md rule 2): connections, migrations, the
append path with lineage and dead letters, and a narrow query API for the other stages."""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from sloengine.errors import QueryRefused, StoreError
from sloengine.model import BatchCounts, Chunk, DeadLetter, SourceInfo
from sloengine.store import crypt, layout, migrate

#: the time column each signal's retention is measured on
_RETENTION = {
    "spans": "end_time_unix_nano",
    "span_events": "time_unix_nano",
    "logs": "time_unix_nano",
    "metric_points": "time_unix_nano",
}

#: (table, dedup key columns, time column used to prune the duplicate check by zone maps)
_DEDUP = {
    "spans": (("trace_id", "span_id"), "start_time_unix_nano"),
    "logs": (("record_id",), "time_unix_nano"),
    "metric_points": (("point_id",), "time_unix_nano"),
}


def _fetch(cur: Any, sql: str, params: Sequence[Any] | dict[str, Any] | None
           ) -> list[tuple[Any, ...]]:
    return list(cur.execute(sql, params or []).fetchall())


@dataclass(frozen=True, slots=True)
class BatchRow:
    batch_id: int
    source: str
    sha256: str
    status: str


class Store:
    """A DuckDB file with the sloengine schema. One writer per file; readers in other
    processes open it with ``read_only=True``."""

    def __init__(self, path: str | Path, *, read_only: bool = False,
                 clock: Callable[[], datetime] | None = None, sandboxed: bool = False,
                 encryption: crypt.Encryption | None = None,
                 checkpoint_threshold: str | None = None) -> None:
        """``sandboxed``: a read-only connection that cannot reach files or the network
        (``enable_external_access = false``) — for queries typed by people. ``encryption``:
        the file's key (store/crypt.py); the store works the same on an encrypted file.
        ``checkpoint_threshold``: DuckDB's WAL size that triggers a checkpoint (writers)."""
        self.path = str(path)
        self.read_only = read_only or sandboxed
        self.encrypted = encryption is not None
        self._clock = clock or (lambda: datetime.now().astimezone())
        config: dict[str, str | bool | int | float | list[str]] = (
            {"enable_external_access": False} if sandboxed else {})
        if encryption is not None:
            self.con = crypt.connect(self.path, encryption, read_only=self.read_only,
                                     sandboxed=sandboxed)
        else:
            try:
                self.con = duckdb.connect(self.path, read_only=self.read_only, config=config)
            except duckdb.Error as exc:
                msg = str(exc).split("\n")[0]
                raise (crypt.plain_error(msg, self.path)
                       or StoreError(msg, where=self.path)) from None
        if self.read_only:
            if migrate.current_version(self.con) < len(migrate.available()):
                raise StoreError("database schema is older than this sloengine; open it once "
                                 "read-write to migrate", where=self.path)
        else:
            migrate.apply(self.con, self._clock())
            if checkpoint_threshold is not None:  # validated by Settings (a size like 256MB)
                self.exec_(f"SET checkpoint_threshold = '{checkpoint_threshold}'")
        self._in_tx = False
        self._readers: list[Any] = []  # cursors of rows_each(), made on first use
        # the cursor of read(): made now, on the opening thread, for readers on others
        self._reader = crypt.cursor(self.con) if self.encrypted else self.con.cursor()
        self._reader_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        for cur in [*self._readers, self._reader]:
            cur.close()
        self.con.close()

    def now(self) -> datetime:
        return self._clock()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        self.exec_("BEGIN TRANSACTION")
        self._in_tx = True
        try:
            yield self.con
        except BaseException:
            self.exec_("ROLLBACK")
            raise
        finally:
            self._in_tx = False
        self.exec_("COMMIT")

    # -- narrow query API -------------------------------------------------------------
    def exec_(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> None:
        """Run a statement and drain its result (DuckDB 2 refuses new work on a connection
        with an unfinished result)."""
        self.con.execute(sql, params or []).fetchall()

    def rows(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[
            tuple[Any, ...]]:
        return self.con.execute(sql, params or []).fetchall()

    def read(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[
            tuple[Any, ...]]:
        """Rows of a read on a connection of its own, safe to call from any thread while
        the writer works on ``con``: it sees what is committed (DuckDB's MVCC), so a reader
        (an API GET) need not wait for the writer's lock."""
        with self._reader_lock:
            return self._reader.execute(sql, params or []).fetchall()

    def rows_each(self, queries: Sequence[tuple[str, Sequence[Any] | dict[str, Any] | None]]
                  ) -> list[list[tuple[Any, ...]]]:
        """The rows of independent read queries, run at the same time: the first here, the
        others on cursors of this database (connections of their own, which see what is
        committed) in worker threads — DuckDB releases the GIL while it runs. A point read
        is one small scan on one thread; two of them need not wait for each other. Inside a
        transaction of this connection they run here, one after the other."""
        if len(queries) < 2 or self._in_tx:
            return [self.rows(sql, params) for sql, params in queries]
        while len(self._readers) < len(queries) - 1:
            self._readers.append(crypt.cursor(self.con) if self.encrypted
                                 else self.con.cursor())
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="store-read")
        futures = [self._pool.submit(_fetch, cur, sql, params)
                   for cur, (sql, params) in zip(self._readers, queries[1:], strict=False)]
        first = self.rows(*queries[0])
        return [first, *(f.result() for f in futures)]

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        rows = self.con.execute(sql, params or []).fetchall()
        return rows[0][0] if rows else None

    def arrow(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        return self.con.sql(sql, params=params or None).to_arrow_table()

    def frame(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        """A polars frame (zero-copy through Arrow)."""
        return self.con.sql(sql, params=params or None).pl()

    def columns(self, table: str) -> dict[str, str]:
        return {
            r[0]: r[1]
            for r in self.rows(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ? ORDER BY ordinal_position", [table])
        }

    def user_query(self, sql: str, limit: int | None = None) -> tuple[list[str], list[
            tuple[Any, ...]]]:
        """Run one statement typed by a person: only a single SELECT (or EXPLAIN) passes;
        anything that writes, attaches, copies, loads or sets is refused before it runs."""
        try:
            statements = self.con.extract_statements(sql)
        except duckdb.Error as exc:
            raise QueryRefused(f"not valid SQL: {str(exc).splitlines()[0]}") from None
        if len(statements) != 1:
            raise QueryRefused(f"exactly one statement please, got {len(statements)}")
        kind = statements[0].type.name
        if kind not in ("SELECT", "EXPLAIN"):
            raise QueryRefused(f"{kind} statements are refused: this connection only reads")
        try:
            cur = self.con.execute(sql)
            cols = [d[0] for d in cur.description or []]
            rows = cur.fetchall() if limit is None else cur.fetchmany(limit)
            if limit is not None:
                cur.fetchall()
        except duckdb.Error as exc:
            raise QueryRefused(str(exc).splitlines()[0]) from None
        return cols, rows

    # -- engine metadata ----------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        v = self.one("SELECT value FROM engine_meta WHERE key = ?", [key])
        return None if v is None else str(v)

    def set_meta(self, key: str, value: str) -> None:
        self.exec_("INSERT OR REPLACE INTO engine_meta VALUES (?, ?)", [key, value])

    def secret(self, key: str) -> str:
        """A per-database random secret, made on first use (e.g. the default redaction key)."""
        v = self.meta(key)
        if v is None:
            v = secrets.token_hex(32)
            self.set_meta(key, v)
        return v

    # -- lineage ------------------------------------------------------------------------
    def find_complete_batch(self, sha256: str) -> BatchRow | None:
        rows = self.rows(
            "SELECT batch_id, source, sha256, status FROM ingest_batches "
            "WHERE sha256 = ? AND status = 'complete' ORDER BY batch_id LIMIT 1", [sha256])
        return BatchRow(*rows[0]) if rows else None

    def begin_batch(self, info: SourceInfo, *, status: str = "ingesting",
                    duplicate_of: int | None = None) -> int:
        now = self._clock()
        bid = int(self.one("SELECT nextval('ingest_batch_seq')"))
        self.exec_(
            "INSERT INTO ingest_batches (batch_id, source, format, signal, sha256, size_bytes,"
            " received_at, finished_at, status, duplicate_of) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [bid, info.source, info.format, info.signal, info.sha256, info.size_bytes, now,
             now if status != "ingesting" else None, status, duplicate_of],
        )
        return bid

    def finish_batch(self, batch_id: int, counts: BatchCounts) -> None:
        a = counts.accepted
        self.exec_(
            "UPDATE ingest_batches SET status = 'complete', finished_at = ?,"
            " accepted_spans = ?, accepted_span_events = ?, accepted_logs = ?,"
            " accepted_metric_points = ?, duplicate_records = ?, rejected = ?"
            " WHERE batch_id = ?",
            [self._clock(), a.get("spans", 0), a.get("span_events", 0), a.get("logs", 0),
             a.get("metric_points", 0), sum(counts.duplicates.values()), counts.rejected,
             batch_id],
        )

    # -- append -------------------------------------------------------------------------
    def append(self, batch_id: int, info: SourceInfo, chunk: Chunk) -> BatchCounts:
        """Store one chunk atomically: new records, their lineage, and the dead letters.

        Records already stored (same span ids, same log/point content) are skipped, so a
        retried upload or a file ingested twice adds nothing (idempotent ingest).
        """
        counts = BatchCounts()
        tables = chunk.tables()
        with self.one_thread(), self.transaction() as con:
            resources = tables.get("resources")
            if resources is not None:
                self.add_resources(resources, batch_id)
            spans = tables.get("spans")
            if spans is not None:
                n_new = self._insert_dedup(con, "spans", spans, batch_id)
                counts.accepted["spans"] = n_new
                counts.duplicates["spans"] = spans.num_rows - n_new
                events = tables.get("span_events")
                if events is not None:
                    con.register("_in_events", events)
                    n = self.rows(
                        "INSERT INTO span_events BY NAME SELECT ? AS batch_id, e.* FROM "
                        "(SELECT * FROM _in_events QUALIFY row_number() OVER "
                        " (PARTITION BY trace_id, span_id, seq) = 1) e "
                        "SEMI JOIN _new_spans n USING (trace_id, span_id)", [batch_id])
                    con.unregister("_in_events")
                    counts.accepted["span_events"] = int(n[0][0])
                self.exec_("DROP TABLE IF EXISTS _new_spans")
            for name in ("logs", "metric_points"):
                tbl = tables.get(name)
                if tbl is not None:
                    n_new = self._insert_dedup(con, name, tbl, batch_id)
                    self.exec_(f"DROP TABLE IF EXISTS _new_{name}")
                    counts.accepted[name] = n_new
                    counts.duplicates[name] = tbl.num_rows - n_new
            if chunk.dead_letters:
                counts.rejected = self._dead_letters(con, batch_id, info, chunk.dead_letters)
        return counts

    def add_resources(self, tbl: Any, batch_id: int | None = None) -> None:
        """Store the resources (Arrow: resource_id, service_name, attributes) not stored yet
        (migrations/013_resources.sql), as of ``batch_id`` (None: ``tbl`` has a batch_id
        column). Call inside the chunk's transaction."""
        self.con.register("_in_res", tbl)
        try:
            bid = "r.batch_id" if batch_id is None else str(int(batch_id))
            self.exec_(
                f"INSERT INTO resources SELECT {bid}, r.resource_id, r.service_name,"
                " r.attributes FROM (SELECT * FROM _in_res QUALIFY row_number() OVER"
                " (PARTITION BY resource_id) = 1) r"
                " ANTI JOIN resources x ON x.resource_id = r.resource_id")
        finally:
            self.con.unregister("_in_res")

    def _insert_dedup(self, con: Any, table: str, tbl: Any, batch_id: int) -> int:
        keys, tcol = _DEDUP[table]
        key_list = ", ".join(keys)
        on = " AND ".join(f"s.{k} = b.{k}" for k in keys)
        con.register("_in", tbl)
        try:
            lo, hi = self.rows(f"SELECT min({tcol}), max({tcol}) FROM _in")[0]
            # The keys of the new records, from the key columns only: the wide rows (maps,
            # lists) are read once, by the INSERT, and not copied into a temp table.
            self.exec_(
                f"CREATE OR REPLACE TEMP TABLE _new_{table} AS "
                f"SELECT DISTINCT {key_list} FROM _in b "
                f"WHERE NOT EXISTS (SELECT 1 FROM {table} s WHERE {on} "
                f"  AND s.{tcol} BETWEEN ? AND ?)",
                [lo, hi],
            )
            n_new = int(self.one(f"SELECT count(*) FROM _new_{table}"))
            if n_new == tbl.num_rows:  # the common case: no key repeats and none is stored
                self.exec_(f"INSERT INTO {table} BY NAME SELECT ? AS batch_id, * FROM _in",
                           [batch_id])
            elif n_new:
                self.exec_(
                    f"INSERT INTO {table} BY NAME SELECT ? AS batch_id, b.* FROM "
                    f"(SELECT * FROM _in QUALIFY row_number() OVER "
                    f"  (PARTITION BY {key_list}) = 1) b "
                    f"SEMI JOIN _new_{table} n USING ({key_list})",
                    [batch_id],
                )
            return n_new
        finally:
            con.unregister("_in")

    def _dead_letters(self, con: Any, batch_id: int, info: SourceInfo,
                      dead: list[DeadLetter]) -> int:
        import pyarrow as pa

        now = self._clock()
        rows = {
            "batch_id": [batch_id] * len(dead),
            "dl_key": [
                hashlib.sha256(f"{info.sha256}\0{d.location}\0{d.reason}".encode()).hexdigest()
                for d in dead
            ],
            "source": [info.source] * len(dead),
            "location": [d.location for d in dead],
            "signal": [d.signal or info.signal for d in dead],
            "reason": [d.reason for d in dead],
            "raw": [d.raw for d in dead],
            "received_at": [now] * len(dead),
        }
        con.register("_dl", pa.table(rows))
        try:
            self.exec_(
                "INSERT INTO dead_letters BY NAME SELECT * FROM _dl d "
                "WHERE NOT EXISTS (SELECT 1 FROM dead_letters x WHERE x.dl_key = d.dl_key) "
                "QUALIFY row_number() OVER (PARTITION BY dl_key) = 1"
            )
        finally:
            con.unregister("_dl")
        return len(dead)

    def append_many(self, items: Sequence[tuple[int, SourceInfo, Chunk]]) -> list[BatchCounts]:
        """Store the chunks of many batches with one statement per table (store/bulk.py),
        inside the caller's transaction or one of its own; the counts of each item."""
        from sloengine.store import bulk

        with self.one_thread():
            if self._in_tx:
                return bulk.append_many(self, items)
            with self.transaction():
                return bulk.append_many(self, items)

    @contextmanager
    def one_thread(self) -> Iterator[None]:
        """Run the appends inside with one DuckDB thread (a global setting, restored after).

        With two, DuckDB scans the Arrow record batches of a chunk in parallel and appends
        each thread's rows as row groups of their own: partly filled, so the next checkpoint
        rewrites them. Measured on 1M spans (benchmarks/README.md): 9.4 CPU s and a 111 MiB
        file with two threads, 6.1 CPU s and 64 MiB with one. Ingest has the other cores
        busy decoding (ingest/parallel.py), so the second thread only ever cost CPU."""
        threads = self.one("SELECT current_setting('threads')")
        self.exec_("SET threads = 1")
        try:
            yield
        finally:
            self.exec_(f"SET threads = {int(threads)}")

    # -- retention ------------------------------------------------------------------------
    def delete_older(self, table: str, cutoff_ns: int) -> int:
        """Delete a signal's records older than ``cutoff_ns``; returns how many went."""
        if table == "dead_letters":
            cutoff = datetime.fromtimestamp(cutoff_ns / 1e9).astimezone()
            with self.transaction():
                n = int(self.one("SELECT count(*) FROM dead_letters WHERE received_at < ?",
                                 [cutoff]))
                self.exec_("DELETE FROM dead_letters WHERE received_at < ?", [cutoff])
            return n
        col = _RETENTION[table]
        with self.transaction():
            n = int(self.one(f"SELECT count(*) FROM {table} WHERE {col} < ?", [cutoff_ns]))
            if n:
                self.exec_(f"DELETE FROM {table} WHERE {col} < ?", [cutoff_ns])
                if table in layout.INDEXED:  # the id index would name rows that are gone
                    layout.invalidate(self)
        return n

    # -- physical layout (store/layout.py) -----------------------------------------------
    def optimize_layout(self, *, rebuild: bool = False) -> layout.LayoutReport:
        """Index the batches appended since the last call in the id index of forensics (one
        more sorted run; the newest runs are merged as they grow), or rebuild it from all
        data. The engine runs it on a schedule; lookups read what is not indexed yet
        directly."""
        return layout.optimize(self, rebuild=rebuild)

    def layout_state(self) -> layout.LayoutState | None:
        """What the id index covers (None: never built, lookups scan)."""
        return layout.state(self)

    # -- summaries ------------------------------------------------------------------------
    def table_counts(self) -> dict[str, int]:
        out = {}
        for t in ("spans", "span_events", "logs", "metric_points", "ingest_batches",
                  "dead_letters"):
            out[t] = int(self.one(f"SELECT count(*) FROM {t}"))
        return out

    def summary(self) -> dict[str, Any]:
        counts = self.table_counts()
        lo, hi = self.rows(
            "SELECT min(start_time_unix_nano), max(end_time_unix_nano) FROM spans")[0]
        services = [
            {"service": r[0], "spans": int(r[1]), "errors": int(r[2]), "traces": int(r[3])}
            for r in self.rows(
                "SELECT coalesce(service_name, '(none)'), count(*), count(*) FILTER (is_error),"
                " count(DISTINCT trace_id) FROM spans GROUP BY 1 ORDER BY 1")
        ]
        batches = self.rows(
            "SELECT count(*) FILTER (status = 'complete'), count(*) FILTER (status = 'duplicate'),"
            " count(*) FILTER (status = 'ingesting') FROM ingest_batches")[0]
        return {
            "tables": counts,
            "spans_from_unix_nano": lo,
            "spans_to_unix_nano": hi,
            "services": services,
            "batches": {"complete": batches[0], "duplicate": batches[1],
                        "incomplete": batches[2]},
            "schema_version": migrate.current_version(self.con),
        }
