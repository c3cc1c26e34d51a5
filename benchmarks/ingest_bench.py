"""Ingest benchmark: OTLP decode floor vs ``sloengine ingest`` end to end, and memory per batch.

One command (``python benchmarks/ingest_bench.py``) does everything in one run:

1. generates (deterministically, cached under ``benchmarks/out/``) a realistic OTLP
   ExportTraceServiceRequest of ``--spans`` spans (default 1,000,000) as protobuf;
2. measures the *decode floor* in a fresh process: ``ParseFromString`` plus an independent tight
   loop that pulls every field sloengine stores into Python (no Arrow, no database);
3. runs ``sloengine ingest FILE --db fresh.duckdb --json`` as a subprocess (wall time, spans/s,
   peak RSS) and checks that the spans table holds exactly the generated spans;
4. generates OTLP JSON Lines files (Collector file-exporter style, ~500 spans per line) of N and
   10×N spans, ingests each in its own subprocess and compares their peak RSS;
5. prints a table with ``e2e / floor`` (PASS at >= 0.8) and writes ``result.json``.

See benchmarks/README.md for how to read the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TARGET_RATIO = 0.8
SPANS_PER_REQUEST = 500  # like the Collector's batch processor / file exporter lines
GENERATOR_VERSION = 1  # bump when the generated data changes (invalidates the cache)

# --------------------------------------------------------------------------------------
# Synthetic telemetry: plain Python span records, emitted as protobuf or as OTLP/JSON.
# --------------------------------------------------------------------------------------

BASE_NS = 1_735_689_600_000_000_000  # 2025-01-01T00:00:00Z
TRACE_GAP_NS = 9_000_000  # a new trace every 9 ms → ~100k traces spread over ~15 min

SERVICES = {
    # name: (language, scope name, scope version, pods)
    "frontend": ("nodejs", "@opentelemetry/instrumentation-http", "0.57.1", 3),
    "checkout": ("go", "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
                 "0.59.0", 2),
    "payment": ("java", "io.opentelemetry.grpc-1.6", "2.12.0-alpha", 2),
    "cart": ("dotnet", "OpenTelemetry.Instrumentation.AspNetCore", "1.10.1", 2),
    "catalog": ("python", "opentelemetry.instrumentation.flask", "0.50b0", 2),
    "inventory": ("java", "io.opentelemetry.spring-webmvc-6.0", "2.12.0-alpha", 2),
    "shipping": ("rust", "opentelemetry-http", "0.27.0", 1),
    "notifier": ("python", "opentelemetry.instrumentation.kafka", "0.50b0", 1),
}
DB_SCOPES = {
    "java": ("io.opentelemetry.jdbc", "2.12.0-alpha"),
    "python": ("opentelemetry.instrumentation.sqlalchemy", "0.50b0"),
    "go": ("github.com/XSAM/otelsql", "0.36.0"),
    "dotnet": ("OpenTelemetry.Instrumentation.SqlClient", "1.10.0-beta.1"),
    "nodejs": ("@opentelemetry/instrumentation-pg", "0.50.0"),
    "rust": ("sqlx", "0.8.3"),
}
ROUTES = {
    "frontend": ["/", "/api/products", "/api/products/{id}", "/api/cart", "/api/checkout",
                 "/api/recommendations", "/login", "/static/{path}"],
    "checkout": ["/checkout", "/checkout/{orderId}", "/checkout/quote"],
    "cart": ["/cart/{userId}", "/cart/{userId}/items", "/cart/{userId}/items/{itemId}"],
    "catalog": ["/products", "/products/{id}", "/products/search", "/categories"],
    "inventory": ["/stock/{sku}", "/stock/reserve", "/stock/release"],
    "shipping": ["/quote", "/ship", "/track/{id}"],
}
GRPC_METHODS = ["Charge", "Refund", "Authorize", "Capture"]
TABLES = ["orders", "order_items", "products", "stock", "carts", "users", "shipments"]
DB_OPS = ["SELECT", "SELECT", "SELECT", "INSERT", "UPDATE", "DELETE"]
USER_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
]

# A span record: (trace_id, span_id, parent_id, name, kind, start, end, status_code,
#                 status_message, attributes, events, links, scope index, trace_state)
Attr = tuple[str, Any]
Span = tuple[bytes, bytes, bytes, str, int, int, int, int, str, list[Attr],
             list[tuple[int, str, list[Attr]]], list[tuple[bytes, bytes, str, list[Attr]]], int,
             str]

SERVER, CLIENT, INTERNAL, PRODUCER, CONSUMER = 2, 3, 1, 4, 5


def _resources() -> list[tuple[str, list[Attr], list[tuple[str, str]]]]:
    """(service, resource attributes, scopes) per pod."""
    out = []
    for si, (svc, (lang, scope, version, pods)) in enumerate(SERVICES.items()):
        db_scope = DB_SCOPES[lang]
        for pod in range(pods):
            attrs: list[Attr] = [
                ("service.name", svc),
                ("service.namespace", "shop"),
                ("service.version", f"1.{si + 3}.{pod}"),
                ("service.instance.id", f"{svc}-{pod:02d}-7f9c{si}{pod}"),
                ("deployment.environment.name", "production"),
                ("host.name", f"node-{(si * 3 + pod) % 7:02d}.eu-west-1.compute.internal"),
                ("k8s.namespace.name", "shop"),
                ("k8s.pod.name", f"{svc}-5d8f7b{si}c{pod}-x{pod}z{si}q"),
                ("cloud.region", "eu-west-1"),
                ("telemetry.sdk.name", "opentelemetry"),
                ("telemetry.sdk.language", lang),
                ("telemetry.sdk.version", "1.29.0"),
            ]
            out.append((svc, attrs, [(scope, version), db_scope, ("manual", "")]))
    return out


class Generator:
    """Deterministic traces: a browser request to the frontend fans out over HTTP, gRPC,
    databases and a Kafka topic (the consumer runs in its own trace, linked to the producer)."""

    def __init__(self, seed: int = 42) -> None:
        self.rng = random.Random(seed)
        self.resources = _resources()
        self.pods: dict[str, list[int]] = {}
        for i, (svc, _, _) in enumerate(self.resources):
            self.pods.setdefault(svc, []).append(i)
        self.trace_no = 0

    # ids -----------------------------------------------------------------------------
    def _tid(self) -> bytes:
        return (self.rng.getrandbits(128) | 1).to_bytes(16, "big")

    def _sid(self) -> bytes:
        return (self.rng.getrandbits(64) | 1).to_bytes(8, "big")

    def _pod(self, svc: str) -> int:
        return self.rng.choice(self.pods[svc])

    # spans -----------------------------------------------------------------------------
    def traces(self) -> Iterator[list[tuple[int, Span]]]:
        """Endless traces; each is a list of (resource index, span)."""
        while True:
            yield self._trace()

    def _trace(self) -> list[tuple[int, Span]]:
        rng = self.rng
        self.trace_no += 1
        t0 = BASE_NS + self.trace_no * TRACE_GAP_NS + rng.randrange(1_000_000)
        tid = self._tid()
        corr = f"req-{rng.getrandbits(48):012x}"
        out: list[tuple[int, Span]] = []
        route = rng.choice(ROUTES["frontend"])
        fail = rng.random() < 0.03
        total = rng.randrange(8_000_000, 250_000_000)
        root = self._sid()
        status_code = 500 if fail else rng.choice((200, 200, 200, 200, 201, 204, 304, 404))
        attrs = self._http_server_attrs("frontend", route, status_code, corr)
        if rng.random() < 0.01:
            attrs.append(("enduser.id", f"user{rng.randrange(10**6)}@example.com"))
        out.append((self._pod("frontend"), self._span(
            tid, root, b"", f"GET {route}", SERVER, t0, t0 + total,
            2 if fail else 0, "", attrs, self._exception(t0 + total) if fail else [], [], 0)))
        # downstream services called by the frontend
        t = t0 + 500_000
        for svc in rng.sample(["checkout", "cart", "catalog", "inventory", "shipping"],
                              rng.randrange(1, 4)):
            dur = rng.randrange(1_000_000, max(2_000_000, total // 3))
            sub_route = rng.choice(ROUTES[svc])
            code = 503 if fail and rng.random() < 0.5 else 200
            client = self._sid()
            out.append((self._pod("frontend"), self._span(
                tid, client, root, "GET", CLIENT, t, t + dur, 2 if code >= 500 else 0, "",
                self._http_client_attrs(svc, sub_route, code, corr), [], [], 0)))
            server = self._sid()
            s0, s1 = t + 200_000, t + dur - 200_000
            out.append((self._pod(svc), self._span(
                tid, server, client, f"GET {sub_route}", SERVER, s0, s1, 0, "",
                self._http_server_attrs(svc, sub_route, code, corr), [], [], 0)))
            for _ in range(rng.randrange(1, 4)):
                d0 = s0 + rng.randrange(max(1, (s1 - s0) // 2))
                out.append((self._pod(svc), self._span(
                    tid, self._sid(), server, "", CLIENT, d0,
                    d0 + rng.randrange(200_000, 5_000_000), 0, "",
                    self._db_attrs(svc, corr), [], [], 1)))
            if rng.random() < 0.5:
                i0 = s0 + 100_000
                evs = ([(i0 + 1000, "cache.miss", [("cache.key", f"{svc}:{rng.randrange(999)}")])]
                       if rng.random() < 0.2 else [])
                out.append((self._pod(svc), self._span(
                    tid, self._sid(), server, f"{svc}.handle", INTERNAL, i0,
                    i0 + rng.randrange(50_000, 900_000), 0, "", self._internal_attrs(svc, corr),
                    evs, [], 2)))
            if svc == "checkout":
                out.extend(self._payment(tid, server, s0 + 300_000, corr, fail))
                out.extend(self._kafka(tid, server, s1 - 150_000, corr))
            t += dur + 100_000
        return out

    def _span(self, tid: bytes, sid: bytes, parent: bytes, name: str, kind: int, start: int,
              end: int, code: int, message: str, attrs: list[Attr],
              events: list[tuple[int, str, list[Attr]]],
              links: list[tuple[bytes, bytes, str, list[Attr]]], scope: int) -> Span:
        state = "rojo=00f067aa0ba902b7" if self.rng.random() < 0.05 else ""
        return (tid, sid, parent, name, kind, start, end, code, message, attrs, events, links,
                scope, state)

    def _http_server_attrs(self, svc: str, route: str, code: int, corr: str) -> list[Attr]:
        rng = self.rng
        path = route.replace("{id}", str(rng.randrange(10_000)))
        path = path.replace("{userId}", f"u{rng.randrange(50_000)}")
        path = path.replace("{orderId}", f"o{rng.randrange(10**6)}")
        path = path.replace("{itemId}", str(rng.randrange(500)))
        path = path.replace("{sku}", f"SKU-{rng.randrange(90_000)}").replace("{path}", "app.js")
        if rng.random() < 0.1:  # older instrumentation: pre-1.26 attribute names
            attrs: list[Attr] = [("http.method", "GET"), ("http.route", route),
                                 ("http.status_code", code), ("http.target", path)]
        else:
            attrs = [("http.request.method", "GET"), ("http.route", route),
                     ("http.response.status_code", code), ("url.path", path)]
        attrs += [
            ("url.scheme", "https"),
            ("server.address", f"{svc}.shop.svc"),
            ("network.protocol.version", "1.1"),
            ("client.address", f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(256)}"),
            ("user_agent.original", rng.choice(USER_AGENTS)),
            ("correlation.id", corr),
        ]
        if rng.random() < 0.1:
            attrs.append(("http.request.header.accept", ["application/json", "text/plain"]))
        if rng.random() < 0.001:
            attrs.append(("url.query", f"email=someone{rng.randrange(999)}@example.org"))
        return attrs

    def _http_client_attrs(self, svc: str, route: str, code: int, corr: str) -> list[Attr]:
        rng = self.rng
        return [
            ("http.request.method", "GET"),
            ("url.full", f"http://{svc}.shop.svc:8080{route}"),
            ("server.address", f"{svc}.shop.svc"),
            ("server.port", 8080),
            ("http.response.status_code", code),
            ("network.protocol.version", "1.1"),
            ("http.request.resend_count", 0 if rng.random() < 0.98 else 1),
            ("correlation.id", corr),
        ]

    def _db_attrs(self, svc: str, corr: str) -> list[Attr]:
        rng = self.rng
        op, table = rng.choice(DB_OPS), rng.choice(TABLES)
        if rng.random() < 0.15:  # older names
            return [("db.system", "postgresql"), ("db.name", f"{svc}_db"),
                    ("db.sql.table", table), ("db.operation", op),
                    ("db.statement", f"{op} * FROM {table} WHERE id = $1"),
                    ("net.peer.name", "pg.shop.svc"), ("net.peer.port", 5432),
                    ("correlation.id", corr)]
        return [
            ("db.system.name", "postgresql"),
            ("db.namespace", f"{svc}_db"),
            ("db.collection.name", table),
            ("db.operation.name", op),
            ("db.query.text", f"{op} * FROM {table} WHERE id = $1"),
            ("server.address", "pg.shop.svc"),
            ("server.port", 5432),
            ("db.response.returned_rows", rng.randrange(0, 200)),
            ("correlation.id", corr),
        ]

    def _internal_attrs(self, svc: str, corr: str) -> list[Attr]:
        rng = self.rng
        return [
            ("code.function.name", f"{svc}.service.handle"),
            ("code.file.path", f"/app/{svc}/service.py"),
            ("code.line.number", rng.randrange(20, 900)),
            ("thread.name", f"worker-{rng.randrange(16)}"),
            ("app.cache.hit", rng.random() < 0.7),
            ("app.items", rng.randrange(0, 40)),
            ("app.score", round(rng.random(), 4)),
            ("correlation.id", corr),
        ]

    def _payment(self, tid: bytes, parent: bytes, t: int, corr: str,
                 fail: bool) -> list[tuple[int, Span]]:
        rng = self.rng
        method = rng.choice(GRPC_METHODS)
        code = 14 if fail and rng.random() < 0.5 else 0
        dur = rng.randrange(2_000_000, 40_000_000)
        client, server = self._sid(), self._sid()
        common: list[Attr] = [("rpc.system", "grpc"), ("rpc.service", "shop.PaymentService"),
                              ("rpc.method", method), ("rpc.grpc.status_code", code)]
        return [
            (self._pod("checkout"), self._span(
                tid, client, parent, f"shop.PaymentService/{method}", CLIENT, t, t + dur,
                0, "", [*common, ("server.address", "payment.shop.svc"), ("server.port", 50051),
                            ("network.transport", "tcp"), ("correlation.id", corr)], [], [], 0)),
            (self._pod("payment"), self._span(
                tid, server, client, f"shop.PaymentService/{method}", SERVER, t + 300_000,
                t + dur - 300_000, 2 if code else 0, "connection refused" if code else "",
                [*common, ("network.peer.address", f"10.1.{rng.randrange(256)}.7"),
                 ("network.peer.port", rng.randrange(30000, 60000)),
                 ("app.payment.currency", rng.choice(("EUR", "USD", "GBP"))),
                 ("app.payment.amount", round(rng.uniform(1, 500), 2)),
                 ("correlation.id", corr)],
                self._exception(t + dur - 400_000) if code else [], [], 0)),
        ]

    def _kafka(self, tid: bytes, parent: bytes, t: int, corr: str) -> list[tuple[int, Span]]:
        rng = self.rng
        producer = self._sid()
        msg_id = f"{rng.getrandbits(64):016x}"
        common: list[Attr] = [("messaging.system", "kafka"),
                              ("messaging.destination.name", "orders"),
                              ("messaging.message.id", msg_id),
                              ("messaging.kafka.message.key", f"o{rng.randrange(10**6)}"),
                              ("server.address", "kafka.shop.svc"),
                              ("correlation.id", corr)]
        c_tid, c0 = self._tid(), t + rng.randrange(1_000_000, 20_000_000)
        return [
            (self._pod("checkout"), self._span(
                tid, producer, parent, "send orders", PRODUCER, t, t + 120_000, 0, "",
                [*common, ("messaging.operation.type", "send"),
                 ("messaging.message.body.size", rng.randrange(200, 4000))], [], [], 0)),
            (self._pod("notifier"), self._span(
                c_tid, self._sid(), b"", "process orders", CONSUMER, c0,
                c0 + rng.randrange(500_000, 9_000_000), 0, "",
                [*common, ("messaging.operation.type", "process"),
                 ("messaging.consumer.group.name", "notifier"),
                 ("messaging.kafka.offset", rng.randrange(10**7))], [],
                [(tid, producer, "", [("messaging.operation.type", "send")])], 0)),
        ]

    def _exception(self, t: int) -> list[tuple[int, str, list[Attr]]]:
        rng = self.rng
        kind = rng.choice(("ConnectionError", "TimeoutError", "ValueError"))
        return [(t, "exception", [
            ("exception.type", kind),
            ("exception.message", f"{kind}: upstream failed after {rng.randrange(1, 30)} ms"),
            ("exception.stacktrace", f"Traceback (most recent call last):\n  File \"app.py\", "
                                     f"line {rng.randrange(10, 500)}, in handle\n{kind}"),
        ])]

    # batching --------------------------------------------------------------------------
    def requests(self, total: int) -> Iterator[list[tuple[int, list[Span]]]]:
        """Collector-style export batches of ~SPANS_PER_REQUEST spans, ``total`` spans in all.

        Each batch is a list of (resource index, spans) groups, one per pod in the batch."""
        made = 0
        pending: list[tuple[int, Span]] = []
        for trace in self.traces():
            if made + len(pending) + len(trace) > total:
                trace = trace[: total - made - len(pending)]
            pending.extend(trace)
            if len(pending) >= SPANS_PER_REQUEST or made + len(pending) >= total:
                groups: dict[int, list[Span]] = {}
                for ri, sp in pending:
                    groups.setdefault(ri, []).append(sp)
                yield sorted(groups.items())
                made += len(pending)
                pending = []
                if made >= total:
                    return


# --------------------------------------------------------------------------------------
# Emitters
# --------------------------------------------------------------------------------------

def _set_value(av: Any, v: Any) -> None:
    t = type(v)
    if t is str:
        av.string_value = v
    elif t is bool:
        av.bool_value = v
    elif t is int:
        av.int_value = v
    elif t is float:
        av.double_value = v
    elif t is list:
        for x in v:
            _set_value(av.array_value.values.add(), x)
    else:
        raise TypeError(t)


def _set_attrs(field: Any, attrs: list[Attr]) -> None:
    for k, v in attrs:
        kv = field.add()
        kv.key = k
        _set_value(kv.value, v)


def write_proto(path: Path, spans: int, seed: int) -> None:
    """One ExportTraceServiceRequest with all spans (batches become ResourceSpans)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    gen = Generator(seed)
    req = ExportTraceServiceRequest()
    for batch in gen.requests(spans):
        _add_batch(req, gen, batch)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(req.SerializeToString())
    tmp.replace(path)


def _add_batch(req: Any, gen: Generator, batch: list[tuple[int, list[Span]]]) -> None:
    for ri, spans in batch:
        _svc, res_attrs, scopes = gen.resources[ri]
        rs = req.resource_spans.add()
        _set_attrs(rs.resource.attributes, res_attrs)
        rs.schema_url = "https://opentelemetry.io/schemas/1.29.0"
        by_scope: dict[int, Any] = {}
        for (tid, sid, pid, name, kind, start, end, code, msg, attrs, events, links, scope,
             state) in spans:
            ss = by_scope.get(scope)
            if ss is None:
                ss = by_scope[scope] = rs.scope_spans.add()
                ss.scope.name, ss.scope.version = scopes[scope]
            sp = ss.spans.add()
            sp.trace_id, sp.span_id = tid, sid
            if pid:
                sp.parent_span_id = pid
            if state:
                sp.trace_state = state
            sp.name = name
            sp.kind = kind
            sp.flags = 0x301
            sp.start_time_unix_nano, sp.end_time_unix_nano = start, end
            if code:
                sp.status.code = code
                if msg:
                    sp.status.message = msg
            _set_attrs(sp.attributes, attrs)
            for t, en, ea in events:
                ev = sp.events.add()
                ev.time_unix_nano, ev.name = t, en
                _set_attrs(ev.attributes, ea)
            for lt, ls, lst, la in links:
                lk = sp.links.add()
                lk.trace_id, lk.span_id = lt, ls
                if lst:
                    lk.trace_state = lst
                _set_attrs(lk.attributes, la)


def _json_value(v: Any) -> dict[str, Any]:
    t = type(v)
    if t is str:
        return {"stringValue": v}
    if t is bool:
        return {"boolValue": v}
    if t is int:
        return {"intValue": str(v)}  # proto3 JSON: int64 as a string
    if t is float:
        return {"doubleValue": v}
    return {"arrayValue": {"values": [_json_value(x) for x in v]}}


def _json_attrs(attrs: list[Attr]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _json_value(v)} for k, v in attrs]


def write_jsonl(path: Path, spans: int, seed: int) -> None:
    """Collector file-exporter style: one ExportTraceServiceRequest per line, hex ids."""
    import orjson

    gen = Generator(seed)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        for batch in gen.requests(spans):
            resource_spans = []
            for ri, group in batch:
                _svc, res_attrs, scopes = gen.resources[ri]
                by_scope: dict[int, list[dict[str, Any]]] = {}
                for (tid, sid, pid, name, kind, start, end, code, msg, attrs, events, links,
                     scope, state) in group:
                    sp: dict[str, Any] = {
                        "traceId": tid.hex(), "spanId": sid.hex(), "parentSpanId": pid.hex(),
                        "traceState": state, "flags": 0x301, "name": name, "kind": kind,
                        "startTimeUnixNano": str(start), "endTimeUnixNano": str(end),
                        "attributes": _json_attrs(attrs),
                        "status": {"code": code, "message": msg} if code else {},
                    }
                    if events:
                        sp["events"] = [{"timeUnixNano": str(t), "name": en,
                                         "attributes": _json_attrs(ea)} for t, en, ea in events]
                    if links:
                        sp["links"] = [{"traceId": lt.hex(), "spanId": ls.hex(),
                                        "traceState": lst, "attributes": _json_attrs(la)}
                                       for lt, ls, lst, la in links]
                    by_scope.setdefault(scope, []).append(sp)
                resource_spans.append({
                    "resource": {"attributes": _json_attrs(res_attrs)},
                    "scopeSpans": [
                        {"scope": {"name": scopes[s][0], "version": scopes[s][1]},
                         "spans": sps} for s, sps in sorted(by_scope.items())
                    ],
                    "schemaUrl": "https://opentelemetry.io/schemas/1.29.0",
                })
            fh.write(orjson.dumps({"resourceSpans": resource_spans}) + b"\n")
    tmp.replace(path)


def cached(out: Path, kind: str, spans: int, seed: int) -> tuple[Path, float]:
    """The input file (generated unless already cached) and the seconds spent generating."""
    ext = {"proto": "pb", "jsonl": "jsonl"}[kind]
    path = out / f"traces-{spans}-s{seed}-v{GENERATOR_VERSION}.{ext}"
    if path.exists():
        return path, 0.0
    t0 = time.perf_counter()
    (write_proto if kind == "proto" else write_jsonl)(path, spans, seed)
    return path, time.perf_counter() - t0


# --------------------------------------------------------------------------------------
# The decode floor: an independent tight loop, no Arrow, no database.
# --------------------------------------------------------------------------------------

def _touch_value(v: Any) -> Any:
    w = v.WhichOneof("value")
    if w == "array_value":
        return [_touch_value(x) for x in v.array_value.values]
    if w == "kvlist_value":
        return {kv.key: _touch_value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, w) if w is not None else None


def _touch_attributes(kvs: Any) -> None:
    for kv in kvs:
        _k = kv.key
        _v = _touch_value(kv.value)


def floor_loop(req: Any) -> int:
    """Read every field sloengine stores, once, into Python objects; returns the span count.

    Ids become hex text as they are stored; attribute values are read through WhichOneof like
    any OTLP consumer must. Values are only bound to local names (CPython does not optimise
    unused reads away), so this is the cost of getting the data out of upb and nothing else.
    """
    n = 0
    for rs in req.resource_spans:
        _touch_attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            scope = ss.scope
            _scope = (scope.name, scope.version)
            for sp in ss.spans:
                _tid = sp.trace_id.hex()
                _sid = sp.span_id.hex()
                pid = sp.parent_span_id
                _pid = pid.hex() if pid else None
                _ts = sp.trace_state
                _fields = (sp.flags, sp.name, sp.kind, sp.start_time_unix_nano,
                           sp.end_time_unix_nano)
                st = sp.status
                _status = (st.code, st.message)
                for kv in sp.attributes:
                    _k = kv.key
                    v = kv.value
                    w = v.WhichOneof("value")
                    if w == "string_value":
                        _val: Any = v.string_value
                    elif w == "int_value":
                        _val = v.int_value
                    elif w == "double_value":
                        _val = v.double_value
                    elif w == "bool_value":
                        _val = v.bool_value
                    else:
                        _val = _touch_value(v)
                for e in sp.events:
                    _ev = (e.time_unix_nano, e.name)
                    _touch_attributes(e.attributes)
                for lk in sp.links:
                    _lk = (lk.trace_id.hex(), lk.span_id.hex(), lk.trace_state)
                    _touch_attributes(lk.attributes)
                n += 1
    return n


def run_floor(path: Path) -> dict[str, Any]:
    """Runs inside a fresh child process (``--_floor``)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    data = path.read_bytes()
    c0 = time.process_time()
    t0 = time.perf_counter()
    req = ExportTraceServiceRequest()
    req.ParseFromString(data)
    t1 = time.perf_counter()
    n = floor_loop(req)
    t2 = time.perf_counter()
    return {"spans": n, "parse_s": t1 - t0, "loop_s": t2 - t1, "total_s": t2 - t0,
            "cpu_s": time.process_time() - c0}


# --------------------------------------------------------------------------------------
# Child processes
# --------------------------------------------------------------------------------------

def run_child(cmd: list[str], env: dict[str, str] | None = None
              ) -> tuple[str, float, int, float]:
    """Run ``cmd``; returns (stdout, wall seconds, peak RSS in bytes, CPU seconds).

    CPU seconds are the child's and all its descendants' (the ingest's decode workers): this
    process is made a child subreaper, so descendants orphaned when the child exits are
    re-parented here and reaped with their rusage. Peak RSS is the child's own (``os.wait4``);
    the largest peak of any descendant is kept in ``LAST_WORKER_RSS``."""
    import tempfile

    global LAST_WORKER_RSS
    _subreaper()
    with tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fout, stderr=ferr, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # reap it ourselves to get its rusage
        wall = time.perf_counter() - t0
        proc.returncode = rc = os.waitstatus_to_exitcode(status)
        cpu = usage.ru_utime + usage.ru_stime
        LAST_WORKER_RSS = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # orphans (forkserver, workers) exit soon after
            try:
                pid, _, u = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.05)
                continue
            cpu += u.ru_utime + u.ru_stime
            LAST_WORKER_RSS = max(LAST_WORKER_RSS, _maxrss_bytes(u.ru_maxrss))
        fout.seek(0)
        ferr.seek(0)
        out, err = fout.read(), ferr.read()
    if rc != 0:
        raise SystemExit(f"command failed ({rc}): {' '.join(cmd)}\n{err.decode()[-4000:]}")
    return out.decode(), wall, _maxrss_bytes(usage.ru_maxrss), cpu


LAST_WORKER_RSS = 0


def _subreaper() -> None:
    """prctl(PR_SET_CHILD_SUBREAPER) on Linux; elsewhere worker CPU may go uncounted."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)


def _maxrss_bytes(v: int) -> int:
    return v if sys.platform == "darwin" else v * 1024


def sloengine_cmd() -> list[str]:
    """``python -m sloengine`` of this tree (``ingest`` sets PYTHONPATH to the repository):
    an installed ``sloengine`` script may belong to another checkout."""
    return [sys.executable, "-m", "sloengine"]


def ingest(path: Path, db: Path, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    for p in (db, db.with_name(db.name + ".wal")):
        p.unlink(missing_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE.parent), *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra_env or {})
    out, wall, rss, cpu = run_child([*sloengine_cmd(), "ingest", str(path), "--db", str(db),
                                     "--json"], env)
    report = json.loads(out)
    stored = count_spans(db)
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_bytes": rss,
            "worker_peak_rss_bytes": LAST_WORKER_RSS, "stored_spans": stored,
            "accepted": report["totals"]["accepted"], "rejected": report["totals"]["rejected"]}


def count_spans(db: Path) -> int:
    """Rows in the spans table, read directly (read-only) so that the check does not depend on
    the store's migration state."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return int(con.execute("SELECT count(*) FROM spans").fetchall()[0][0])
    finally:
        con.close()


def jsonl_throughput(out: Path, seed: int, n_small: int, n_big: int, memory: dict[str, Any],
                     env: dict[str, str]) -> list[dict[str, Any]]:
    """JSON Lines spans/s against the protobuf ingest of the same spans (same generator and
    seed), both measured in this run: the 10×N file with the default workers (its JSON Lines
    run is the memory check's), and the N file in one process (``SLOENGINE_INGEST_WORKERS=1``,
    the path small files and OTLP/HTTP bodies take)."""
    rows = []
    for label, n, extra in (("default workers", n_big, {}),
                            ("1 process", n_small, {"SLOENGINE_INGEST_WORKERS": "1"})):
        run_env = {**env, **extra}
        if extra:
            jpath, _ = cached(out, "jsonl", n, seed)
            j = ingest(jpath, out / "bench-jsonl-rate.duckdb", run_env)
        else:
            j = memory["big"]
        ppath, _ = cached(out, "proto", n, seed)
        p = ingest(ppath, out / "bench-jsonl-rate.duckdb", run_env)
        for name, r in (("JSON Lines", j), ("protobuf", p)):
            if r["stored_spans"] != n:
                raise SystemExit(f"{name} {n}: stored {r['stored_spans']}, expected {n}")
        rate_j, rate_p = n / j["wall_s"], n / p["wall_s"]
        print(f"  jsonl rate ({label}) {n:>10,} spans: JSON Lines {j['wall_s']:.1f} s, "
              f"protobuf {p['wall_s']:.1f} s", flush=True)
        rows.append({"workers": label, "spans": n, "jsonl_wall_s": j["wall_s"],
                     "jsonl_cpu_s": j["cpu_s"], "proto_wall_s": p["wall_s"],
                     "proto_cpu_s": p["cpu_s"], "jsonl_spans_per_s": rate_j,
                     "proto_spans_per_s": rate_p, "ratio": rate_j / rate_p})
    return rows


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------

def _mb(b: int) -> str:
    return f"{b / 2**20:,.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spans", type=int, default=1_000_000, help="spans in the protobuf file")
    ap.add_argument("--jsonl-spans", type=int, default=50_000,
                    help="N for the memory check (N and 10×N spans of JSON Lines)")
    ap.add_argument("--out", type=Path, default=HERE / "out", help="cache and result folder")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of floor and end-to-end each; the best of each is reported")
    ap.add_argument("--quick", action="store_true",
                    help="smoke size: 20k spans, JSON Lines 2k vs 20k")
    ap.add_argument("--skip-memory", action="store_true", help="skip the JSON Lines check")
    ap.add_argument("--chunk-records", type=int,
                    help="run the ingests with SLOENGINE_CHUNK_RECORDS=N (default: the "
                         "engine's own default)")
    ap.add_argument("--_floor", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._floor is not None:  # child mode
        print(json.dumps(run_floor(args._floor)))
        return 0
    if args.quick:
        args.spans, args.jsonl_spans = 20_000, 2_000

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    env = {} if args.chunk_records is None else {"SLOENGINE_CHUNK_RECORDS": str(args.chunk_records)}
    print(f"python {platform.python_version()}, {os.cpu_count()} cpu(s); spans={args.spans:,}"
          + (f"; SLOENGINE_CHUNK_RECORDS={args.chunk_records}" if env else ""), flush=True)

    load_before = os.getloadavg()
    pb, gen_s = cached(out, "proto", args.spans, args.seed)
    size = pb.stat().st_size
    print(f"input {pb.name}: {size / 2**20:,.1f} MiB"
          + (f" (generated in {gen_s:.1f} s)" if gen_s else " (cached)"), flush=True)

    floors, e2es = [], []
    for i in range(args.repeat):
        fout, _, frss, _ = run_child([sys.executable, __file__, "--_floor", str(pb)])
        f = json.loads(fout)
        f["peak_rss_bytes"] = frss
        floors.append(f)
        print(f"  floor  #{i + 1}: parse {f['parse_s']:.2f} s + loop {f['loop_s']:.2f} s",
              flush=True)
        if f["spans"] != args.spans:
            raise SystemExit(f"floor saw {f['spans']} spans, expected {args.spans}")
        db = out / "bench.duckdb"
        e = ingest(pb, db, env)
        e2es.append(e)
        print(f"  e2e    #{i + 1}: {e['wall_s']:.2f} s, stored {e['stored_spans']:,}", flush=True)
        if e["stored_spans"] != args.spans:
            raise SystemExit(f"spans table holds {e['stored_spans']}, expected {args.spans}")
    floor = min(floors, key=lambda f: f["total_s"])
    e2e = min(e2es, key=lambda e: e["wall_s"])
    floor_rate = args.spans / floor["total_s"]
    e2e_rate = args.spans / e2e["wall_s"]
    ratio = e2e_rate / floor_rate

    memory: dict[str, Any] = {}
    if not args.skip_memory:
        n_small, n_big = args.jsonl_spans, args.jsonl_spans * 10
        for label, n in (("small", n_small), ("big", n_big)):
            path, g = cached(out, "jsonl", n, args.seed)
            r = ingest(path, out / f"bench-jsonl-{label}.duckdb", env)
            if r["stored_spans"] != n:
                raise SystemExit(f"{path.name}: stored {r['stored_spans']}, expected {n}")
            memory[label] = {"spans": n, "file_bytes": path.stat().st_size, **r}
            print(f"  jsonl {n:>10,} spans: {r['wall_s']:.1f} s, peak RSS "
                  f"{_mb(r['peak_rss_bytes'])}, workers {_mb(r['worker_peak_rss_bytes'])}"
                  + (f" (generated in {g:.0f} s)" if g else ""),
                  flush=True)
        memory["rss_ratio"] = memory["big"]["peak_rss_bytes"] / memory["small"]["peak_rss_bytes"]
        memory["throughput"] = jsonl_throughput(out, args.seed, n_small, n_big, memory, env)

    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    cpu_ratio = floor["cpu_s"] / e2e["cpu_s"]
    load_after = os.getloadavg()
    busy = max(load_before[0], load_after[0]) > (os.cpu_count() or 1)
    print()
    print(f"{'measure':<34}{'seconds':>9}{'spans/s':>12}{'peak RSS':>12}{'CPU s':>9}")
    print(f"{'decode floor (parse + fields)':<34}{floor['total_s']:>9.2f}{floor_rate:>12,.0f}"
          f"{_mb(floor['peak_rss_bytes']):>12}{floor['cpu_s']:>9.2f}")
    print(f"{'  of which ParseFromString':<34}{floor['parse_s']:>9.2f}"
          f"{args.spans / floor['parse_s']:>12,.0f}")
    print(f"{'sloengine ingest (end to end)':<34}{e2e['wall_s']:>9.2f}{e2e_rate:>12,.0f}"
          f"{_mb(e2e['peak_rss_bytes']):>12}{e2e['cpu_s']:>9.2f}")
    if e2e["worker_peak_rss_bytes"]:
        print(f"{'  decode workers: largest peak RSS':<34}{'':>21}"
              f"{_mb(e2e['worker_peak_rss_bytes']):>12}")
    print(f"e2e / floor = {ratio:.2f}  (target >= {TARGET_RATIO}): {verdict}")
    print(f"  CPU-time ratio {cpu_ratio:.2f}; load average {load_before[0]:.1f} before and "
          f"{load_after[0]:.1f} after, {os.cpu_count()} cpu(s)"
          + (" — the machine was busy: wall times are inflated" if busy else ""))
    if memory:
        s, b = memory["small"], memory["big"]
        print(f"JSON Lines peak RSS: {s['spans']:,} spans {_mb(s['peak_rss_bytes'])}, "
              f"{b['spans']:,} spans {_mb(b['peak_rss_bytes'])}: ratio "
              f"{memory['rss_ratio']:.2f} for 10× the spans (target far below 10)")
        for t in memory["throughput"]:
            print(f"JSON Lines throughput, {t['workers']}: {t['spans']:,} spans "
                  f"{t['jsonl_spans_per_s']:,.0f} spans/s vs protobuf of the same spans "
                  f"{t['proto_spans_per_s']:,.0f} spans/s: ratio {t['ratio']:.2f}")

    result = {
        "schema": "sloengine.bench.ingest/v1",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "input": {"file": pb.name, "spans": args.spans, "bytes": size, "seed": args.seed},
        "chunk_records": args.chunk_records,
        "floor": {**floor, "spans_per_s": floor_rate},
        "e2e": {**e2e, "spans_per_s": e2e_rate},
        "ratio": ratio,
        "cpu_ratio": cpu_ratio,
        "load_average": {"before": load_before, "after": load_after},
        "target_ratio": TARGET_RATIO,
        "pass": ratio >= TARGET_RATIO,
        "runs": {"floor": floors, "e2e": e2es},
        "memory": memory,
        # Cross-check: the largest peak RSS of any child so far, as getrusage reports it.
        "max_child_rss_bytes": _maxrss_bytes(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss),
    }
    res_path = out / "result.json"
    res_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {res_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
