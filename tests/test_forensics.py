"""Request reconstruction over traces of known shape, built as real OTLP protobuf messages
and ingested like any file: the tree (parent and link edges), self time, critical path,
error origin, orphan and skew flags, lookups, logs, the JSON contract, the waterfall, HTML,
compare and exemplars."""

from __future__ import annotations

import json
import os
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1 import logs_pb2
from otlp_factory import T0, kv, span, trace_request

from sloengine.compute.exemplars import bad_event_filter
from sloengine.engine import Engine
from sloengine.forensics import (
    TraceNotFound,
    TraceOptions,
    compare,
    exemplars,
    reconstruct,
    render_comparison,
    render_tree,
    story_json,
)
from sloengine.forensics.story import Story
from sloengine.spec.model import SLO

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "trace-queue-story.json"
TEMPLATES = ROOT / "sloengine" / "report" / "templates"
MS = 1_000_000

# trace ids and span ids of the synthetic requests
A, B, C = 0xA1, 0xB1, 0xC1


def h(n: int, size: int = 8) -> str:
    return n.to_bytes(size, "big").hex()


def _svc_request(groups: dict[str, list[Any]]) -> Any:
    req = trace_request([], "unused")
    del req.resource_spans[:]
    for service, spans in groups.items():
        req.resource_spans.extend(trace_request(spans, service).resource_spans)
    return req


def _log(trace: int | None, span_id: int | None, at_ms: int, body: str, sev: int = 9,
         corr: str | None = None) -> logs_pb2.LogRecord:
    rec = logs_pb2.LogRecord(time_unix_nano=T0 + at_ms * MS,
                             severity_text={9: "INFO", 13: "WARN", 17: "ERROR"}[sev],
                             body=AnyValue(string_value=body))
    rec.severity_number = sev  # type: ignore[assignment]
    if trace is not None:
        rec.trace_id = trace.to_bytes(16, "big")
    if span_id is not None:
        rec.span_id = span_id.to_bytes(8, "big")
    if corr is not None:
        rec.attributes.append(kv("correlation.id", corr))
    return rec


def _logs_request(service: str, records: list[logs_pb2.LogRecord]) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.append(kv("service.name", service))
    rl.scope_logs.add().log_records.extend(records)
    return req


def queue_story_files(tmp: Path) -> list[Path]:
    """Request 1 (correlation ``req-1``) crosses a queue: trace A (gateway → orders → db,
    payments, producer) and trace B (consumer linked to A's producer → failing webhook).
    Request 2 (``req-2``, trace C) fails deep in the data layer, has a skewed child and an
    orphan whose parent was lost."""
    corr1 = {"correlation.id": "req-1"}
    gw = span(A, 0x11, name="POST /orders", kind=2, start_ms=0, dur_ms=100, attrs={
        **corr1, "http.route": "/orders", "http.request.method": "POST",
        "http.response.status_code": 201})
    orders = span(A, 0x12, 0x11, name="POST /orders", kind=2, start_ms=5, dur_ms=90,
                  attrs={**corr1, "http.route": "/orders", "http.request.method": "POST",
                         "http.response.status_code": 201})
    db = span(A, 0x13, 0x12, name="SELECT stock", kind=3, start_ms=10, dur_ms=30,
              attrs={"db.system.name": "postgresql", "db.operation.name": "SELECT"})
    pay = span(A, 0x14, 0x12, name="POST", kind=3, start_ms=30, dur_ms=50,
               attrs={"http.request.method": "POST", "http.response.status_code": 200})
    prod = span(A, 0x15, 0x12, name="publish order-events", kind=4, start_ms=85, dur_ms=3,
                attrs={"messaging.system": "kafka", "messaging.destination.name": "order-events"})
    cons = span(B, 0x21, name="process order-events", kind=5, start_ms=150, dur_ms=100,
                attrs={"messaging.system": "kafka",
                       "messaging.destination.name": "order-events"})
    link = cons.links.add()
    link.trace_id = A.to_bytes(16, "big")
    link.span_id = (0x15).to_bytes(8, "big")
    hook = span(B, 0x22, 0x21, name="POST", kind=3, start_ms=160, dur_ms=80, status=2,
                attrs={"http.request.method": "POST", "http.response.status_code": 500})
    corr2 = {"correlation.id": "req-2"}
    c_gw = span(C, 0x31, name="GET /orders/{id}", kind=2, start_ms=1000, dur_ms=60, status=2,
                attrs={**corr2, "http.route": "/orders/{id}", "http.request.method": "GET",
                       "http.response.status_code": 500})
    c_orders = span(C, 0x32, 0x31, name="GET /orders/{id}", kind=2, start_ms=1002, dur_ms=56,
                    status=2, attrs={**corr2, "http.response.status_code": 500})
    c_inv = span(C, 0x33, 0x32, name="inventory.Inventory/Lookup", kind=3, start_ms=1004,
                 dur_ms=16, attrs={"rpc.system": "grpc"})
    c_inv_srv = span(C, 0x34, 0x33, name="inventory.Inventory/Lookup", kind=2,
                     start_ms=1001, dur_ms=8, attrs={"rpc.system": "grpc"})  # 3 ms early
    c_repo = span(C, 0x35, 0x32, name="load order", kind=1, start_ms=1016, dur_ms=40, status=2)
    c_db = span(C, 0x36, 0x35, name="SELECT orders", kind=3, start_ms=1018, dur_ms=36,
                status=2, attrs={"db.system.name": "postgresql"})
    c_db.status.message = "deadlock detected"
    c_orphan = span(C, 0x37, 0x99, name="cache warm", kind=1, start_ms=1020, dur_ms=10)
    traces = tmp / "traces.binpb"
    traces.write_bytes(_svc_request({
        "api-gateway": [gw, c_gw], "orders-service": [orders, db, pay, prod, c_orders, c_inv,
                                                      c_repo, c_db],
        "fulfillment-worker": [cons], "webhook-dispatcher": [hook],
        "inventory-service": [c_inv_srv], "cache-service": [c_orphan],
    }).SerializeToString())
    logs = tmp / "service-logs.binpb"
    req = _logs_request("orders-service", [
        _log(A, 0x12, 20, "order accepted", corr="req-1"),
        _log(C, 0x36, 1054, "SELECT orders failed: deadlock detected <b>", 17, "req-2"),
        _log(C, 0x32, 1057, "GET /orders/{id} failed", 17, "req-2"),
        _log(C, None, 1040, "retrying order load", 13, "req-2"),
        _log(C, None, 31_000, "cache rebuilt", 9, "req-2"),  # outside the ±5 s window
    ])
    req.resource_logs.extend(_logs_request("webhook-dispatcher", [
        _log(B, 0x22, 240, "partner answered 500", 17)]).resource_logs)
    logs.write_bytes(req.SerializeToString())
    access = tmp / "gateway-access.jsonl"
    access.write_text(json.dumps({
        "ts": "2025-11-24T16:00:00.000Z", "method": "POST", "route": "/orders",
        "path": "/orders", "status": 201, "latency_ms": 100.0, "trace_id": h(A, 16),
        "span_id": h(0x11), "request_id": "req-1", "service": "api-gateway"}) + "\n")
    return [traces, logs, access]


@pytest.fixture
def stories(engine: Engine, tmp_path: Path) -> Engine:
    results = engine.ingest(queue_story_files(tmp_path))
    assert all(r.counts.rejected == 0 for r in results)
    return engine


def shape(story: Story) -> tuple[Any, ...]:
    """The tree as nested tuples: (span id, edge, markers, (children...))."""
    j = story_json(story)
    kids: dict[Any, list[dict[str, Any]]] = {}
    for s in j["spans"]:
        p = s["tree_parent"]
        kids.setdefault(None if p is None else (p["trace_id"], p["span_id"]), []).append(s)

    def node(s: dict[str, Any]) -> tuple[Any, ...]:
        return (s["span_id"], s["edge"], tuple(s["markers"]),
                tuple(node(c) for c in kids.get((s["trace_id"], s["span_id"]), [])))

    return tuple(node(s) for s in kids[None])


def test_queue_story_tree_links_both_directions(stories: Engine) -> None:
    story = reconstruct(stories.store, "req-1")
    assert story.trace_ids == [h(A, 16), h(B, 16)]
    assert shape(story) == (
        (h(0x11), "root", ("critical",), (
            (h(0x12), "parent", ("critical",), (
                (h(0x13), "parent", (), ()),
                (h(0x14), "parent", ("critical",), ()),
                (h(0x15), "parent", ("critical",), (
                    (h(0x21), "link", ("link",), (
                        (h(0x22), "parent", ("error", "origin"), ()),
                    )),
                )),
            )),
        )),
    )
    # parallel children: db (10–40 ms) overlaps payments (30–80 ms), so only payments and
    # the producer decided the latency; the consumer behind the link is async
    assert [k[1] for k in story.critical_path] == [h(0x11), h(0x12), h(0x14), h(0x15)]
    j = story_json(story)
    sections = [(s["span_id"], s["offset_ns"] // MS, s["duration_ns"] // MS)
                for s in j["critical_sections"]]
    assert sections == [(h(0x11), 0, 5), (h(0x12), 5, 25), (h(0x14), 30, 50),
                        (h(0x12), 80, 5), (h(0x15), 85, 3), (h(0x12), 88, 7),
                        (h(0x11), 95, 5)]
    self_ms = {s["span_id"]: s["self_ns"] / MS for s in j["spans"]}
    assert self_ms == {h(0x11): 10, h(0x12): 17, h(0x13): 30, h(0x14): 50, h(0x15): 3,
                       h(0x21): 20, h(0x22): 80}
    # the webhook failed, but asynchronously: it is the origin, not what the caller saw
    assert story.error_origin is not None
    assert story.error_origin.key == (h(B, 16), h(0x22))
    assert story.error_origin.propagated_to_root is False
    assert story.complete and story.warnings == []


def test_lookups_by_trace_span_and_correlation_tell_the_same_story(stories: Engine) -> None:
    by = {ident: story_json(reconstruct(stories.store, ident))
          for ident in ("req-1", h(A, 16), h(B, 16).upper(), h(0x22), h(0x15))}
    assert {k: v["query"]["matched_as"] for k, v in by.items()} == {
        "req-1": ["correlation_id"], h(A, 16): ["trace_id"], h(B, 16).upper(): ["trace_id"],
        h(0x22): ["span_id"], h(0x15): ["span_id"]}
    bodies = [{k: v for k, v in j.items() if k != "query"} for j in by.values()]
    assert all(b == bodies[0] for b in bodies[1:])
    with pytest.raises(TraceNotFound):
        reconstruct(stories.store, "no-such-request")


def test_logs_are_attached_to_their_spans(stories: Engine) -> None:
    j = story_json(reconstruct(stories.store, "req-1"))
    by_span = {s["span_id"]: [j["logs"][i]["body"] for i in s["logs"]] for s in j["spans"]}
    assert by_span[h(0x12)] == ["order accepted"]
    assert by_span[h(0x22)] == ["partner answered 500"]
    [access] = [j["logs"][i] for i in next(s for s in j["spans"]
                                             if s["span_id"] == h(0x11))["logs"]]
    assert access["source_kind"] == "accesslog" and access["correlation_id"] == "req-1"
    assert all(lg["attached"] for lg in j["logs"])


def test_failing_dependency_orphan_and_skew(stories: Engine) -> None:
    story = reconstruct(stories.store, "req-2")
    assert shape(story) == (
        (h(0x31), "root", ("error", "critical"), (
            (h(0x32), "parent", ("error", "critical"), (
                (h(0x33), "parent", (), (
                    (h(0x34), "parent", ("skew",), ()),
                )),
                (h(0x35), "parent", ("error", "critical"), (
                    (h(0x36), "parent", ("error", "critical", "origin"), ()),
                )),
            )),
        )),
        (h(0x99), "root", ("synthetic",), (
            (h(0x37), "orphan", ("orphan",), ()),
        )),
    )
    assert [k[1] for k in story.critical_path] == [h(0x31), h(0x32), h(0x35), h(0x36)]
    eo = story.error_origin
    assert eo is not None and eo.key == (h(C, 16), h(0x36)) and eo.propagated_to_root
    assert [lg.body for lg in eo.logs] == [
        "retrying order load", "SELECT orders failed: deadlock detected <b>",
        "GET /orders/{id} failed"]  # not the line 30 s later
    assert "cache rebuilt" in [lg.body for lg in story.logs]
    j = story_json(story)
    skewed = next(s for s in j["spans"] if s["span_id"] == h(0x34))
    assert skewed["skew"] == {"start_before_parent_ns": 3 * MS, "end_after_parent_ns": 0,
                              "estimated_offset_ns": -7 * MS, "applied_shift_ns": 0}
    assert skewed["offset_ns"] == 1 * MS  # flagged, not moved
    assert not j["complete"] and j["counts"]["orphans"] == 1
    assert j["warnings"] == [
        f"trace may be incomplete: 1 span(s) of trace {h(C, 16)} point at parent {h(0x99)}, "
        "which was never received",
        f"clock skew: inventory-service span {h(0x34)} (inventory.Inventory/Lookup) starts "
        f"3.0 ms before its parent {h(0x33)} on orders-service; its clock looks 7.0 ms behind",
    ]


def test_adjust_skew_shifts_and_says_by_how_much(stories: Engine) -> None:
    story = reconstruct(stories.store, "req-2", TraceOptions(adjust_skew=True))
    n = story.spans[(h(C, 16), h(0x34))]
    assert n.skew is not None and n.skew.applied_shift_ns == 7 * MS
    assert (n.start - story.start, n.end - story.start) == (8 * MS, 16 * MS)
    assert story.warnings[-1].endswith("shifted by 7.0 ms (adjust_skew)")
    assert story_json(story)["adjust_skew"] is True


def test_json_contract_golden(stories: Engine) -> None:
    out = json.loads(orjson.dumps(story_json(reconstruct(stories.store, "req-1"))))
    assert out["schema"] == "sloengine.trace/v1"
    if os.environ.get("SLOENGINE_UPDATE_GOLDEN") == "1":  # regenerate, review, commit
        GOLDEN.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    assert out == json.loads(GOLDEN.read_text())


def test_tree_waterfall_text(stories: Engine) -> None:
    text = render_tree(reconstruct(stories.store, "req-2"))
    lines = text.splitlines()
    assert lines[0].startswith("request req-2 (matched as correlation_id): 1 trace(s), "
                               "7 span(s), 4 log line(s), 60.0 ms")
    row = next(ln for ln in lines if "SELECT orders" in ln and "|" in ln)
    assert row.startswith("!*#") and "36.0 ms" in row and "deadlock detected" in row
    assert any(ln.startswith("~") and "clock behind 7.0 ms" in ln for ln in lines)
    assert any("(missing span) " + h(0x99) in ln and ln.startswith("?") for ln in lines)
    assert any(ln.strip().startswith("· ") and "ERROR" in ln and "deadlock" in ln
               for ln in lines)
    assert f"error origin: orders-service: SELECT orders [client] span {h(0x36)}" in text
    assert "critical path (4 spans)" in text


class _WellFormed(HTMLParser):
    VOID = frozenset({"meta", "br", "col", "img", "hr", "input", "link"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.classes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.classes.extend((v or "") for k, v in attrs if k == "class")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.classes.extend((v or "") for k, v in attrs if k == "class")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.problems.append(f"unexpected </{tag}>")


def render_html(story_dict: dict[str, Any]) -> str:
    """With the settings of report/render.py ``environment(True)``, which the report's
    ``render_trace_html`` uses (frontdoor_snippets.md): the v1 dict in, autoescaped."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             undefined=jinja2.StrictUndefined,
                             autoescape=jinja2.select_autoescape(["html.j2"]),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    return env.get_template("trace.html.j2").render(t=story_dict)


def test_html_page_is_well_formed_and_self_contained(stories: Engine) -> None:
    for ident in ("req-1", "req-2"):
        j = story_json(reconstruct(stories.store, ident))
        page = render_html(j)
        p = _WellFormed()
        p.feed(page)
        p.close()
        assert p.problems == [] and p.stack == []
        assert "<script" not in page.lower() and "http://" not in page
        for s in j["spans"]:
            assert f'id="span-{s["trace_id"]}-{s["span_id"]}"' in page
        crit = [c for c in p.classes if c.startswith("span") and "critical" in c.split()]
        assert len(crit) == len(j["critical_path"])
    assert "deadlock detected &lt;b&gt;" in page  # log bodies are escaped, shown inline
    assert "trace may be incomplete" in page


def test_compare_two_requests(stories: Engine) -> None:
    a = reconstruct(stories.store, "req-1")
    b = reconstruct(stories.store, "req-2")
    c = compare(a, b)
    assert c["schema"] == "sloengine.compare/v1" and c["same_route"] is False
    assert c["a"]["route"] == "POST /orders" and c["b"]["route"] == "GET /orders/{id}"
    assert c["only_in_a"][0]["path"] == "api-gateway:POST /orders#0"
    assert render_comparison(c).startswith("A req-1: POST /orders 100.0 ms, 7 spans")
    same = compare(a, reconstruct(stories.store, h(B, 16)))
    assert same["only_in_a"] == same["only_in_b"] == same["error_diffs"] == []
    assert all(d["delta_ns"] == 0 for d in same["duration_diffs"])


def test_compare_matches_by_position_path(stories: Engine) -> None:
    story = reconstruct(stories.store, "req-1")
    from sloengine.forensics.compare import position_paths

    assert list(position_paths(story)) == [
        "api-gateway:POST /orders#0",
        "api-gateway:POST /orders#0/orders-service:POST /orders#0",
        "api-gateway:POST /orders#0/orders-service:POST /orders#0/orders-service:SELECT stock#0",
        "api-gateway:POST /orders#0/orders-service:POST /orders#0/orders-service:POST#0",
        "api-gateway:POST /orders#0/orders-service:POST /orders#0/"
        "orders-service:publish order-events#0",
        "api-gateway:POST /orders#0/orders-service:POST /orders#0/"
        "orders-service:publish order-events#0/~fulfillment-worker:process order-events#0",
        "api-gateway:POST /orders#0/orders-service:POST /orders#0/"
        "orders-service:publish order-events#0/~fulfillment-worker:process order-events#0/"
        "webhook-dispatcher:POST#0",
    ]


def _slo(indicator: dict[str, Any]) -> SLO:
    return SLO.model_validate({
        "apiVersion": "sloengine/v1", "kind": "SLO",
        "metadata": {"name": "t", "service": "x"},
        "spec": {"indicator": indicator, "objectives": [{"target": 0.99}],
                 "window": {"rolling": "30d"}}})


def test_exemplars_of_bad_events(stories: Engine) -> None:
    lo, hi = T0, T0 + 60_000 * MS
    avail = _slo({"kind": "ratio", "total": {"source": "spans", "where": {"kind": "SERVER"}},
                  "good": {"error": False}})
    table, where, params = bad_event_filter(avail)
    ex = exemplars(stories.store, table, where, params, t_from_ns=lo, t_to_ns=hi)
    assert [(e.span_id, e.route, e.status, e.correlation_id) for e in ex] == [
        (h(0x31), "GET /orders/{id}", "500", "req-2"),
        (h(0x32), "GET /orders/{id}", "500", "req-2")]
    slow = _slo({"kind": "latency", "threshold": "50ms",
                 "total": {"source": "spans", "where": {}}})
    table, where, params = bad_event_filter(slow)
    worst = exemplars(stories.store, table, where, params, t_from_ns=lo, t_to_ns=hi, limit=3)
    assert [e.span_id for e in worst] == [h(0x22), h(0x31), h(0x32)]  # failed, slowest
    newest = exemplars(stories.store, table, where, params, t_from_ns=lo, t_to_ns=hi,
                       limit=2, order="newest")
    assert [e.span_id for e in newest] == [h(0x31), h(0x32)]
    only_err = exemplars(stories.store, table, where, params, t_from_ns=lo, t_to_ns=hi,
                         errors_only=True)
    assert {e.span_id for e in only_err} == {h(0x22), h(0x31), h(0x32)}
    logs_slo = _slo({"kind": "ratio",
                     "total": {"source": "logs", "where": {"source_kind": "accesslog"}},
                     "bad": {"status_code": {"gte": 500}}})
    table, where, params = bad_event_filter(logs_slo)
    assert table == "logs"
    assert exemplars(stories.store, table, where, params, t_from_ns=lo, t_to_ns=hi) == []


def test_truncated_closure_says_so(stories: Engine) -> None:
    story = reconstruct(stories.store, h(0x11), TraceOptions(max_traces=1))
    assert story.truncated and not story.complete and story.trace_ids == [h(A, 16)]
    assert story.warnings[0].startswith("story truncated at 1 traces")
    assert all(n.edge != "link" for n in story.spans.values())


def test_parent_cycle_is_cut_and_reported(engine: Engine, tmp_path: Path) -> None:
    f = tmp_path / "cycle-traces.binpb"
    f.write_bytes(trace_request([span(0xD1, 0x41, 0x42, start_ms=0, dur_ms=10),
                                 span(0xD1, 0x42, 0x41, start_ms=1, dur_ms=5),
                                 span(0xD1, 0x43, 0x43, start_ms=2, dur_ms=1)]
                                ).SerializeToString())
    engine.ingest([f])
    story = reconstruct(engine.store, h(0xD1, 16))
    assert shape(story) == ((h(0x41), "root", ("critical",), (
        (h(0x42), "parent", ("critical",), ()),)),
        (h(0x43), "root", (), ()))
    assert len(story.warnings) == 2 and "parent ids form a cycle" in story.warnings[0]
