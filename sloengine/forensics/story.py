"""The reconstructed story of one request: spans as a tree (parent and link edges), logs,
flags for imperfect data, the critical path and the error origin.

Plain dataclasses: the tree is small (one request, at most ``max_traces`` traces), so one
object per span is fine here, unlike the ingest hot path (ARCHITECTURE.md rule 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

#: (trace_id, span_id): span ids are only unique within a trace.
Key = tuple[str, str]
#: How a span hangs in the tree: a root, under its parent, under the span its link points at
#: (async: a consumer under its producer), or under a synthetic stand-in for a lost parent.
Edge = Literal["root", "parent", "link", "orphan"]

#: Semantic-convention columns copied from the spans table as they are.
SEMCONV = ("http_route", "http_method", "http_status_code", "rpc_system", "rpc_method",
           "rpc_status_code", "db_system", "db_operation", "db_collection", "messaging_system",
           "messaging_destination", "messaging_operation")


@dataclass(slots=True)
class Skew:
    """A child outside its parent's interval although they ran on different clocks (hosts).

    ``estimated_offset_ns``: how far the child's clock seems ahead of the parent's, assuming
    the network delay is the same both ways (the child centred in its parent, as Jaeger's
    clock-skew adjuster does); ``None`` when the child is longer than its parent (no
    estimate). ``applied_shift_ns`` is 0 unless ``adjust_skew`` moved the span.
    """

    start_before_parent_ns: int
    end_after_parent_ns: int
    estimated_offset_ns: int | None
    applied_shift_ns: int = 0


@dataclass(slots=True)
class LogLine:
    time: int
    severity_number: int | None
    severity_text: str | None
    body: str | None
    service: str | None
    trace_id: str | None
    span_id: str | None
    correlation_id: str | None
    source_kind: str
    http_status_code: int | None
    record_id: str
    #: the story span it belongs to (same trace and span id), if that span is in the story
    key: Key | None = None
    shift_ns: int = 0


@dataclass(slots=True)
class SpanEvent:
    time: int
    name: str
    attributes: dict[str, str]


@dataclass(slots=True)
class SpanNode:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    service: str | None
    host: str | None
    start: int
    end: int
    status_code: str
    status_message: str | None
    is_error: bool
    correlation_id: str | None
    links: list[Key]
    attrs: dict[str, Any] = field(default_factory=dict)
    #: a stand-in for a parent span that was never received (its id is the missing id)
    synthetic: bool = False
    edge: Edge = "root"
    tree_parent: Key | None = None
    children: list[Key] = field(default_factory=list)
    depth: int = 0
    self_ns: int = 0
    skew: Skew | None = None
    #: same clock as the parent but ends after it (async work, not skew)
    outlives_parent_ns: int = 0
    shift_ns: int = 0
    critical: bool = False
    critical_ns: int = 0
    error_origin: bool = False
    events: list[SpanEvent] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)

    @property
    def key(self) -> Key:
        return (self.trace_id, self.span_id)

    @property
    def duration(self) -> int:
        return self.end - self.start

    @property
    def orphan(self) -> bool:
        return self.edge == "orphan"


@dataclass(slots=True)
class ErrorOrigin:
    """The deepest failing span whose children all succeeded, and the logs around it."""

    key: Key
    #: every failing span with no failing child, best first
    candidates: list[Key]
    logs: list[LogLine]
    #: the failure reached the story's root through failing parents
    propagated_to_root: bool


@dataclass(slots=True)
class Story:
    query: str
    matched_as: list[str]
    trace_ids: list[str]
    correlation_ids: list[str]
    truncated: bool
    max_traces: int
    adjust_skew: bool
    #: every span in display order (depth-first, children by start time)
    spans: dict[Key, SpanNode]
    roots: list[Key]
    primary_root: Key | None
    logs: list[LogLine]
    start: int
    end: int
    critical_path: list[Key] = field(default_factory=list)
    #: (span, from, to): which span held the request's end-to-end latency when
    critical_sections: list[tuple[Key, int, int]] = field(default_factory=list)
    error_origin: ErrorOrigin | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def duration(self) -> int:
        return self.end - self.start

    @property
    def complete(self) -> bool:
        """No lost parent and no truncation: as far as the data can tell, the whole story."""
        return not self.truncated and not any(n.synthetic for n in self.spans.values())

    def children(self, key: Key, *, sync_only: bool = False) -> list[SpanNode]:
        out = [self.spans[k] for k in self.spans[key].children]
        return [c for c in out if c.edge != "link"] if sync_only else out
