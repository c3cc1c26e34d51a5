"""The gateway's own access log (not OTLP): one JSON object per request, JSON Lines.

``ts`` is the request *start* (= the gateway SERVER span start) in ISO 8601 UTC with
milliseconds and ``Z``; ``latency_ms`` is the span duration (µs precision).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from .records import Span
from .request import Visit


def iso_ms(ns: int) -> str:
    """``2026-11-20T14:10:00.123Z`` from epoch nanoseconds (exact integer arithmetic)."""
    secs, rem = divmod(ns, 1_000_000_000)
    return (
        datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        + f".{rem // 1_000_000:03d}Z"
    )


def bytes_sent(rng: random.Random, route: str, status: int) -> int:
    if status >= 500:
        return rng.randrange(140, 180)
    if status >= 400:
        return rng.randrange(90, 130)
    if route == "/orders/{id}":
        return rng.randrange(600, 1500)
    if route == "/orders":
        return rng.randrange(300, 480)
    return rng.randrange(180, 320)


def line(gw: Span, visit: Visit, status: int, correlation_id: str, size: int) -> dict[str, Any]:
    return {
        "ts": iso_ms(gw.start_ns),
        "method": visit.route.method,
        "route": visit.route.template,
        "path": visit.path,
        "status": status,
        "latency_ms": round((gw.end_ns - gw.start_ns) / 1e6, 3),
        "trace_id": gw.trace_id.hex(),
        "span_id": gw.span_id.hex(),
        "request_id": correlation_id,
        "client_ip": visit.client_ip,
        "user_agent": visit.user_agent,
        "bytes_sent": size,
        "tenant": visit.tenant,
        "service": "api-gateway",
    }
