"""Plain value types shared by every stage (stdlib only, ARCHITECTURE.md boundaries)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Signal = Literal["traces", "logs", "metrics"]
Format = Literal["otlp-proto", "otlp-json", "otlp-jsonl", "jsonl-log"]

#: Tables that hold ingested records; every row carries the ``batch_id`` of its lineage row.
RECORD_TABLES = ("spans", "span_events", "logs", "metric_points")

#: Roles of API keys (their permissions: api/access.py PERMISSIONS). Here, free of FastAPI, so
#: the CLI can name them in ``keys create --help`` without loading the API.
ROLES = ("admin", "sre", "oncall", "auditor", "ingest")


def json_value(v: Any) -> Any:
    """A SQL result value as JSON (``sloengine.sql/v1`` rows: the CLI and the API alike):
    times as ISO 8601, bytes as hex, anything else JSON cannot hold as text."""
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, int | float | str | bool | type(None) | list | dict):
        return v
    return str(v)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record that could not be stored, kept with its raw bytes and the reason.

    ``location`` names where it was: ``line 17`` for JSON Lines, a JSON path such as
    ``resourceSpans[0].scopeSpans[1].spans[3]`` for a request body, ``message`` for an
    undecodable protobuf.
    """

    location: str
    reason: str
    raw: bytes
    signal: str | None = None


@dataclass(slots=True)
class Chunk:
    """A decoded slice of one source: columnar tables (Arrow) plus its dead letters.

    The tables are ``pyarrow.Table`` objects; they are typed ``Any`` here so that this
    module stays free of third-party imports.
    """

    spans: Any = None
    span_events: Any = None
    #: the resources the spans point to (``resource_id``), one row each
    resources: Any = None
    logs: Any = None
    metric_points: Any = None
    dead_letters: list[DeadLetter] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def tables(self) -> dict[str, Any]:
        out = {
            "spans": self.spans,
            "span_events": self.span_events,
            "resources": self.resources,
            "logs": self.logs,
            "metric_points": self.metric_points,
        }
        return {k: v for k, v in out.items() if v is not None and v.num_rows > 0}


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What lineage records about one source of bytes (a file or an HTTP sender)."""

    source: str
    format: Format
    signal: str
    sha256: str
    size_bytes: int


@dataclass(slots=True)
class BatchCounts:
    """Per-table counts for one lineage batch."""

    accepted: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    rejected: int = 0

    def add(self, other: BatchCounts) -> None:
        for k, v in other.accepted.items():
            self.accepted[k] = self.accepted.get(k, 0) + v
        for k, v in other.duplicates.items():
            self.duplicates[k] = self.duplicates.get(k, 0) + v
        self.rejected += other.rejected


@dataclass(slots=True)
class IngestResult:
    """The outcome of ingesting one source."""

    info: SourceInfo
    batch_id: int
    duplicate_of: int | None
    counts: BatchCounts
    errors: list[DeadLetter] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ErrorBudget:
    """Budget over the period. ``unit`` is events (Occurrences) or slices (Timeslices,
    RatioTimeslices: slice-equivalents of error). ``remaining_ratio`` goes negative once the
    budget is overspent (SLO-MATH.md: report it, do not clamp)."""

    unit: str
    allowed: float
    consumed: float
    consumed_ratio: float | None
    remaining_ratio: float | None


@dataclass(frozen=True, slots=True)
class TierDecision:
    """One row of the multi-window multi-burn-rate table at one evaluation."""

    tier: str
    severity: str
    long_window: str
    short_window: str
    threshold: float
    long_burn_rate: float | None
    short_burn_rate: float | None
    long_events: float
    condition: bool
    state: str = "inactive"


@dataclass(frozen=True, slots=True)
class SloResult:
    """The state of one SLO / objective / group at one evaluation time."""

    name: str
    service: str
    objective: str
    target: float
    group: str
    window: str
    budgeting_method: str
    eval_minute: int
    sli: float | None
    good: float
    total: float
    error_budget: ErrorBudget
    burn_rates: dict[str, float | None]
    time_to_exhaustion_seconds: float | None
    alerts: list[TierDecision]
    budget_alerts: list[dict[str, Any]]
    status: str
    slo_version: str
