"""A small span-tree builder: times are milliseconds after the trace's origin.

Times are rounded to whole microseconds (real SDKs report ns, but µs keeps the files smaller
without changing anything the engine measures).
"""

from __future__ import annotations

import math
import random

from .identity import IdSource
from .records import (
    ERROR,
    INFO,
    STATUS_ERROR,
    Attrs,
    AttrValue,
    Event,
    LogLine,
    Span,
)
from .topology import EMAILS, SERVICES

#: Shares of ERROR log bodies that leak an e-mail address / a bearer token (redaction bait).
EMAIL_BAIT = 0.2
TOKEN_BAIT = 0.15


class TraceBuilder:
    """Collects the spans and log lines of one trace."""

    def __init__(
        self,
        ids: IdSource,
        rng: random.Random,
        origin_ns: int,
        correlation_id: str,
        *,
        sampled: bool,
        trace_id: bytes | None = None,
    ) -> None:
        self.ids = ids
        self.rng = rng
        self.origin_ns = origin_ns
        self.correlation_id = correlation_id
        self.sampled = sampled
        self.trace_id = trace_id or ids.trace_id()
        self.spans: list[Span] = []
        self.logs: list[LogLine] = []
        self.bait = 0

    # -- time and randomness -------------------------------------------------------------
    def ns(self, at_ms: float) -> int:
        return self.origin_ns + round(at_ms * 1000.0) * 1000

    def lat(self, median: float, sigma: float, lo: float, hi: float) -> float:
        """A clamped log-normal latency in ms."""
        return min(hi, max(lo, median * math.exp(sigma * self.rng.gauss(0.0, 1.0))))

    def net(self) -> float:
        """One network hop inside the cluster."""
        return self.rng.uniform(0.2, 0.8)

    def uniform_tail(self) -> float:
        """A rare tail latency that pushes the whole request past 500 ms."""
        return self.rng.uniform(520.0, 2000.0)

    def host(self, service: str) -> str:
        return self.rng.choice(SERVICES[service].hosts)

    # -- spans ---------------------------------------------------------------------------
    def open(
        self,
        service: str,
        host: str,
        name: str,
        kind: int,
        at_ms: float,
        parent: Span | None,
        attrs: Attrs,
    ) -> Span:
        start = self.ns(at_ms)
        span = Span(
            service=service,
            host=host,
            trace_id=self.trace_id,
            span_id=self.ids.span_id(),
            parent_id=parent.span_id if parent else b"",
            name=name,
            kind=kind,
            start_ns=start,
            end_ns=start,
            attrs=attrs,
        )
        self.spans.append(span)
        return span

    def close(
        self, span: Span, at_ms: float, error: str | None = None, exc_type: str | None = None
    ) -> None:
        """End a span; ``error`` sets status ERROR, ``exc_type`` adds an exception event."""
        span.end_ns = self.ns(at_ms)
        if error:
            span.status = STATUS_ERROR
            span.message = error
            if exc_type:
                exc: Attrs = [("exception.type", exc_type), ("exception.message", error)]
                span.events.append(Event("exception", span.end_ns, exc))

    @staticmethod
    def put(span: Span, key: str, value: AttrValue) -> None:
        span.attrs.append((key, value))

    # -- logs ----------------------------------------------------------------------------
    def info(self, span: Span, body: str) -> None:
        """An INFO line, only for log-sampled traces."""
        if self.sampled:
            self.emit(span, INFO, body, [])

    def emit(self, span: Span, severity: int, body: str, extra: Attrs) -> None:
        attrs: Attrs = [("correlation.id", self.correlation_id), *extra]
        self.logs.append(
            LogLine(
                span.service,
                span.host,
                span.end_ns,
                severity,
                body,
                span.trace_id,
                span.span_id,
                attrs,
            )
        )

    def error(self, span: Span, body: str, exc_type: str) -> None:
        """An ERROR line with exception attributes; some bodies carry redaction bait."""
        roll = self.rng.random()
        if roll < EMAIL_BAIT:
            body += f" (customer {self.rng.choice(EMAILS)})"
            self.bait += 1
        elif roll < EMAIL_BAIT + TOKEN_BAIT:
            body += f" request headers: Authorization: Bearer {self.ids.bearer_token()}"
            self.bait += 1
        extra: Attrs = [("exception.type", exc_type), ("exception.message", span.message or body)]
        self.emit(span, ERROR, body, extra)
