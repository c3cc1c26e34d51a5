"""Structured JSON-lines access logs that are not OTLP (an API gateway's access log).

Field names differ between gateways (nginx JSON, Envoy, Kong, Traefik), so the mapping from
their fields to the log columns is data (``AccessLogMapping``), settable in sloengine.yaml.
A line that is not JSON, or lacks a usable timestamp or status, is a dead letter naming its
line; the other lines of the file still land.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sloengine.ingest.context import DecodeState
from sloengine.ingest.logs import LogColumns

_UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


@dataclass(frozen=True, slots=True)
class AccessLogMapping:
    """Which field of an access-log line feeds which column (None: the field is absent)."""

    timestamp: str = "ts"
    method: str | None = "method"
    route: str | None = "route"
    path: str | None = "path"
    status: str = "status"
    latency: str | None = "latency_ms"
    latency_unit: str = "ms"
    trace_id: str | None = "trace_id"
    span_id: str | None = "span_id"
    correlation_id: str | None = "request_id"
    service: str | None = "service"
    default_service: str = "api-gateway"


class _Bad(ValueError):
    pass


def parse_timestamp(value: Any) -> int:
    """ISO 8601 text, or epoch seconds / milliseconds / nanoseconds by magnitude → unix ns."""
    if isinstance(value, bool):
        raise _Bad("timestamp must be text or a number, got a boolean")
    if isinstance(value, int | float):
        v = float(value)
        if v > 1e17:
            return int(value)
        if v > 1e14:
            return int(value) * 1_000
        if v > 1e11:
            return round(v * 1_000_000)
        return round(v * 1_000_000_000)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise _Bad(f"timestamp {value!r} is not ISO 8601") from None
        if dt.tzinfo is None:
            raise _Bad(f"timestamp {value!r} has no time zone")
        return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1_000
    raise _Bad(f"timestamp must be text or a number, got {type(value).__name__}")


def _hex(value: Any, size: int) -> str | None:
    if not isinstance(value, str) or len(value) != size * 2:
        return None
    try:
        b = bytes.fromhex(value)
    except ValueError:
        return None
    return None if b == bytes(size) else value.lower()


def add_access_line(
    out: LogColumns,
    obj: Any,
    line_text: str,
    mapping: AccessLogMapping,
    state: DecodeState,
    corr_rank: dict[str, int],
) -> None:
    """Map one decoded access-log object into the log columns (raises _Bad on bad input)."""
    if not isinstance(obj, dict):
        raise _Bad("line is not a JSON object")
    if mapping.timestamp not in obj:
        raise _Bad(f"field {mapping.timestamp!r} (timestamp) is missing")
    ts = parse_timestamp(obj[mapping.timestamp])
    status_raw = obj.get(mapping.status)
    if isinstance(status_raw, bool) or not isinstance(status_raw, int | str):
        raise _Bad(f"field {mapping.status!r} (status) must be an integer, got {status_raw!r}")
    try:
        status = int(status_raw)
    except ValueError:
        raise _Bad(
            f"field {mapping.status!r} (status) must be an integer, got {status_raw!r}"
        ) from None
    if not 100 <= status <= 599:
        raise _Bad(f"field {mapping.status!r} (status) {status} is not an HTTP status code")
    duration = None
    if mapping.latency and obj.get(mapping.latency) is not None:
        lat = obj[mapping.latency]
        if isinstance(lat, bool) or not isinstance(lat, int | float):
            raise _Bad(f"field {mapping.latency!r} (latency) must be a number, got {lat!r}")
        duration = round(lat * _UNIT_NS.get(mapping.latency_unit, 1_000_000))
    attrs: dict[str, Any] = {}
    taken = {mapping.timestamp, mapping.status, mapping.latency, mapping.trace_id,
             mapping.span_id, mapping.service}
    for k, v in obj.items():
        if k not in taken:
            attrs[k] = v
    if mapping.route and obj.get(mapping.route) is not None:
        attrs["http.route"] = str(attrs.pop(mapping.route))
    if mapping.method and obj.get(mapping.method) is not None:
        attrs["http.request.method"] = str(attrs.pop(mapping.method))
    if mapping.path and obj.get(mapping.path) is not None:
        attrs["url.path"] = str(attrs.pop(mapping.path))
    corr = None
    if mapping.correlation_id and obj.get(mapping.correlation_id) is not None:
        corr = str(attrs.pop(mapping.correlation_id))
    attrs["http.response.status_code"] = status
    trace_id = _hex(obj.get(mapping.trace_id), 16) if mapping.trace_id else None
    span_id = _hex(obj.get(mapping.span_id), 8) if mapping.span_id and trace_id else None
    service = obj.get(mapping.service) if mapping.service else None
    service = str(service) if service else mapping.default_service
    sev = 17 if status >= 500 else (13 if status >= 400 else 9)
    out.add(
        time_ns=ts,
        observed_ns=ts,
        severity_number=sev,
        severity_text="ERROR" if sev == 17 else ("WARN" if sev == 13 else "INFO"),
        body=line_text,
        event_name="http.access",
        trace_id=trace_id,
        span_id=span_id,
        service=service,
        attrs=attrs,
        res_keys=["service.name"],
        res_vals=[service],
        scope=None,
        source_kind="accesslog",
        correlation_keys=corr_rank,
        duration_ns=duration,
        correlation_id=corr,
    )


BadAccessLine = _Bad
