"""What ``generate()`` returns: files written, counts, incidents and planted defects."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

FileFormat = Literal["otlp-proto", "otlp-json", "otlp-jsonl", "jsonl-log", "json", "markdown"]
FileSignal = Literal["traces", "logs", "metrics", "meta"]


def iso(ts: datetime) -> str:
    """ISO 8601 UTC with a ``Z`` (milliseconds only when non-zero)."""
    ts = ts.astimezone(UTC)
    text = ts.strftime("%Y-%m-%dT%H:%M:%S")
    if ts.microsecond:
        text += f".{ts.microsecond // 1000:03d}"
    return text + "Z"


@dataclass(frozen=True, slots=True)
class SampleFile:
    """One file written under ``out`` (``path`` is relative, POSIX separators)."""

    path: str
    signal: FileSignal
    format: FileFormat
    bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Incident:
    """Ground truth for SLO tests: a window with a known bad-event ratio.

    ``expected_error_ratio`` is the expected share of bad events (5xx for availability,
    > 500 ms for latency) among all gateway requests that start inside ``[start, end)``.
    """

    id: str
    kind: str
    start: datetime
    end: datetime
    services: tuple[str, ...]
    routes: tuple[str, ...]
    slo_hint: str
    description: str
    expected_error_ratio: float

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "start": iso(self.start),
            "end": iso(self.end),
            "services": list(self.services),
            "routes": list(self.routes),
            "slo_hint": self.slo_hint,
            "description": self.description,
            "expected_error_ratio": self.expected_error_ratio,
        }


@dataclass(frozen=True, slots=True)
class Defect:
    """An imperfection planted on purpose (forensics ground truth).

    ``kind`` is ``missing-span`` (``span_id`` was never exported; ``orphans`` name its
    children, whose parent is now absent) or ``clock-skew`` (``host`` ran ``skew_ms`` fast
    between ``start`` and ``end``).
    """

    kind: str
    trace_id: str = ""
    span_id: str = ""
    service: str = ""
    span_name: str = ""
    orphans: tuple[str, ...] = ()
    host: str = ""
    skew_ms: float = 0.0
    start: datetime | None = None
    end: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "missing-span":
            out |= {
                "trace_id": self.trace_id,
                "span_id": self.span_id,
                "service": self.service,
                "span_name": self.span_name,
                "orphans": list(self.orphans),
            }
        else:
            out |= {"service": self.service, "host": self.host, "skew_ms": self.skew_ms}
            out |= {"start": iso(self.start) if self.start else None}
            out |= {"end": iso(self.end) if self.end else None}
        return out


@dataclass(frozen=True, slots=True)
class SampleCounts:
    """Record counts across all files (``logs`` are OTLP log records, not access lines)."""

    requests: int
    traces: int
    spans: int
    logs: int
    metric_points: int
    orphan_spans: int
    email_spans: int
    bait_log_bodies: int


@dataclass(frozen=True, slots=True)
class SampleManifest:
    """Everything one ``generate()`` call wrote, in write order."""

    out: str
    seed: int
    start: datetime
    end: datetime
    files: tuple[SampleFile, ...]
    counts: SampleCounts
    incidents: tuple[Incident, ...]
    defects: tuple[Defect, ...]

    @property
    def data_files(self) -> tuple[SampleFile, ...]:
        """Only the telemetry files (traces, logs, metrics), not README/JSON sidecars."""
        return tuple(f for f in self.files if f.signal != "meta")

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able dict (times ISO 8601 UTC), for ``sloengine sample --json``."""
        return {
            "out": self.out,
            "seed": self.seed,
            "start": iso(self.start),
            "end": iso(self.end),
            "total_bytes": self.total_bytes,
            "files": [asdict(f) for f in self.files],
            "counts": asdict(self.counts),
            "incidents": [i.to_json() for i in self.incidents],
            "defects": [d.to_json() for d in self.defects],
        }

    def describe(self) -> str:
        """A short human summary: what was written, and when the incidents are."""
        c = self.counts
        lines = [
            f"wrote {len(self.files)} files ({self.total_bytes / 1e6:.1f} MB) to {self.out}",
            f"  {iso(self.start)} -> {iso(self.end)}, seed {self.seed}",
            f"  {c.requests} requests, {c.traces} traces, {c.spans} spans, {c.logs} log records,"
            f" {c.metric_points} metric points",
        ]
        lines += [f"  incident {i.id}: {iso(i.start)} -> {iso(i.end)}" for i in self.incidents]
        return "\n".join(lines)
