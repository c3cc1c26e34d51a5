"""Spans point to their resource (migrations/013_resources.sql): one ``resources`` row per
distinct resource whatever the number of batches and spans, ids computed from the redacted
attributes, and databases from before 013 migrated with every span keeping its resource
(test_ingest_parallel.py checks that workers store the same resources as in-process decoding)."""

from __future__ import annotations

from pathlib import Path

import duckdb
from otlp_factory import kv, span, trace_request

from sloengine.engine import Engine
from sloengine.ingest.resources import resource_id
from sloengine.store import Store, migrate


def _two_resources(first_trace: int) -> bytes:
    req = trace_request([span(first_trace, 1), span(first_trace, 2)], service="orders")
    req.resource_spans[0].resource.attributes.append(kv("host.name", "node-1"))
    other = trace_request([span(first_trace + 1, 3)], service="orders")
    other.resource_spans[0].resource.attributes.append(kv("host.name", "node-2"))
    req.resource_spans.extend(other.resource_spans)
    return bytes(req.SerializeToString())


def test_a_resource_is_stored_once_across_batches(engine: Engine) -> None:
    for t in (1, 10):  # two requests, same two resources
        engine.ingest_bytes(_two_resources(t), "traces", "otlp-proto", "10.0.0.1:1")
    q = engine.store.rows
    assert q("SELECT batch_id, service_name, attributes['host.name'] FROM resources"
             " ORDER BY 3") == [(1, "orders", "node-1"), (1, "orders", "node-2")]
    assert q("SELECT r.attributes['host.name'], count(*) FROM spans s JOIN resources r"
             " USING (resource_id) GROUP BY 1 ORDER BY 1") == [("node-1", 4), ("node-2", 2)]
    rid = resource_id([("host.name", "node-1"), ("service.name", "orders")])
    assert q("SELECT resource_id FROM resources WHERE attributes['host.name'] = 'node-1'") == [
        (rid,)]


def test_the_id_is_computed_from_the_redacted_values(engine: Engine) -> None:
    req = trace_request([span(1, 1)], service="mail")
    req.resource_spans[0].resource.attributes.append(kv("owner", "jane@example.com"))
    engine.ingest_bytes(req.SerializeToString(), "traces", "otlp-proto", "10.0.0.1:1")
    token = engine.read_options().redactor.token("email", "jane@example.com")
    [(rid, owner)] = engine.store.rows("SELECT resource_id, attributes['owner'] FROM resources")
    assert owner == token
    assert rid == resource_id([("owner", token), ("service.name", "mail")])
    assert rid != resource_id([("owner", "jane@example.com"), ("service.name", "mail")])


def test_migration_013_moves_existing_resource_maps(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
                " name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)").fetchall()
    for mig in migrate.available():
        if mig.version < 13:
            con.execute(mig.sql).fetchall()
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())",
                        [mig.version, mig.name]).fetchall()
    con.execute("""
        INSERT INTO spans (batch_id, trace_id, span_id, name, kind, service_name,
          start_time_unix_nano, end_time_unix_nano, duration_ns, status_code, is_error,
          resource_attributes, event_count)
        SELECT b, 't' || i, 's' || i, 'op', 'SERVER', 'svc', 1, 2, 1, 'UNSET', false,
          MAP {'service.name': 'svc', 'host.name': 'h' || (i % 2)}, 0
        FROM range(5) r(i), (SELECT 3 AS b)""").fetchall()
    con.close()
    with Store(db) as s:
        assert "resource_attributes" not in s.columns("spans")
        assert s.rows("SELECT s.span_id, r.attributes['host.name'], r.batch_id FROM spans s"
                      " JOIN resources r USING (resource_id) ORDER BY 1") == [
            (f"s{i}", f"h{i % 2}", 3) for i in range(5)]
        assert s.one("SELECT count(*) FROM resources") == 2
