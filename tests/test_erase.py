"""GDPR erasure (`sloengine erase --attribute KEY=VALUE`): exact counts on crafted data, values
redacted at ingest found by their token, aggregates and lineage untouched, one audit entry
without the value, and the trace id index forgotten."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from otlp_factory import T0, kv, span, trace_request
from slo_helpers import load_one, put_buckets

from sloengine.engine import Engine
from sloengine.errors import ConfigError

ALICE = "alice@example.com"
RAW_TABLES = ("spans", "span_events", "logs", "metric_points", "dead_letters")


def _event(sp: Any, name: str, attrs: dict[str, Any] | None = None) -> Any:
    ev = sp.events.add()
    ev.name = name
    ev.time_unix_nano = sp.start_time_unix_nano + 1
    for k, v in (attrs or {}).items():
        ev.attributes.append(kv(k, v))
    return sp


def _traces() -> bytes:
    failed = span(1, 5, name="send-mail")
    failed.status.code = 2  # type: ignore[assignment]
    failed.status.message = f"mail to {ALICE} bounced"
    bad = span(2, 9, attrs={"user.email": ALICE})
    bad.span_id = bytes(8)  # rejected at ingest: a dead letter holding the raw address
    return trace_request([
        _event(span(1, 1, attrs={"user.email": ALICE}), "login"),   # redacted by key
        span(1, 2, attrs={"enduser.id": "alice"}),                   # redacted by key
        span(1, 3, attrs={"correlation.id": "req-77"}),              # promoted + kept
        span(1, 4, attrs={"customer": ALICE}),                       # e-mail pattern
        failed,                                                      # text: status message
        span(1, 6, attrs={"http.route": "/users/alice"}),          # a promoted column
        span(1, 10, attrs={"tenant.count": 42}),                   # an int attribute
        _event(span(1, 7), "mail", {"user.email": ALICE}),           # only its event
        span(1, 8, attrs={"user.email": "bob@example.com"}),
        bad,
    ]).SerializeToString()


def _logs() -> bytes:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.append(kv("service.name", "svc"))
    recs = rl.scope_logs.add().log_records
    for i, (body, attrs) in enumerate([
            (f"password reset for {ALICE}", {}),
            ("login ok", {"user.email": ALICE}),
            ("login ok", {"user.email": "bob@example.com"}),
            ("malice@example.community is not alice", {})]):
        lr = recs.add()
        lr.time_unix_nano = T0 + i
        lr.body.string_value = body
        for k, v in attrs.items():
            lr.attributes.append(kv(k, v))
    return req.SerializeToString()


def _metrics() -> bytes:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.append(kv("service.name", "svc"))
    m = rm.scope_metrics.add().metrics.add()
    m.name = "logins"
    for i, who in enumerate([ALICE, "bob@example.com"]):
        p = m.gauge.data_points.add()
        p.time_unix_nano = T0 + i
        p.as_int = 1
        p.attributes.append(kv("user.email", who))
    return req.SerializeToString()


@pytest.fixture
def loaded(engine: Engine, tmp_path: Path) -> Engine:
    for body, signal in ((_traces(), "traces"), (_logs(), "logs"), (_metrics(), "metrics")):
        engine.ingest_bytes(body, signal, "otlp-proto", "10.0.0.1:1")
    slo = load_one(tmp_path, {
        "indicator": {"kind": "ratio", "total": {"source": "spans"}, "bad": {"error": True}},
        "objectives": [{"target": 0.99}], "window": {"rolling": "1d"}})
    put_buckets(engine.store, slo, [("", 29_400_000 + i, 9.0, 10.0) for i in range(5)])
    engine.optimize_layout()
    return engine


def _snapshot(engine: Engine) -> dict[str, Any]:
    q = engine.store.rows
    return {
        "counts": {t: q(f"SELECT count(*) FROM {t}")[0][0] for t in RAW_TABLES},
        "buckets": q("SELECT * FROM slo_buckets ORDER BY ALL"),
        "batches": q("SELECT * FROM ingest_batches ORDER BY batch_id"),
        "evaluations": q("SELECT count(*) FROM slo_evaluations"),
        "alerts": q("SELECT count(*) FROM alerts"),
    }


def test_erase_counts_every_kind_of_record_and_keeps_aggregates(loaded: Engine) -> None:
    engine = loaded
    before = _snapshot(engine)
    assert before["counts"] == {"spans": 9, "span_events": 2, "logs": 4, "metric_points": 2,
                                "dead_letters": 1}
    # the address never reached the database, except in the rejected record's raw bytes
    assert engine.store.one(
        "SELECT count(*) FROM spans WHERE list_contains(map_values(attr_str), ?)", [ALICE]) == 0
    dry = engine.erase("user.email", ALICE, dry_run=True)
    expected = {"span_events": 2, "spans": 2, "resources": 0, "logs": 2, "metric_points": 1,
                "dead_letters": 1}
    assert dry.counts == expected and dry.total == 8 and dry.dry_run
    assert _snapshot(engine) == before  # a dry run deletes nothing
    assert engine.store.layout_state() is not None

    done = engine.erase("user.email", ALICE)
    assert done.counts == expected
    after = _snapshot(engine)
    assert after["counts"] == {"spans": 7, "span_events": 0, "logs": 2, "metric_points": 1,
                               "dead_letters": 0}
    # aggregates and lineage are as they were (lineage counts stay as ingested)
    assert {k: v for k, v in after.items() if k != "counts"} == {
        k: v for k, v in before.items() if k != "counts"}
    q = engine.store.rows
    assert q("SELECT span_id FROM spans ORDER BY 1") == [
        (f"{i:016x}",) for i in (2, 3, 4, 6, 7, 8, 10)]
    # another address (its own token) and the bare word "alice" are not the value
    assert [b for (b,) in q("SELECT body FROM logs ORDER BY 1")] == [
        engine.read_options().redactor.token("email", "malice@example.community")
        + " is not alice", "login ok"]
    # the id index named erased rows: it is forgotten until rebuilt
    assert engine.store.layout_state() is None
    # nothing left to erase
    assert engine.erase("user.email", ALICE).total == 0


def test_erase_by_promoted_typed_and_redacted_attributes(loaded: Engine) -> None:
    engine = loaded
    assert engine.erase("correlation.id", "req-77").counts["spans"] == 1
    assert engine.erase("enduser.id", "alice").counts["spans"] == 1  # found by its token
    assert engine.erase("tenant.count", "42").counts["spans"] == 1  # an int attribute
    assert engine.erase("http.route", "/users/alice").counts["spans"] == 1
    # span 4 by its attribute (redacted by the e-mail pattern), span 5 by its status text
    assert engine.erase("customer", ALICE).counts["spans"] == 2
    assert engine.erase("user.email", "bob@example.com").counts == {
        "span_events": 0, "spans": 1, "resources": 0, "logs": 1, "metric_points": 1,
        "dead_letters": 0}
    assert engine.store.rows("SELECT span_id FROM spans ORDER BY 1") == [
        (f"{i:016x}",) for i in (1, 7)]


def test_erase_by_resource_attribute_takes_the_resource_and_its_spans(engine: Engine) -> None:
    """Spans point to their resource (migrations/013): a value in a resource attribute erases
    the resource row and every span of it, and nothing of the other resources."""
    req = trace_request([span(1, 1), span(1, 2)], service="laptop-svc")
    req.resource_spans[0].resource.attributes.append(kv("host.owner", "alice"))
    other = trace_request([span(2, 3)], service="laptop-svc")
    other.resource_spans[0].resource.attributes.append(kv("host.owner", "bob"))
    req.resource_spans.extend(other.resource_spans)
    engine.ingest_bytes(req.SerializeToString(), "traces", "otlp-proto", "10.0.0.1:1")
    q = engine.store.rows
    assert q("SELECT count(*) FROM resources") == [(2,)]
    report = engine.erase("host.owner", "alice")
    assert (report.counts["spans"], report.counts["resources"]) == (2, 1)
    assert q("SELECT span_id FROM spans") == [(f"{3:016x}",)]
    assert q("SELECT attributes['host.owner'] FROM resources") == [("bob",)]
    # service.name lives on the resource row too
    assert engine.erase("service.name", "laptop-svc").counts["resources"] == 1


def test_erase_is_audited_without_the_value(loaded: Engine) -> None:
    engine = loaded
    engine.erase("user.email", ALICE, dry_run=True)
    engine.erase("user.email", ALICE)
    rows = engine.store.rows("SELECT action, object, detail FROM audit_log "
                             "WHERE action LIKE 'erase%' ORDER BY seq")
    assert [(a, o) for a, o, _ in rows] == [("erase.dry_run", "attribute:user.email"),
                                            ("erase", "attribute:user.email")]
    detail = json.loads(rows[1][2])
    assert detail["counts"]["spans"] == 2 and detail["dry_run"] is False
    assert detail["by_batch"] == {"1": {"span_events": 2, "spans": 2, "dead_letters": 1},
                                  "2": {"logs": 2}, "3": {"metric_points": 1}}
    token = engine.read_options().redactor.token("user.email", ALICE)
    assert detail["value_hmac"] == token.split(":")[-1].rstrip("]")
    dump = engine.store.rows("SELECT string_agg(detail, ' ') FROM audit_log")[0][0]
    assert ALICE not in dump and "alice" not in dump
    assert engine.audit_verify().ok


def test_erase_cli(loaded: Engine, db_path: Path) -> None:
    loaded.close()
    p = run_cli("erase", "--attribute", f"user.email={ALICE}", "--dry-run", "--json",
                "--db", str(db_path))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert (out["schema"], out["dry_run"], out["total"]) == ("sloengine.erase/v1", True, 8)
    p = run_cli("erase", "--attribute", f"user.email={ALICE}", "--db", str(db_path))
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == (
        "erased 8 record(s) carrying user.email=<value> from 3 lineage batch(es)")
    assert ALICE not in p.stdout + p.stderr
    p = run_cli("erase", "--attribute", "no-equals-sign", "--db", str(db_path))
    assert p.returncode == 2 and "--attribute: expected KEY=VALUE" in p.stderr


def test_parse_attribute_refuses_empty_parts(engine: Engine) -> None:
    from sloengine.engine_privacy import parse_attribute

    assert parse_attribute("a=b=c") == ("a", "b=c")
    for bad in ("=x", "k=", "k"):
        with pytest.raises(ConfigError):
            parse_attribute(bad)
