"""One gateway request as a span tree across gateway → domain services → data layer.

Attribute names follow the stable HTTP, gRPC (``rpc.*``), database (``db.*``) and messaging
semantic conventions. Errors propagate the way proxies do: payments 503 ⇒ orders 502 ⇒
gateway 502; HTTP server spans are ERROR only for 5xx, client spans for ≥ 400; gRPC server
spans for UNKNOWN/DEADLINE_EXCEEDED/UNIMPLEMENTED/INTERNAL/UNAVAILABLE/DATA_LOSS, gRPC client
spans for anything but OK.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .builder import TraceBuilder
from .outcome import Outcome
from .records import CLIENT, PRODUCER, SERVER, WARN, Attrs, Event, Observation, Span
from .topology import GET_ORDER, GET_STOCK, PARTITIONS, PROVIDER_HOST, TOPIC, Route

GRPC_SERVER_ERRORS = frozenset({2, 4, 12, 13, 14, 15})
GRPC_NAMES = {0: "OK", 5: "NOT_FOUND", 13: "INTERNAL", 14: "UNAVAILABLE"}
SELECT_ORDER = "SELECT id, status, total_cents, updated_at FROM orders WHERE id = $1"
INSERT_ORDER = "INSERT INTO orders (id, tenant_id, status, total_cents) VALUES ($1, $2, $3, $4)"
SELECT_STOCK = "SELECT sku, available, reserved FROM stock WHERE sku = $1"

#: A handler gets its server span and start time; returns (end ms, status, error or None).
Handler = Callable[[Span, float], tuple[float, int, str | None]]


@dataclass(slots=True)
class Visit:
    """Who sent the request (gateway-level facts)."""

    route: Route
    path: str
    key: str
    tenant: str
    client_ip: str
    user_agent: str
    email: str | None
    outcome: Outcome


@dataclass(slots=True)
class Result:
    """A built request: the gateway span, its status, and what downstream consumers need."""

    gateway: Span
    status: int
    producer: Span | None
    observations: list[Observation]
    provider_seconds: float | None


class Request:
    """Builds the span tree of one gateway request into a :class:`TraceBuilder`."""

    def __init__(self, b: TraceBuilder, visit: Visit) -> None:
        self.b = b
        self.v = visit
        self.o = visit.outcome
        self.producer: Span | None = None
        self.observations: list[Observation] = []
        self.provider_seconds: float | None = None

    def build(self) -> Result:
        b, v = self.b, self.v
        attrs: Attrs = [
            ("http.request.method", v.route.method),
            ("http.route", v.route.template),
            ("url.path", v.path),
            ("url.scheme", "https"),
            ("server.address", "api.shop.example"),
            ("client.address", v.client_ip),
            ("user_agent.original", v.user_agent),
            ("correlation.id", b.correlation_id),
            ("http.request.header.x-request-id", (b.correlation_id,)),
            ("tenant.id", v.tenant),
        ]
        if v.email:
            attrs.append(("user.email", v.email))
        gw = b.open("api-gateway", b.host("api-gateway"), v.route.name, SERVER, 0.0, None, attrs)
        at = b.rng.uniform(0.3, 1.5)
        if v.route is GET_STOCK:
            at, code, _ = self.grpc(gw, "Lookup", at, self.lookup)
            status = {0: 200, 5: 404, 14: 503}.get(code, 500)
        else:
            handler = self.get_order if v.route is GET_ORDER else self.post_order
            target = f"/orders/{v.key}" if v.route is GET_ORDER else "/orders"
            at, status, _ = self.http(gw, "orders-service", v.route, target, at, handler)
        end = at + b.rng.uniform(0.2, 1.0)
        b.put(gw, "http.response.status_code", status)
        b.close(gw, end, f"upstream returned {status}" if status >= 500 else None)
        body = f'{v.client_ip} "{v.route.method} {v.path}" {status} {end:.1f}ms'
        if status >= 500:
            b.error(gw, f"upstream error: {body}", "UpstreamError")
        else:
            b.info(gw, body)
        self.observe(gw, v.route, status)
        return Result(gw, status, self.producer, self.observations, self.provider_seconds)

    def observe(self, span: Span, route: Route, status: int) -> None:
        seconds = (span.end_ns - span.start_ns) / 1e9
        obs = Observation(
            service=span.service,
            host=span.host,
            route=route.template,
            method=route.method,
            status=status,
            seconds=seconds,
            end_ns=span.end_ns,
            trace_id=span.trace_id,
            span_id=span.span_id,
        )
        self.observations.append(obs)

    # -- hops ----------------------------------------------------------------------------
    def http(
        self, parent: Span, callee: str, route: Route, path: str, at: float, handler: Handler
    ) -> tuple[float, int, Span]:
        """An HTTP CLIENT span in the caller and a SERVER span in ``callee``."""
        b = self.b
        client_attrs: Attrs = [
            ("http.request.method", route.method),
            ("server.address", callee),
            ("server.port", 8080),
            ("url.full", f"http://{callee}:8080{path}"),
        ]
        cl = b.open(parent.service, parent.host, route.method, CLIENT, at, parent, client_attrs)
        s_at = at + b.net()
        server_attrs: Attrs = [
            ("http.request.method", route.method),
            ("http.route", route.template),
            ("url.path", path),
            ("correlation.id", b.correlation_id),
        ]
        srv = b.open(callee, b.host(callee), route.name, SERVER, s_at, cl, server_attrs)
        end, status, err = handler(srv, s_at)
        b.put(srv, "http.response.status_code", status)
        b.close(srv, end, err if status >= 500 else None)
        if status >= 500:
            b.error(srv, f"{route.name} failed: {err}", "HttpServerError")
        else:
            b.info(srv, f"{route.method} {path} -> {status} in {end - s_at:.1f} ms")
        c_end = end + b.net()
        b.put(cl, "http.response.status_code", status)
        b.close(cl, c_end, f"HTTP {status}" if status >= 400 else None)
        return c_end, status, srv

    def grpc(
        self, parent: Span, method: str, at: float, handler: Handler
    ) -> tuple[float, int, Span]:
        """A gRPC CLIENT/SERVER pair to ``inventory.Inventory/<method>``."""
        b = self.b
        full = f"inventory.Inventory/{method}"
        rpc: Attrs = [
            ("rpc.system", "grpc"),
            ("rpc.service", "inventory.Inventory"),
            ("rpc.method", method),
        ]
        peer: Attrs = [("server.address", "inventory-service"), ("server.port", 50051)]
        cl = b.open(parent.service, parent.host, full, CLIENT, at, parent, [*rpc, *peer])
        s_at = at + b.net()
        srv_attrs: Attrs = [*rpc, ("correlation.id", b.correlation_id)]
        callee = "inventory-service"
        srv = b.open(callee, b.host(callee), full, SERVER, s_at, cl, srv_attrs)
        end, code, err = handler(srv, s_at)
        b.put(srv, "rpc.grpc.status_code", code)
        failed = code in GRPC_SERVER_ERRORS
        b.close(srv, end, err if failed else None, "StockServiceError" if failed else None)
        if failed:
            b.error(srv, f"{full} failed: {err}", "StockServiceError")
        else:
            b.info(srv, f"{full} {GRPC_NAMES.get(code, code)} in {end - s_at:.1f} ms")
        c_end = end + b.net()
        b.put(cl, "rpc.grpc.status_code", code)
        b.close(cl, c_end, f"gRPC status {GRPC_NAMES.get(code, code)}" if code else None)
        return c_end, code, srv

    def db(
        self,
        parent: Span,
        op: str,
        ns: str,
        table: str,
        query: str,
        at: float,
        ms: float,
        error: str | None = None,
    ) -> float:
        """A postgres CLIENT span; queries slower than 500 ms also log a WARN."""
        b = self.b
        attrs: Attrs = [
            ("db.system.name", "postgresql"),
            ("db.namespace", ns),
            ("db.collection.name", table),
            ("db.operation.name", op),
            ("db.query.text", query),
            ("server.address", f"{ns}-db.internal"),
            ("server.port", 5432),
        ]
        span = b.open(parent.service, parent.host, f"{op} {table}", CLIENT, at, parent, attrs)
        if error:
            b.put(span, "db.response.status_code", "08006")
            b.put(span, "error.type", "08006")
        b.close(span, at + ms, error, "psycopg.OperationalError" if error else None)
        if ms > 500:
            b.emit(span, WARN, f"slow query {ms:.0f} ms: {query}", [])
        return at + ms

    def orders_db_ms(self, median: float) -> float:
        b = self.b
        if self.o.slow == "db" or (self.o.slow == "tail" and self.v.route is GET_ORDER):
            return b.rng.uniform(520.0, 1400.0)
        ms = b.lat(median, 0.5, 0.5, 40.0)
        return ms * 1.8 if self.o.degraded else ms

    # -- handlers ------------------------------------------------------------------------
    def get_order(self, srv: Span, at: float) -> tuple[float, int, str | None]:
        b = self.b
        at += b.lat(2.0, 0.4, 0.5, 12.0)
        fail = self.o.fault == "orders-db-error"
        err = (
            "connection to orders-db.internal lost: server closed the connection" if fail else None
        )
        at = self.db(
            srv, "SELECT", "orders", "orders", SELECT_ORDER, at, self.orders_db_ms(2.5), err
        )
        if fail:
            return at + 0.5, 500, err
        return at + b.lat(0.8, 0.3, 0.2, 5.0), 404 if self.o.client_error else 200, None

    def post_order(self, srv: Span, at: float) -> tuple[float, int, str | None]:
        b, o = self.b, self.o
        at += b.lat(2.5, 0.4, 0.8, 12.0)
        if o.client_error:
            return at + 0.3, 400, None
        at, code, _ = self.grpc(srv, "Reserve", at, self.reserve)
        if code != 0:
            return at + 0.5, 503, f"inventory-service unavailable (gRPC {code})"
        payments = Route("POST", "/payments", 0.0)
        at, status, psrv = self.http(srv, "payments-service", payments, "/payments", at, self.pay)
        self.observe(psrv, payments, status)
        if status >= 500:
            return at + 0.5, 502, f"payments-service returned {status}"
        fail = o.fault == "orders-db-error"
        err = "could not insert order: deadlock detected" if fail else None
        at = self.db(
            srv, "INSERT", "orders", "orders", INSERT_ORDER, at, self.orders_db_ms(4.0), err
        )
        if fail:
            return at + 0.5, 500, err
        self.producer = self.publish(srv, at)
        at = (self.producer.end_ns - b.origin_ns) / 1e6
        return at + b.lat(0.8, 0.3, 0.2, 5.0), 201, None

    def publish(self, srv: Span, at: float) -> Span:
        b = self.b
        attrs: Attrs = [
            ("messaging.system", "kafka"),
            ("messaging.destination.name", TOPIC),
            ("messaging.operation.type", "send"),
            ("messaging.operation.name", "publish"),
            ("messaging.kafka.message.key", self.v.key),
            ("messaging.destination.partition.id", str(b.rng.randrange(PARTITIONS))),
            ("correlation.id", b.correlation_id),
        ]
        span = b.open(srv.service, srv.host, f"publish {TOPIC}", PRODUCER, at, srv, attrs)
        b.close(span, at + b.lat(1.5, 0.4, 0.5, 15.0))
        return span

    def reserve(self, srv: Span, at: float) -> tuple[float, int, str | None]:
        b = self.b
        if self.o.fault == "inventory-unavailable":
            return at + b.lat(3.0, 0.5, 0.5, 30.0), 14, "stock cache unavailable"
        return at + b.lat(5.0, 0.5, 1.0, 60.0), 0, None

    def lookup(self, srv: Span, at: float) -> tuple[float, int, str | None]:
        b, o = self.b, self.o
        if o.fault == "inventory-unavailable":
            return at + b.lat(3.0, 0.5, 0.5, 30.0), 14, "stock cache unavailable"
        at += b.uniform_tail() if o.slow == "tail" else b.lat(1.5, 0.4, 0.5, 10.0)
        fail = o.fault == "inventory-internal"
        err = "stock table scan failed: could not read block 4711" if fail else None
        ms = b.lat(2.0, 0.5, 0.5, 40.0)
        at = self.db(srv, "SELECT", "inventory", "stock", SELECT_STOCK, at, ms, err)
        if fail:
            return at + 0.4, 13, err
        return at + b.lat(0.6, 0.3, 0.2, 4.0), 5 if o.client_error else 0, None

    def pay(self, srv: Span, at: float) -> tuple[float, int, str | None]:
        b, o = self.b, self.o
        at += b.lat(2.0, 0.4, 0.5, 4.0)
        attrs: Attrs = [
            ("http.request.method", "POST"),
            ("server.address", PROVIDER_HOST),
            ("server.port", 443),
            ("url.full", f"https://{PROVIDER_HOST}/v1/charges"),
        ]
        cl = b.open(srv.service, srv.host, "POST", CLIENT, at, srv, attrs)
        down = o.fault in ("provider-outage", "provider-error")
        if down:
            ms, status = b.lat(40.0, 0.5, 5.0, 200.0), 503
        elif o.slow == "tail":
            ms, status = b.uniform_tail(), 201
        else:
            ms, status = b.lat(85.0, 0.35, 25.0, 230.0), 201
        self.provider_seconds = ms / 1000.0
        b.put(cl, "http.response.status_code", status)
        b.close(cl, at + ms, "HTTP 503" if down else None)
        at += ms
        if down:
            err = "payment provider unavailable: 503 Service Unavailable"
            srv.events.append(self.exception(b.ns(at), "ProviderUnavailableError", err))
            return at + 0.5, 503, err
        return at + b.lat(1.0, 0.3, 0.3, 4.0), 201, None

    @staticmethod
    def exception(at_ns: int, exc_type: str, message: str) -> Event:
        return Event(
            "exception", at_ns, [("exception.type", exc_type), ("exception.message", message)]
        )
