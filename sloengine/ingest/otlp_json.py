"""OTLP/JSON → OTLP protobuf messages, one record at a time.

The proto3 JSON mapping is right for everything except the ids: OTLP/JSON encodes
``traceId``/``spanId``/``parentSpanId`` as hex, where protobuf's ``json_format`` expects
base64 and silently yields 24-byte garbage (OTLP-NOTES.md §1). So the ids are popped out of
each record, validated as hex here, and set on the message after ``ParseDict`` parsed the
rest. Records are parsed one by one so that one bad record (a wrong type, a bad id) becomes
one dead letter with its JSON path while its siblings still land.
"""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf.json_format import ParseDict, ParseError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from sloengine.ingest.context import DecodeState, span_id_problem, trace_id_problem

_METRIC_KINDS = (
    ("gauge", "gauge"),
    ("sum", "sum"),
    ("histogram", "histogram"),
    ("exponentialHistogram", "exponential_histogram"),
    ("summary", "summary"),
)


class _BadRecord(ValueError):
    pass


def hex_id(value: Any, field: str, size: int) -> bytes:
    """Decode a hex id of ``size`` bytes; "" means absent (returns b"")."""
    if value is None or value == "":
        return b""
    if not isinstance(value, str):
        raise _BadRecord(f"{field} must be a hex string, got {type(value).__name__}")
    if len(value) != size * 2:
        raise _BadRecord(f"{field} {value!r} must be {size * 2} hex characters, got {len(value)}")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise _BadRecord(f"{field} {value!r} is not hex") from None


def _raw(obj: Any) -> bytes:
    return orjson.dumps(obj)


def _parse(obj: dict[str, Any], msg: Any) -> None:
    try:
        ParseDict(obj, msg, ignore_unknown_fields=True)
    except (ParseError, TypeError, ValueError, AttributeError) as exc:
        raise _BadRecord(str(exc).split("\n")[0]) from None


def _objects(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _BadRecord(f"{where} must be a list")
    return value


def _shell(obj: Any, drop: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _BadRecord("expected a JSON object")
    return {k: v for k, v in obj.items() if k != drop}


def traces_from_json(doc: dict[str, Any], state: DecodeState, where: str = "") -> Any:
    """Build an ExportTraceServiceRequest from an OTLP/JSON body, rejecting bad spans."""
    req = ExportTraceServiceRequest()
    for ri, rs in enumerate(_items(doc, "resourceSpans", where, state, "traces")):
        loc_r = f"{where}resourceSpans[{ri}]"
        try:
            rs_msg = req.resource_spans.add()
            _parse(_shell(rs, "scopeSpans"), rs_msg)
        except _BadRecord as exc:
            del req.resource_spans[-1]
            state.reject(loc_r, str(exc), _raw(rs), "traces")
            continue
        for si, ss in enumerate(_items(rs, "scopeSpans", loc_r + ".", state, "traces")):
            loc_s = f"{loc_r}.scopeSpans[{si}]"
            try:
                ss_msg = rs_msg.scope_spans.add()
                _parse(_shell(ss, "spans"), ss_msg)
            except _BadRecord as exc:
                del rs_msg.scope_spans[-1]
                state.reject(loc_s, str(exc), _raw(ss), "traces")
                continue
            for pi, sp in enumerate(_items(ss, "spans", loc_s + ".", state, "traces")):
                try:
                    _span(sp, ss_msg.spans.add())
                except _BadRecord as exc:
                    del ss_msg.spans[-1]
                    state.reject(f"{loc_s}.spans[{pi}]", str(exc), _raw(sp), "traces")
    return req


def _span(sp: Any, msg: Any) -> None:
    if not isinstance(sp, dict):
        raise _BadRecord("span must be a JSON object")
    body = dict(sp)
    tid = hex_id(body.pop("traceId", None), "traceId", 16)
    sid = hex_id(body.pop("spanId", None), "spanId", 8)
    pid = hex_id(body.pop("parentSpanId", None), "parentSpanId", 8)
    problem = trace_id_problem(tid) or span_id_problem(sid)
    if problem:
        raise _BadRecord(problem)
    links = body.pop("links", None)
    _parse(body, msg)
    msg.trace_id, msg.span_id = tid, sid
    if pid:
        msg.parent_span_id = pid
    for li, lk in enumerate(_objects(links, "links")):
        if not isinstance(lk, dict):
            raise _BadRecord(f"links[{li}] must be a JSON object")
        lbody = dict(lk)
        ltid = hex_id(lbody.pop("traceId", None), f"links[{li}].traceId", 16)
        lsid = hex_id(lbody.pop("spanId", None), f"links[{li}].spanId", 8)
        link = msg.links.add()
        _parse(lbody, link)
        link.trace_id, link.span_id = ltid, lsid


def logs_from_json(doc: dict[str, Any], state: DecodeState, where: str = "") -> Any:
    """Build an ExportLogsServiceRequest; invalid ids on a log record mean "not correlated"."""
    req = ExportLogsServiceRequest()
    for ri, rl in enumerate(_items(doc, "resourceLogs", where, state, "logs")):
        loc_r = f"{where}resourceLogs[{ri}]"
        try:
            rl_msg = req.resource_logs.add()
            _parse(_shell(rl, "scopeLogs"), rl_msg)
        except _BadRecord as exc:
            del req.resource_logs[-1]
            state.reject(loc_r, str(exc), _raw(rl), "logs")
            continue
        for si, sl in enumerate(_items(rl, "scopeLogs", loc_r + ".", state, "logs")):
            loc_s = f"{loc_r}.scopeLogs[{si}]"
            try:
                sl_msg = rl_msg.scope_logs.add()
                _parse(_shell(sl, "logRecords"), sl_msg)
            except _BadRecord as exc:
                del rl_msg.scope_logs[-1]
                state.reject(loc_s, str(exc), _raw(sl), "logs")
                continue
            for li, lr in enumerate(_items(sl, "logRecords", loc_s + ".", state, "logs")):
                loc = f"{loc_s}.logRecords[{li}]"
                try:
                    if not isinstance(lr, dict):
                        raise _BadRecord("log record must be a JSON object")
                    body = dict(lr)
                    raw_t, raw_s = body.pop("traceId", None), body.pop("spanId", None)
                    msg = sl_msg.log_records.add()
                    _parse(body, msg)
                except _BadRecord as exc:
                    del sl_msg.log_records[-1]
                    state.reject(loc, str(exc), _raw(lr), "logs")
                    continue
                try:
                    msg.trace_id = hex_id(raw_t, "traceId", 16)
                    msg.span_id = hex_id(raw_s, "spanId", 8)
                except _BadRecord as exc:
                    state.warnings.append(f"{loc}: {exc}; record kept as not correlated")
                    msg.trace_id, msg.span_id = b"", b""
    return req


def metrics_from_json(doc: dict[str, Any], state: DecodeState, where: str = "") -> Any:
    """Build an ExportMetricsServiceRequest, rejecting bad data points one by one."""
    req = ExportMetricsServiceRequest()
    for ri, rm in enumerate(_items(doc, "resourceMetrics", where, state, "metrics")):
        loc_r = f"{where}resourceMetrics[{ri}]"
        try:
            rm_msg = req.resource_metrics.add()
            _parse(_shell(rm, "scopeMetrics"), rm_msg)
        except _BadRecord as exc:
            del req.resource_metrics[-1]
            state.reject(loc_r, str(exc), _raw(rm), "metrics")
            continue
        for si, sm in enumerate(_items(rm, "scopeMetrics", loc_r + ".", state, "metrics")):
            loc_s = f"{loc_r}.scopeMetrics[{si}]"
            try:
                sm_msg = rm_msg.scope_metrics.add()
                _parse(_shell(sm, "metrics"), sm_msg)
            except _BadRecord as exc:
                del rm_msg.scope_metrics[-1]
                state.reject(loc_s, str(exc), _raw(sm), "metrics")
                continue
            for mi, m in enumerate(_items(sm, "metrics", loc_s + ".", state, "metrics")):
                _metric(m, sm_msg, f"{loc_s}.metrics[{mi}]", state)
    return req


def _metric(m: Any, sm_msg: Any, loc: str, state: DecodeState) -> None:
    if not isinstance(m, dict):
        state.reject(loc, "metric must be a JSON object", _raw(m), "metrics")
        return
    body = dict(m)
    kind = next(((j, p) for j, p in _METRIC_KINDS if isinstance(body.get(j), dict)), None)
    points: Any = []
    if kind is not None:
        data = dict(body[kind[0]])
        points = data.pop("dataPoints", None) or []
        body[kind[0]] = data
    msg = sm_msg.metrics.add()
    try:
        if not isinstance(points, list):
            raise _BadRecord("dataPoints must be a list")
        _parse(body, msg)
    except _BadRecord as exc:
        del sm_msg.metrics[-1]
        state.reject(loc, str(exc), _raw(m), "metrics")
        return
    if kind is None:
        return  # the protobuf decoder rejects a metric without data and says so
    repeated = getattr(msg, kind[1]).data_points
    for pi, p in enumerate(points):
        pmsg = repeated.add()
        try:
            _point(p, pmsg)
        except _BadRecord as exc:
            del repeated[-1]
            state.reject(f"{loc}.dataPoints[{pi}]", str(exc), _raw(p), "metrics")


def _point(p: Any, pmsg: Any) -> None:
    if not isinstance(p, dict):
        raise _BadRecord("data point must be a JSON object")
    pbody = dict(p)
    exemplars = _objects(pbody.pop("exemplars", None), "exemplars")
    _parse(pbody, pmsg)
    for e in exemplars:
        if not isinstance(e, dict):
            raise _BadRecord("exemplar must be a JSON object")
        ebody = dict(e)
        raw_t, raw_s = ebody.pop("traceId", None), ebody.pop("spanId", None)
        emsg = pmsg.exemplars.add()
        _parse(ebody, emsg)
        try:  # an exemplar with a bad id is kept, just not correlated
            emsg.trace_id = hex_id(raw_t, "traceId", 16)
            emsg.span_id = hex_id(raw_s, "spanId", 8)
        except _BadRecord:
            emsg.trace_id, emsg.span_id = b"", b""


def _items(obj: Any, key: str, where: str, state: DecodeState, signal: str) -> list[Any]:
    if not isinstance(obj, dict):
        return []
    try:
        return _objects(obj.get(key), f"{where}{key}")
    except _BadRecord as exc:
        state.reject(f"{where}{key}", str(exc), _raw(obj.get(key)), signal)
        return []
