"""The OTLP/HTTP wire rules of the receiver (OTLP specification, "OTLP/HTTP"): which media
types and encodings a request may have, and the response bodies — an Export*ServiceResponse
(with ``partial_success`` when records were rejected) or, for failures, a ``google.rpc.Status``
— in the request's own encoding, protobuf or JSON."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

Fmt = Literal["otlp-proto", "otlp-json"]
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MEDIA_TYPES: dict[str, Fmt] = {
    PROTOBUF: "otlp-proto",
    "application/protobuf": "otlp-proto",
    JSON: "otlp-json",
}
#: signal → (response class, partial-success count field in protobuf, in JSON)
RESPONSES: dict[str, tuple[Any, str, str]] = {
    "traces": (ExportTraceServiceResponse, "rejected_spans", "rejectedSpans"),
    "logs": (ExportLogsServiceResponse, "rejected_log_records", "rejectedLogRecords"),
    "metrics": (ExportMetricsServiceResponse, "rejected_data_points", "rejectedDataPoints"),
}
#: HTTP status → google.rpc.Code of the Status body
RPC_CODES = {400: 3, 413: 8, 415: 3, 429: 8, 500: 13, 503: 14}


class BodyTooLarge(Exception):
    pass


class BadBody(Exception):
    pass


def request_format(content_type: str | None) -> Fmt | None:
    """The OTLP encoding of a Content-Type (parameters such as charset are ignored)."""
    if not content_type:
        return None
    return MEDIA_TYPES.get(content_type.split(";", 1)[0].strip().lower())


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """``Content-Encoding`` gzip/deflate/identity, never inflating past ``limit`` bytes (a
    small bomb cannot fill memory). Raises BodyTooLarge or BadBody."""
    if encoding in ("", "identity"):
        return body
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}[encoding]
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadBody(f"body is not valid {encoding}: {exc}") from None
    if len(out) > limit:
        raise BodyTooLarge(f"body inflates past {limit} bytes")
    if not d.eof:
        raise BadBody(f"{encoding} body is cut off")
    return out


ENCODINGS = ("", "identity", "gzip", "deflate")


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer: status, body, media type and headers."""

    status: int
    body: bytes
    media_type: str
    headers: dict[str, str]


def success(signal: str, fmt: Fmt, rejected: int = 0, message: str = "") -> Reply:
    cls, field, json_field = RESPONSES[signal]
    if fmt == "otlp-proto":
        resp = cls()
        if rejected or message:
            ps = resp.partial_success
            setattr(ps, field, rejected)
            ps.error_message = message
        return Reply(200, resp.SerializeToString(), PROTOBUF, {})
    doc: dict[str, object] = {}
    if rejected or message:
        # proto3 JSON mapping: int64 as a string
        doc["partialSuccess"] = {json_field: str(rejected), "errorMessage": message}
    return Reply(200, orjson.dumps(doc), JSON, {})


def failure(status: int, message: str, fmt: Fmt | None, retry_after: int | None = None
            ) -> Reply:
    """A ``google.rpc.Status`` body (OTLP/HTTP "Failures"), JSON when the request's encoding
    is unknown."""
    code = RPC_CODES.get(status, 2)
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    if fmt == "otlp-proto":
        return Reply(status, _status_proto(code, message), PROTOBUF, headers)
    return Reply(status, orjson.dumps({"code": code, "message": message}), JSON, headers)


def _status_proto(code: int, message: str) -> bytes:
    """google.rpc.Status{code = 1 (int32), message = 2 (string)} in protobuf wire format."""
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)
