"""OTLP/JSON Lines log files, shaped like the Collector ``file`` exporter output.

One ``ExportLogsServiceRequest`` per line, one line per minute that has records; ids are
lower-case hex, times decimal strings, severity an integer (``logs.proto`` SeverityNumber).
"""

from __future__ import annotations

from collections.abc import Iterator

from . import otlpjson
from .records import SEVERITY_TEXT, LogLine

MINUTE_NS = 60_000_000_000


def _record(r: LogLine) -> otlpjson.Json:
    ts = str(r.time_ns)
    return {
        "timeUnixNano": ts,
        "observedTimeUnixNano": ts,
        "severityNumber": r.severity,
        "severityText": SEVERITY_TEXT[r.severity],
        "body": {"stringValue": r.body},
        "attributes": otlpjson.attributes(r.attrs),
        "traceId": r.trace_id.hex(),
        "spanId": r.span_id.hex(),
    }


def _request(records: list[LogLine]) -> otlpjson.Json:
    groups: dict[tuple[str, str], list[LogLine]] = {}
    for r in records:
        groups.setdefault((r.service, r.host), []).append(r)
    return {
        "resourceLogs": [
            {
                "resource": otlpjson.resource(service, host),
                "scopeLogs": [
                    {"scope": otlpjson.scope(), "logRecords": [_record(r) for r in group]}
                ],
                "schemaUrl": otlpjson.schema_url(),
            }
            for (service, host), group in groups.items()
        ]
    }


def lines(records: list[LogLine]) -> Iterator[str]:
    """JSON lines (without newline) for time-sorted records."""
    batch: list[LogLine] = []
    minute = -1
    for r in records:
        m = r.time_ns // MINUTE_NS
        if m != minute and batch:
            yield otlpjson.compact(_request(batch))
            batch = []
        minute = m
        batch.append(r)
    if batch:
        yield otlpjson.compact(_request(batch))
