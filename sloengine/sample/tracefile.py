"""Encode spans as one ``ExportTraceServiceRequest`` (OTLP protobuf, ``trace_service.proto``).

Spans are grouped like a Collector batch: one ResourceSpans per (service, host) per minute of
trace start, so a trace's spans sit close together in the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .records import Attrs, AttrValue, Span
from .topology import SCHEMA_URL, SCOPE_NAME, SCOPE_VERSION, resource_attrs


def _set(av: Any, v: AttrValue) -> None:
    if isinstance(v, bool):
        av.bool_value = v
    elif isinstance(v, int):
        av.int_value = v
    elif isinstance(v, float):
        av.double_value = v
    elif isinstance(v, str):
        av.string_value = v
    else:
        for item in v:
            av.array_value.values.add().string_value = item


def _fill(repeated: Any, attrs: Attrs) -> None:
    for k, v in attrs:
        kv = repeated.add()
        kv.key = k
        _set(kv.value, v)


def _span(pb: Any, s: Span) -> None:
    pb.trace_id = s.trace_id
    pb.span_id = s.span_id
    if s.parent_id:
        pb.parent_span_id = s.parent_id
    pb.name = s.name
    pb.kind = s.kind
    pb.start_time_unix_nano = s.start_ns
    pb.end_time_unix_nano = s.end_ns
    _fill(pb.attributes, s.attrs)
    for ev in s.events:
        e = pb.events.add()
        e.time_unix_nano = ev.time_ns
        e.name = ev.name
        _fill(e.attributes, ev.attrs)
    for trace_id, span_id in s.links:
        link = pb.links.add()
        link.trace_id = trace_id
        link.span_id = span_id
    if s.status:
        pb.status.code = s.status
        if s.message:
            pb.status.message = s.message


def encode(batches: Iterable[list[Span]]) -> bytes:
    """Serialize batches (each a list of spans) into one request."""
    req = ExportTraceServiceRequest()
    for spans in batches:
        groups: dict[tuple[str, str], list[Span]] = {}
        for s in sorted(spans, key=lambda s: s.start_ns):
            groups.setdefault((s.service, s.host), []).append(s)
        for (service, host), group in groups.items():
            rs = req.resource_spans.add()
            _fill(rs.resource.attributes, resource_attrs(service, host))
            rs.schema_url = SCHEMA_URL
            ss = rs.scope_spans.add()
            ss.scope.name = SCOPE_NAME
            ss.scope.version = SCOPE_VERSION
            for s in group:
                _span(ss.spans.add(), s)
    data: bytes = req.SerializeToString(deterministic=True)
    return data
