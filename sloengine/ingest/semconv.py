"""OpenTelemetry semantic conventions that decide which attributes are promoted to columns
and whether a span is an error (see ../shared/OTLP-NOTES.md, "Semantic conventions").

Attribute names are being renamed upstream (``http.status_code`` →
``http.response.status_code``, ``db.system`` → ``db.system.name``, ...). Both the old and the
new names map to the same promoted column; when a sender sets both, the stable (new) name wins.
"""

from __future__ import annotations

#: attribute key → (promoted column, priority). Lower priority number wins on conflict; the
#: names of one column have distinct priorities, so the winner never depends on the order the
#: attributes were sent in.
SPAN_PROMOTED: dict[str, tuple[str, int]] = {
    "http.route": ("http_route", 0),
    "http.request.method": ("http_method", 0),
    "http.method": ("http_method", 1),
    "http.response.status_code": ("http_status_code", 0),
    "http.status_code": ("http_status_code", 1),
    "rpc.system.name": ("rpc_system", 0),
    "rpc.system": ("rpc_system", 1),
    "rpc.service": ("rpc_service", 0),
    "rpc.method": ("rpc_method", 0),
    "rpc.response.status_code": ("rpc_status_code", 0),
    "rpc.status_code": ("rpc_status_code", 1),
    "rpc.grpc.status_code": ("rpc_status_code", 2),
    "db.system.name": ("db_system", 0),
    "db.system": ("db_system", 1),
    "db.namespace": ("db_namespace", 0),
    "db.name": ("db_namespace", 1),
    "db.collection.name": ("db_collection", 0),
    "db.sql.table": ("db_collection", 1),
    "db.mongodb.collection": ("db_collection", 2),
    "db.operation.name": ("db_operation", 0),
    "db.operation": ("db_operation", 1),
    "messaging.system": ("messaging_system", 0),
    "messaging.destination.name": ("messaging_destination", 0),
    "messaging.destination": ("messaging_destination", 1),
    "messaging.operation.type": ("messaging_operation", 0),
    "messaging.operation": ("messaging_operation", 1),
}

#: Promoted columns that are integers; all other promoted columns are text.
INT_COLUMNS = frozenset({"http_status_code"})

#: Columns for log records (OTLP logs and access logs share them).
LOG_PROMOTED: dict[str, tuple[str, int]] = {
    "http.route": ("http_route", 0),
    "http.request.method": ("http_method", 0),
    "http.method": ("http_method", 1),
    "http.response.status_code": ("http_status_code", 0),
    "http.status_code": ("http_status_code", 1),
}

SPAN_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_CODES = ("UNSET", "OK", "ERROR")

#: gRPC status code numbers → names (grpc/status.proto).
GRPC_CODES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED",
)

#: gRPC codes that are server errors (OTel semconv, "gRPC status codes" table).
GRPC_SERVER_ERRORS = frozenset(
    {"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"}
)

#: Attribute keys that carry a correlation id, in order of preference (configurable).
DEFAULT_CORRELATION_KEYS = (
    "correlation.id",
    "correlation_id",
    "http.request.header.x-correlation-id",
    "http.request.header.x-request-id",
    "x-request-id",
    "request.id",
)


def grpc_code_name(value: object) -> str:
    """Normalise a gRPC status (int or name) to its upper-case name."""
    if isinstance(value, int) and 0 <= value < len(GRPC_CODES):
        return GRPC_CODES[value]
    return str(value).upper()


def is_error(kind: str, status: str, http_status: int | None, rpc_status: str | None) -> bool:
    """Whether a span counts as failed.

    An explicit status wins: ERROR is an error and OK is a success (the instrumentation or the
    user decided). With UNSET status the semantic conventions decide: HTTP 5xx is an error on
    every span, 4xx only on CLIENT spans; gRPC codes in ``GRPC_SERVER_ERRORS`` on SERVER spans,
    anything but OK on CLIENT spans.
    """
    if status == "ERROR":
        return True
    if status == "OK":
        return False
    if http_status is not None:
        if http_status >= 500:
            return True
        if http_status >= 400 and kind == "CLIENT":
            return True
    if rpc_status is not None and rpc_status != "OK":
        if kind == "CLIENT":
            return True
        return rpc_status in GRPC_SERVER_ERRORS
    return False
