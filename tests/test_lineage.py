"""Lineage: ordered hops with layers, datasets and the ingest batch of every record."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from conftest import run_cli
from opentelemetry.proto.trace.v1 import trace_pb2
from otlp_factory import kv, span, trace_request

from sloengine.engine import Engine


def _request(tmp: Path) -> tuple[Path, Path]:
    gw = span(0xA, 1, name="POST /orders", start_ms=0, dur_ms=50,
              attrs={"http.route": "/orders", "correlation.id": "req-7"})
    db = span(0xA, 2, 1, name="INSERT orders", kind=3, start_ms=5, dur_ms=10,
              attrs={"db.system.name": "postgresql", "db.namespace": "orders",
                     "db.collection.name": "orders"})
    prod = span(0xA, 3, 1, name="publish order-events", kind=4, start_ms=20, dur_ms=2,
                attrs={"messaging.system": "kafka",
                       "messaging.destination.name": "order-events"})
    cons = span(0xB, 4, name="process order-events", kind=5, start_ms=100, dur_ms=30,
                attrs={"messaging.system": "kafka",
                       "messaging.destination.name": "order-events"})
    cons.links.append(trace_pb2.Span.Link(trace_id=(0xA).to_bytes(16, "big"),
                                          span_id=(3).to_bytes(8, "big")))
    hook = span(0xB, 5, 4, name="POST", kind=3, start_ms=110, dur_ms=15, status=2,
                attrs={"url.full": "https://partner.example.com/hooks",
                       "http.response.status_code": 503})
    a = trace_request([gw, db, prod], "api-gateway")
    a.resource_spans[0].resource.attributes.append(kv("platform.layer", "gateway"))
    b = trace_request([cons, hook], "webhook-dispatcher")
    b.resource_spans[0].resource.attributes.append(kv("platform.layer", "integration"))
    fa, fb = tmp / "a.traces.pb", tmp / "b.traces.pb"
    fa.write_bytes(a.SerializeToString())
    fb.write_bytes(b.SerializeToString())
    return fa, fb


def test_hops_datasets_and_evidence(tmp_path: Path, engine: Engine) -> None:
    fa, fb = _request(tmp_path)
    engine.ingest([fa, fb])
    # asking by the consumer's span id finds the whole request through the link
    lin = engine.lineage("0000000000000004")
    assert lin.trace_ids == ["0" * 31 + "a", "0" * 31 + "b"]
    assert [(h["layer"], h["operation"], h["datasets"], h["outcome"], h["batch_id"])
            for h in lin.hops] == [
        ("gateway", "POST /orders", [], "ok", 1),
        ("data", "INSERT orders", ["postgresql:orders.orders"], "ok", 1),
        ("queue", "publish order-events", ["kafka:order-events"], "ok", 1),
        ("queue", "process order-events", ["kafka:order-events"], "ok", 2),
        ("integration", "POST", ["https://partner.example.com/hooks"], "error", 2),
    ]
    assert [(b["batch_id"], b["source"], b["sha256"]) for b in lin.batches] == [
        (1, str(fa), hashlib.sha256(fa.read_bytes()).hexdigest()),
        (2, str(fb), hashlib.sha256(fb.read_bytes()).hexdigest()),
    ]
    # the query is in the audit trail
    assert engine.store.rows("SELECT action, object FROM audit_log WHERE action = "
                             "'lineage.query'") == [("lineage.query", "0000000000000004")]


def test_lineage_cli_json(tmp_path: Path) -> None:
    fa, fb = _request(tmp_path)
    db = tmp_path / "l.duckdb"
    assert run_cli("ingest", str(fa), str(fb), "--db", str(db)).returncode == 0
    p = run_cli("lineage", "req-7", "--db", str(db), "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["schema"] == "sloengine.lineage/v1"
    assert out["correlation_ids"] == ["req-7"]
    assert len(out["hops"]) == 5
    p = run_cli("lineage", "nope", "--db", str(db))
    assert p.returncode == 2
    assert "no span or log record has trace id, span id or correlation id 'nope'" in p.stderr
