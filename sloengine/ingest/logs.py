"""OTLP logs (protobuf messages) → log columns. Access logs share the same columns
(see accesslog.py), so one log SLI works over both."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import orjson

from sloengine.ingest.anyvalue import any_value, attributes_dict, resource_columns
from sloengine.ingest.columns import LOG_SCHEMA, STR_MAP, AttributeColumns, MapColumn, table
from sloengine.ingest.context import DecodeState, span_id_problem, trace_id_problem
from sloengine.ingest.semconv import LOG_PROMOTED
from sloengine.model import Chunk


def record_id(*parts: object) -> str:
    """Content key of a log record or metric point: the same record sent twice (client
    retries, a file ingested again) gets the same id, so the store keeps one copy."""
    data = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class LogColumns:
    """Accumulates log records of one chunk."""

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {f.name: [] for f in LOG_SCHEMA}
        self.attrs = AttributeColumns()
        self.resource = MapColumn()
        self.n = 0

    def add(
        self,
        *,
        time_ns: int,
        observed_ns: int,
        severity_number: int | None,
        severity_text: str | None,
        body: str | None,
        event_name: str | None,
        trace_id: str | None,
        span_id: str | None,
        service: str | None,
        attrs: dict[str, Any],
        res_keys: list[str],
        res_vals: list[str],
        scope: str | None,
        source_kind: str,
        correlation_keys: dict[str, int],
        duration_ns: int | None = None,
        correlation_id: str | None = None,
    ) -> None:
        c = self.cols
        rid = record_id(time_ns, observed_ns, service, trace_id, span_id, severity_number,
                        body, event_name, attrs)
        promo: dict[str, Any] = {}
        ranks: dict[str, int] = {}
        corr: str | None = correlation_id
        corr_r = -1 if correlation_id is not None else 1 << 30
        for key in list(attrs):
            p = LOG_PROMOTED.get(key)
            if p is not None:
                col, rank = p
                if rank < ranks.get(col, 1 << 30):
                    promo[col] = attrs[key]
                    ranks[col] = rank
                del attrs[key]
                continue
            r = correlation_keys.get(key)
            if r is not None and r < corr_r:
                v = attrs[key]
                if type(v) is list:
                    v = v[0] if v else None
                if v is not None and v != "":
                    corr, corr_r = str(v), r
        status = promo.get("http_status_code")
        try:
            status = int(status) if status is not None else None
            if status is not None and not 0 <= status <= 999:
                status = None
        except (TypeError, ValueError, OverflowError):
            status = None
        c["record_id"].append(rid)
        c["time_unix_nano"].append(time_ns)
        c["observed_time_unix_nano"].append(observed_ns)
        c["severity_number"].append(severity_number)
        c["severity_text"].append(severity_text)
        c["body"].append(body)
        c["event_name"].append(event_name)
        c["trace_id"].append(trace_id)
        c["span_id"].append(span_id)
        c["service_name"].append(service)
        c["correlation_id"].append(corr)
        route, method = promo.get("http_route"), promo.get("http_method")
        c["http_route"].append(None if route is None else str(route))
        c["http_method"].append(None if method is None else str(method))
        c["http_status_code"].append(status)
        c["duration_ns"].append(duration_ns)
        c["scope_name"].append(scope)
        c["source_kind"].append(source_kind)
        self.attrs.add_row(attrs)
        self.resource.keys.extend(res_keys)
        self.resource.values.extend(res_vals)
        self.resource.close_row()
        self.n += 1

    def table(self) -> Any:
        cols: dict[str, Any] = dict(self.cols)
        (
            cols["attr_str"],
            cols["attr_int"],
            cols["attr_double"],
            cols["attr_bool"],
            cols["attr_json"],
        ) = self.attrs.arrays()
        cols["resource_attributes"] = self.resource.array(STR_MAP)
        return table(LOG_SCHEMA, cols)


def finish_logs(out: LogColumns, state: DecodeState) -> Chunk:
    dead, warnings = state.take()
    return Chunk(logs=out.table(), dead_letters=dead, warnings=warnings)


def log_ids(tid_b: bytes, sid_b: bytes, state: DecodeState, where: str
            ) -> tuple[str | None, str | None]:
    """A log record's ids as stored: an invalid trace id means "not correlated" (a warning),
    and a span id counts only with a valid trace id (OTLP-NOTES.md §2)."""
    tid = sid = None
    if tid_b:
        if trace_id_problem(tid_b) is None:
            tid = tid_b.hex()
        else:
            state.warnings.append(f"{where}: invalid trace id; record kept as not correlated")
    if sid_b and tid is not None and span_id_problem(sid_b) is None:
        sid = sid_b.hex()
    return tid, sid


def body_text(body_v: Any) -> str | None:
    """A log body (an AnyValue as Python) as the text column stores it."""
    if body_v is None or type(body_v) is str:
        return body_v
    return orjson.dumps(body_v).decode()


def decode_logs_request(req: Any, state: DecodeState) -> Iterator[Chunk]:
    """Yield chunks of log columns from an ExportLogsServiceRequest.

    Invalid trace/span ids on a log record mean "not correlated" (OTLP-NOTES.md §2): the record
    is kept without them and a warning is counted.
    """
    limit = state.options.chunk_records
    corr_rank = {k: i for i, k in enumerate(state.options.correlation_keys)}
    out = LogColumns()
    for ri, rl in enumerate(req.resource_logs):
        service, res_keys, res_vals = resource_columns(rl.resource)
        for si, sl in enumerate(rl.scope_logs):
            scope = sl.scope.name or None
            for li, lr in enumerate(sl.log_records):
                tid, sid = log_ids(lr.trace_id, lr.span_id, state,
                                   f"resourceLogs[{ri}].scopeLogs[{si}].logRecords[{li}]")
                body = body_text(any_value(lr.body) if lr.HasField("body") else None)
                t = lr.time_unix_nano or lr.observed_time_unix_nano
                out.add(
                    time_ns=t,
                    observed_ns=lr.observed_time_unix_nano,
                    severity_number=lr.severity_number,
                    severity_text=lr.severity_text or None,
                    body=body,
                    event_name=lr.event_name or None,
                    trace_id=tid,
                    span_id=sid,
                    service=service,
                    attrs=attributes_dict(lr.attributes),
                    res_keys=res_keys,
                    res_vals=res_vals,
                    scope=scope,
                    source_kind="otlp",
                    correlation_keys=corr_rank,
                )
                if out.n >= limit:
                    yield finish_logs(out, state)
                    out = LogColumns()
    if out.n or state.dead_letters or state.warnings:
        yield finish_logs(out, state)
