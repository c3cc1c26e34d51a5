"""Idempotent ingest, lineage back to the raw bytes, migrations, and the Arrow ↔ table
contract."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT
from otlp_factory import span, trace_request

from sloengine.engine import Engine
from sloengine.ingest import SCHEMAS
from sloengine.store import Store, migrate


def test_same_file_twice_and_overlapping_retry(tmp_path: Path, engine: Engine) -> None:
    first = tmp_path / "a.traces.pb"
    first.write_bytes(trace_request([span(1, i) for i in range(1, 6)]).SerializeToString())
    # a client retry that overlaps: spans 4..8 (4 and 5 already sent), and a span twice
    retry = tmp_path / "b.traces.pb"
    retry.write_bytes(
        trace_request([span(1, i) for i in (4, 5, 6, 7, 8, 8)]).SerializeToString())
    r1 = engine.ingest([first])[0]
    r1b = engine.ingest([first])[0]
    r2 = engine.ingest([retry])[0]
    assert r1.counts.accepted["spans"] == 5
    assert (r1b.duplicate_of, r1b.counts.accepted) == (r1.batch_id, {})
    assert r2.counts.accepted["spans"] == 3
    assert r2.counts.duplicates["spans"] == 3
    assert engine.store.one("SELECT count(*) FROM spans") == 8
    assert engine.store.one(
        "SELECT count(*) FROM (SELECT trace_id, span_id FROM spans GROUP BY ALL "
        "HAVING count(*) > 1)") == 0
    batches = engine.store.rows(
        "SELECT batch_id, status, duplicate_of, accepted_spans, duplicate_records "
        "FROM ingest_batches ORDER BY batch_id")
    assert batches == [(1, "complete", None, 5, 0), (2, "duplicate", 1, 0, 0),
                       (3, "complete", None, 3, 3)]


def test_duplicate_logs_and_points_by_content(tmp_path: Path, engine: Engine) -> None:
    line = ('{"ts": "2026-11-20T10:00:00Z", "status": 200, "route": "/a"}\n'
            '{"ts": "2026-11-20T10:00:01Z", "status": 500, "route": "/a"}\n')
    (tmp_path / "one.jsonl").write_text(line)
    (tmp_path / "two.jsonl").write_text(line + line)  # different file, same records
    engine.ingest([tmp_path / "one.jsonl"])
    r = engine.ingest([tmp_path / "two.jsonl"])[0]
    assert r.counts.accepted["logs"] == 0 and r.counts.duplicates["logs"] == 4
    assert engine.store.one("SELECT count(*) FROM logs") == 2


def test_every_row_traces_back_to_its_raw_bytes(tmp_path: Path, engine: Engine) -> None:
    f = tmp_path / "x.traces.pb"
    data = trace_request([span(9, 1), span(9, 2, 1)]).SerializeToString()
    f.write_bytes(data)
    engine.ingest([f])
    rows = engine.store.rows(
        "SELECT s.span_id, b.source, b.format, b.signal, b.sha256, b.size_bytes, b.status,"
        " b.received_at IS NOT NULL, b.finished_at >= b.received_at "
        "FROM spans s JOIN ingest_batches b USING (batch_id) ORDER BY s.span_id")
    sha = hashlib.sha256(data).hexdigest()
    assert rows == [
        ("0000000000000001", str(f), "otlp-proto", "traces", sha, len(data), "complete", True,
         True),
        ("0000000000000002", str(f), "otlp-proto", "traces", sha, len(data), "complete", True,
         True),
    ]


def test_migrations_apply_once_and_are_recorded(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    with Store(db) as s:
        versions = s.rows("SELECT version, name FROM schema_migrations ORDER BY version")
    with Store(db) as s:  # reopening applies nothing again
        assert s.rows("SELECT version, name FROM schema_migrations ORDER BY version") == versions
    assert [v for v, _ in versions] == [m.version for m in migrate.available()]
    assert versions[0] == (1, "initial")


def test_arrow_schemas_match_the_tables(tmp_path: Path) -> None:
    """The ingest side's Arrow schemas are the contract with the store's tables."""
    import duckdb
    import pyarrow as pa

    with Store(tmp_path / "c.duckdb") as s:
        for table, schema in SCHEMAS.items():
            cols = s.columns(table)
            assert list(cols) == ["batch_id", *schema.names], table
            # each Arrow type converts to exactly the column's DuckDB type
            probe = duckdb.connect()
            for f in schema:
                probe.register("t", pa.table({"c": pa.array([], f.type)}))
                got = probe.execute("SELECT typeof(c) FROM t UNION ALL SELECT NULL LIMIT 1"
                                    ).fetchall()
                described = probe.execute("DESCRIBE SELECT c FROM t").fetchall()[0][1]
                assert described == cols[f.name], (table, f.name, described, got)


def test_kill_9_during_ingest_loses_nothing_committed(tmp_path: Path) -> None:
    """Chunks commit one by one; after a kill -9 the file ingests again to completion with
    every span exactly once."""
    n = 200_000
    req = trace_request([span(i // 10 + 1, i + 1, start_ms=i) for i in range(n)])
    f = tmp_path / "big.traces.pb"
    f.write_bytes(req.SerializeToString())
    db = tmp_path / "k.duckdb"
    env = {**os.environ, "SLOENGINE_CHUNK_RECORDS": "2000"}
    cmd = [sys.executable, "-m", "sloengine", "ingest", str(f), "--db", str(db)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wal = db.parent / (db.name + ".wal")
    deadline = time.monotonic() + 120
    # wait until some chunks are committed (the WAL grows past a few chunks), then kill
    while time.monotonic() < deadline and proc.poll() is None and (
            not wal.exists() or wal.stat().st_size < 2_000_000):
        time.sleep(0.01)
    assert proc.poll() is None, "ingest finished before the kill: make the input larger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with Store(db, read_only=True) as s:
        partial = s.one("SELECT count(*) FROM spans")
    assert 0 < partial < n, "the kill must land mid-file for this test to mean anything"
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    with Store(db, read_only=True) as s:
        assert s.one("SELECT count(*) FROM spans") == n
        assert s.one("SELECT count(DISTINCT (trace_id, span_id)) FROM spans") == n
        statuses = [r[0] for r in s.rows("SELECT status FROM ingest_batches ORDER BY batch_id")]
    assert statuses == ["ingesting", "complete"]  # the killed attempt stays visible


def test_retention_deletes_old_records_keeps_aggregates(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from otlp_factory import T0

    from sloengine.settings import load_settings

    now = datetime.fromtimestamp(T0 / 1e9, UTC) + timedelta(days=31)
    e = Engine(load_settings(None, db=tmp_path / "r.duckdb"), clock=lambda: now)
    old = trace_request([span(1, 1, start_ms=0), span(1, 2, 1, start_ms=5)])
    recent = trace_request([span(2, 1, start_ms=2 * 86_400_000)])
    (tmp_path / "old.traces.pb").write_bytes(old.SerializeToString())
    (tmp_path / "new.traces.pb").write_bytes(recent.SerializeToString())
    e.ingest([tmp_path])
    e.store.exec_("INSERT INTO slo_buckets VALUES ('s', 'h', '', 1, 1, 1)")
    deleted = e.enforce_retention()
    assert deleted["spans"] == 2
    assert e.store.rows("SELECT trace_id FROM spans") == [("0" * 31 + "2",)]
    assert e.store.one("SELECT count(*) FROM slo_buckets") == 1  # aggregates stay
    assert e.store.one("SELECT count(*) FROM ingest_batches") == 2  # lineage stays
    assert e.store.rows("SELECT action FROM audit_log WHERE action = 'retention'") == [
        ("retention",)]
    e.close()
