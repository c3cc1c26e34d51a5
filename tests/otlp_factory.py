"""Build OTLP requests for tests: protobuf messages with known structure, and spans made by
the real OpenTelemetry SDK and encoded by its real exporters' encoders."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2

T0 = 1_764_000_000_000_000_000  # 2025-11-24T16:00:00Z in unix ns


def kv(key: str, value: Any) -> KeyValue:
    v = AnyValue()
    if isinstance(value, bool):
        v.bool_value = value
    elif isinstance(value, int):
        v.int_value = value
    elif isinstance(value, float):
        v.double_value = value
    elif isinstance(value, list):
        for item in value:
            v.array_value.values.append(kv("_", item).value)
    else:
        v.string_value = value
    return KeyValue(key=key, value=v)


def span(
    trace: int, span_id: int, parent: int | None = None, *, name: str = "op",
    kind: int = 2, start_ms: int = 0, dur_ms: int = 10, attrs: dict[str, Any] | None = None,
    status: int = 0,
) -> trace_pb2.Span:
    sp = trace_pb2.Span(
        trace_id=trace.to_bytes(16, "big"),
        span_id=span_id.to_bytes(8, "big"),
        name=name,
        kind=kind,  # type: ignore[arg-type]
        start_time_unix_nano=T0 + start_ms * 1_000_000,
        end_time_unix_nano=T0 + (start_ms + dur_ms) * 1_000_000,
    )
    if parent is not None:
        sp.parent_span_id = parent.to_bytes(8, "big")
    for k, v in (attrs or {}).items():
        sp.attributes.append(kv(k, v))
    sp.status.code = status  # type: ignore[assignment]
    return sp


def trace_request(spans: list[trace_pb2.Span], service: str = "svc") -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(kv("service.name", service))
    ss = rs.scope_spans.add()
    ss.scope.name = "tests"
    ss.spans.extend(spans)
    return req


def sdk_spans() -> tuple[Any, list[Any]]:
    """Spans recorded by the real OpenTelemetry SDK: a server span with a DB child, an error."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, Status, StatusCode

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.sdk", "1.0")
    with tracer.start_as_current_span(
        "POST /orders", kind=SpanKind.SERVER,
        attributes={"http.route": "/orders", "http.request.method": "POST",
                    "http.response.status_code": 502, "correlation.id": "req-42"},
    ) as server:
        with tracer.start_as_current_span(
            "INSERT orders", kind=SpanKind.CLIENT,
            attributes={"db.system": "postgresql", "db.name": "orders"},
        ) as db:
            db.add_event("retry", {"attempt": 2})
            db.set_status(Status(StatusCode.ERROR, "deadlock"))
        server.set_status(Status(StatusCode.ERROR))
    provider.shutdown()
    return provider, list(exporter.get_finished_spans())
