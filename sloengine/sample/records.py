"""In-memory span and log records the generator builds before encoding them.

Enum values are the OTLP wire integers (opentelemetry-proto ``trace.proto``/``logs.proto``):
span kind INTERNAL=1 SERVER=2 CLIENT=3 PRODUCER=4 CONSUMER=5, status ERROR=2, severity
INFO=9 WARN=13 ERROR=17.
"""

from __future__ import annotations

from dataclasses import dataclass, field

AttrValue = str | int | float | bool | tuple[str, ...]
Attrs = list[tuple[str, AttrValue]]

INTERNAL = 1
SERVER = 2
CLIENT = 3
PRODUCER = 4
CONSUMER = 5

STATUS_UNSET = 0
STATUS_ERROR = 2

INFO = 9
WARN = 13
ERROR = 17
SEVERITY_TEXT = {INFO: "INFO", WARN: "WARN", ERROR: "ERROR"}


@dataclass(slots=True)
class Event:
    """A span event (``exception`` events carry ``exception.type``/``exception.message``)."""

    name: str
    time_ns: int
    attrs: Attrs


@dataclass(slots=True)
class Span:
    """One span; ``parent_id`` is ``b""`` for a root, links are (trace id, span id) pairs."""

    service: str
    host: str
    trace_id: bytes
    span_id: bytes
    parent_id: bytes
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attrs: Attrs
    status: int = STATUS_UNSET
    message: str = ""
    links: list[tuple[bytes, bytes]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


@dataclass(slots=True)
class LogLine:
    """One OTLP log record, tied to the span that emitted it."""

    service: str
    host: str
    time_ns: int
    severity: int
    body: str
    trace_id: bytes
    span_id: bytes
    attrs: Attrs


@dataclass(frozen=True, slots=True)
class Observation:
    """One ``http.server.request.duration`` measurement, recorded at the span's end."""

    service: str
    host: str
    route: str
    method: str
    status: int
    seconds: float
    end_ns: int
    trace_id: bytes
    span_id: bytes
