"""Lineage for auditors: the ordered hops of one request — layer, service, operation, the
datasets it touched, time, outcome — and, for every record shown, the ingest batch it came
from (source, sha256 of the raw bytes, received time), so the evidence chain runs from a
report back to the bytes.

The request is gathered exactly as ``sloengine trace`` gathers it (forensics/gather.py:
trace ids, span links both ways, correlation ids).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sloengine.forensics.gather import gather
from sloengine.store import Store

_HOPS_SQL = """
SELECT s.start_time_unix_nano, s.end_time_unix_nano, s.trace_id, s.span_id, s.kind,
       s.service_name, s.name, s.is_error, s.status_message, s.http_status_code,
       s.rpc_status_code,
       CASE WHEN s.db_system IS NOT NULL THEN 'data'
            WHEN s.messaging_system IS NOT NULL THEN 'queue'
            ELSE coalesce(r.attributes['platform.layer'], 'service') END AS layer,
       s.db_system, s.db_namespace, s.db_collection, s.messaging_system,
       s.messaging_destination, s.attr_str['url.full'] AS url, s.attr_str['server.address'],
       s.attr_str['batch.file'] AS batch_file,
       b.batch_id, b.source, b.sha256, b.received_at, b.format
FROM spans s JOIN ingest_batches b USING (batch_id)
LEFT JOIN resources r ON r.resource_id = s.resource_id
WHERE s.trace_id IN (SELECT unnest(?::VARCHAR[]))
ORDER BY s.start_time_unix_nano, s.trace_id, s.span_id
"""
_LOGS_SQL = """
SELECT l.time_unix_nano, l.service_name, l.source_kind, l.severity_text, l.trace_id,
       l.span_id, l.record_id, b.batch_id, b.source, b.sha256, b.received_at, b.format
FROM logs l JOIN ingest_batches b USING (batch_id)
WHERE l.trace_id IN (SELECT unnest($traces::VARCHAR[]))
   OR l.correlation_id IN (SELECT unnest($corrs::VARCHAR[]))
ORDER BY l.time_unix_nano, l.record_id
"""


@dataclass(frozen=True, slots=True)
class Lineage:
    query: str
    trace_ids: list[str]
    correlation_ids: list[str]
    hops: list[dict[str, Any]]
    logs: list[dict[str, Any]]
    batches: list[dict[str, Any]]
    notes: list[str]


def _datasets(r: tuple[Any, ...]) -> list[str]:
    out = []
    db_system, db_ns, db_coll, m_sys, m_dest, url, server, batch_file = r[12:20]
    if db_system:
        name = ".".join(x for x in (db_ns, db_coll) if x)
        out.append(f"{db_system}:{name}" if name else str(db_system))
    if m_dest:
        out.append(f"{m_sys or 'messaging'}:{m_dest}")
    if url:
        out.append(str(url))
    elif server and r[4] == "CLIENT" and not db_system and not m_dest:
        out.append(str(server))
    if batch_file:
        out.append(f"file:{batch_file}")
    return out


def lineage(store: Store, ident: str, *, max_traces: int = 50) -> Lineage:
    g = gather(store, ident, max_traces=max_traces)
    batches: dict[int, dict[str, Any]] = {}

    def batch(bid: int, source: str, sha: str, received: Any, fmt: str) -> int:
        batches.setdefault(bid, {"batch_id": bid, "source": source, "sha256": sha,
                                 "received_at": received.isoformat(), "format": fmt})
        return bid

    hops = []
    for r in store.rows(_HOPS_SQL, [g.trace_ids]):
        status = r[9] if r[9] is not None else r[10]
        hops.append({
            "start_unix_nano": int(r[0]), "end_unix_nano": int(r[1]), "trace_id": r[2],
            "span_id": r[3], "kind": r[4], "service": r[5], "operation": r[6],
            "layer": r[11], "datasets": _datasets(r),
            "outcome": "error" if r[7] else "ok", "status": status,
            "error_message": r[8] if r[7] else None,
            "batch_id": batch(int(r[20]), r[21], r[22], r[23], r[24]),
        })
    logs = []
    for r in store.rows(_LOGS_SQL, {"traces": g.trace_ids, "corrs": g.correlation_ids}):
        logs.append({"time_unix_nano": int(r[0]), "service": r[1], "source_kind": r[2],
                     "severity": r[3], "trace_id": r[4], "span_id": r[5], "record_id": r[6],
                     "batch_id": batch(int(r[7]), r[8], r[9], r[10], r[11])})
    return Lineage(g.query, g.trace_ids, g.correlation_ids, hops, logs,
                   sorted(batches.values(), key=lambda b: b["batch_id"]), g.notes)
