"""Per-day buckets of spans, log records and access lines, flushed to files as days close.

Files split by UTC day: a trace goes to the day (and minute batch) of its root span's start,
so a trace never straddles two files; log records and access lines go by their own time.
Times past the last day are clamped into the last day's files.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from . import logfile, tracefile
from .builder import TraceBuilder
from .otlpjson import compact
from .output import Output
from .records import LogLine, Span
from .schedule import Window
from .topology import SKEW_NS, SKEWED_HOST

DAY_NS = 86_400_000_000_000
MINUTE_NS = 60_000_000_000


class Journal:
    """Buffers one day at a time (plus stragglers) and writes each day's three files."""

    def __init__(self, output: Output, start_ns: int, end_ns: int, skew: Window) -> None:
        self.output = output
        self.first = start_ns // DAY_NS
        self.last = (end_ns - 1) // DAY_NS
        self.skew = skew
        self.traces: dict[int, dict[int, list[Span]]] = defaultdict(dict)
        self.logs: dict[int, list[LogLine]] = defaultdict(list)
        self.access: dict[int, list[str]] = defaultdict(list)
        self.trace_count = 0
        self.span_count = 0
        self.log_count = 0
        self.access_count = 0

    def day(self, ns: int) -> int:
        return min(self.last, max(self.first, ns // DAY_NS))

    def add(self, b: TraceBuilder) -> None:
        """Take a finished trace; spans and logs from the skewed host get shifted."""
        for s in b.spans:
            if s.host == SKEWED_HOST and s.start_ns in self.skew:
                s.start_ns += SKEW_NS
                s.end_ns += SKEW_NS
                for ev in s.events:
                    ev.time_ns += SKEW_NS
        for r in b.logs:
            if r.host == SKEWED_HOST and r.time_ns in self.skew:
                r.time_ns += SKEW_NS
        root = min(s.start_ns for s in b.spans if not s.parent_id)
        self.traces[self.day(root)].setdefault(root // MINUTE_NS, []).extend(b.spans)
        for r in b.logs:
            self.logs[self.day(r.time_ns)].append(r)
        self.trace_count += 1
        self.span_count += len(b.spans)
        self.log_count += len(b.logs)

    def add_access(self, start_ns: int, line: dict[str, Any]) -> None:
        self.access[self.day(start_ns)].append(compact(line))
        self.access_count += 1

    def flush(self, now_ns: int, margin_ns: int = MINUTE_NS) -> None:
        """Write every buffered day that ended more than ``margin_ns`` before ``now_ns``."""
        for d in sorted(set(self.traces) | set(self.logs) | set(self.access)):
            if (d + 1) * DAY_NS + margin_ns <= now_ns and d < self.last:
                self._write(d)

    def close(self) -> None:
        for d in sorted(set(self.traces) | set(self.logs) | set(self.access)):
            self._write(d)

    def _write(self, d: int) -> None:
        date = datetime.fromtimestamp(d * 86400, UTC).strftime("%Y-%m-%d")
        batches = self.traces.pop(d, {})
        if batches:
            data = tracefile.encode(batches[m] for m in sorted(batches))
            self.output.write(
                f"traces/traces-{date}.binpb.gz", data, "traces", "otlp-proto", gz=True
            )
        logs = sorted(self.logs.pop(d, []), key=lambda r: r.time_ns)
        if logs:
            text = "".join(line + "\n" for line in logfile.lines(logs))
            self.output.write(
                f"logs/service-logs-{date}.jsonl.gz", text.encode(), "logs", "otlp-jsonl", gz=True
            )
        access = self.access.pop(d, [])
        if access:
            text = "".join(line + "\n" for line in access)
            self.output.write(
                f"access/gateway-access-{date}.jsonl.gz",
                text.encode(),
                "logs",
                "jsonl-log",
                gz=True,
            )
