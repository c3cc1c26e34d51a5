"""The OTLP/JSON walker (otlp_json.py, json_walk.py) against the protobuf decoders: the same
request, encoded both ways, must give identical rows for all three signals; and the JSON
edge cases (proto field names, enum names, NaN/Infinity strings, bytes, oneofs, ranges)."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from otlp_factory import T0, kv, span, trace_request

from sloengine.ingest.context import DecodeOptions, DecodeState
from sloengine.ingest.reader import _otlp_lines, decode_json, decode_proto
from sloengine.model import Chunk

TABLES = ("spans", "span_events", "logs", "metric_points")


def _hex_ids(obj: Any) -> Any:
    """MessageToDict writes ids as base64; OTLP/JSON wants hex (OTLP-NOTES.md §1)."""
    if isinstance(obj, dict):
        return {k: (base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId")
                    else _hex_ids(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_hex_ids(x) for x in obj]
    return obj


def _rows(chunks: list[Chunk]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
    for c in chunks:
        for t in TABLES:
            tbl = getattr(c, t)
            if tbl is not None:
                out[t].extend(tbl.to_pylist())
    return out


class _Found:
    """Dead letters and warnings of a decode, collected from its chunks."""

    def __init__(self, chunks: list[Chunk]) -> None:
        self.dead_letters = [d for c in chunks for d in c.dead_letters]
        self.warnings = [w for c in chunks for w in c.warnings]


def _both(req: Any, signal: str, chunk_records: int = 50_000
          ) -> tuple[dict[str, Any], dict[str, Any], _Found, _Found]:
    sp, sj = (DecodeState(DecodeOptions(chunk_records=chunk_records)) for _ in range(2))
    proto = list(decode_proto(req.SerializeToString(), signal, sp))
    doc = _hex_ids(MessageToDict(req))
    js = list(decode_json(json.dumps(doc).encode(), signal, sj))
    return _rows(proto), _rows(js), _Found(proto), _Found(js)


def _traces() -> Any:
    s1 = span(1, 1, name="GET /a", attrs={
        "http.route": "/a", "http.request.method": "GET", "http.response.status_code": 503,
        "correlation.id": "c-1", "n": 2**62, "ratio": 0.25, "ok": True,
        "tags": ["x", "y"], "empty": ""}, status=0)
    s2 = span(1, 2, 1, name="db", kind=3, attrs={"db.system": "postgresql",
                                                  "rpc.grpc.status_code": 14}, status=2)
    s2.status.message = "boom"
    s2.trace_state = "k=v"
    s2.flags = 0x301
    ev = s2.events.add()
    ev.time_unix_nano, ev.name = T0 + 5, "retry"
    ev.attributes.append(kv("attempt", 2))
    lk = s2.links.add()
    lk.trace_id, lk.span_id, lk.trace_state = (9).to_bytes(16, "big"), (9).to_bytes(8, "big"), "a"
    lk.attributes.append(kv("link.kind", "follows"))
    s3 = span(2, 3, name="kv", kind=5, attrs={"x-request-id": "r-3"})
    a = s3.attributes.add()
    a.key = "map"
    inner = a.value.kvlist_value.values.add()
    inner.key, inner.value.double_value = "d", -1.5
    b = s3.attributes.add()
    b.key, b.value.bytes_value = "blob", b"\x00\xff\x10"
    s3.attributes.add().key = "unset"
    bad = span(3, 4, name="zero parent")
    bad.parent_span_id = bytes(8)
    req = trace_request([s1, s2], service="one")
    req.resource_spans.extend(trace_request([s3, bad, span(3, 5, name="last")],
                                            "two").resource_spans)
    req.resource_spans[1].scope_spans[0].scope.version = "2.0"
    return req


def test_traces_json_and_protobuf_store_identical_rows() -> None:
    proto, js, sp, sj = _both(_traces(), "traces")
    assert len(proto["spans"]) == 4 and len(proto["span_events"]) == 1
    assert js == proto
    assert [(d.location, d.reason) for d in sj.dead_letters] == [
        (d.location, d.reason) for d in sp.dead_letters] == [
        ("resourceSpans[1].scopeSpans[0].spans[1]",
         "parent span id must be empty or 8 non-zero bytes, got '0000000000000000'")]


def test_traces_identical_when_chunked() -> None:
    proto, js, _, _ = _both(_traces(), "traces", chunk_records=2)
    assert js == proto


def _logs() -> Any:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.append(kv("service.name", "logsvc"))
    sl = rl.scope_logs.add()
    sl.scope.name = "lib"
    for i in range(3):
        lr = sl.log_records.add()
        lr.time_unix_nano = T0 + i
        lr.observed_time_unix_nano = T0 + 10 + i
        lr.severity_number = 9 + 8 * (i % 2)
        lr.severity_text = "INFO" if i % 2 == 0 else "ERROR"
        lr.trace_id, lr.span_id = (7).to_bytes(16, "big"), (i + 1).to_bytes(8, "big")
        lr.attributes.extend([kv("http.route", "/r"), kv("http.status_code", 500 + i),
                              kv("correlation_id", f"c{i}")])
        lr.event_name = "ev" if i == 1 else ""
    sl.log_records[0].body.string_value = "hello"
    sl.log_records[1].body.kvlist_value.values.append(kv("k", [1, 2]))
    sl.log_records[2].trace_id = bytes(16)  # invalid: kept, not correlated
    sl.log_records[2].observed_time_unix_nano = 0
    sl.log_records[2].time_unix_nano = 0
    return req


def test_logs_json_and_protobuf_store_identical_rows() -> None:
    proto, js, sp, sj = _both(_logs(), "logs")
    assert len(proto["logs"]) == 3
    assert js == proto
    assert sj.warnings == sp.warnings == [
        "resourceLogs[0].scopeLogs[0].logRecords[2]: invalid trace id; record kept as not "
        "correlated"]


def _metrics() -> Any:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.append(kv("service.name", "msvc"))
    sm = rm.scope_metrics.add()
    sm.scope.name = "meter"
    g = sm.metrics.add(name="g", unit="1", description="gauge")
    p = g.gauge.data_points.add(time_unix_nano=T0, as_int=2**60)
    p.attributes.append(kv("a", "b"))
    s = sm.metrics.add(name="s")
    s.sum.aggregation_temporality, s.sum.is_monotonic = 2, True
    s.sum.data_points.add(start_time_unix_nano=T0 - 1, time_unix_nano=T0, as_double=1.5,
                          flags=1)
    h = sm.metrics.add(name="h")
    h.histogram.aggregation_temporality = 1
    hp = h.histogram.data_points.add(time_unix_nano=T0, count=3, sum=6.0, min=1.0, max=3.0,
                                     bucket_counts=[1, 2], explicit_bounds=[2.0])
    ex = hp.exemplars.add(time_unix_nano=T0 - 2, as_int=4)
    ex.trace_id, ex.span_id = (5).to_bytes(16, "big"), (6).to_bytes(8, "big")
    hp.exemplars.add(time_unix_nano=T0 - 3, as_double=0.5, span_id=bytes(8))
    h.histogram.data_points.add(time_unix_nano=T0, count=9, bucket_counts=[1, 2],
                                explicit_bounds=[2.0])  # count != sum: rejected
    e = sm.metrics.add(name="e")
    ep = e.exponential_histogram.data_points.add(time_unix_nano=T0, count=6, scale=-2,
                                                 zero_count=1, zero_threshold=0.001)
    ep.positive.offset, ep.negative.offset = -3, 2
    ep.positive.bucket_counts.extend([2, 1])
    ep.negative.bucket_counts.extend([2])
    q = sm.metrics.add(name="q")
    qp = q.summary.data_points.add(time_unix_nano=T0, count=4, sum=10.0)
    qp.quantile_values.add(quantile=0.5, value=2.0)
    qp.quantile_values.add(quantile=1.0, value=4.0)
    sm.metrics.add(name="nodata")
    return req


def test_metrics_json_and_protobuf_store_identical_rows() -> None:
    proto, js, sp, sj = _both(_metrics(), "metrics")
    assert len(proto["metric_points"]) == 5
    assert js == proto
    assert [(d.location, d.reason) for d in sj.dead_letters] == [
        (d.location, d.reason) for d in sp.dead_letters] == [
        ("resourceMetrics[0].scopeMetrics[0].metrics[2] ('h').dataPoints[1]",
         "histogram count 9 != sum of bucket counts 3"),
        ("resourceMetrics[0].scopeMetrics[0].metrics[5] ('nodata')",
         "metric has no data (gauge/sum/histogram/...)")]


def _one_span(**fields: Any) -> tuple[list[dict[str, Any]], _Found]:
    sp = {"traceId": "0AF7651916CD43DD8448EB211C80319C", "spanId": "b7ad6b7169203331",
          "name": "n", **fields}
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [sp]}]}]}
    chunks = list(decode_json(json.dumps(doc).encode(), "traces", DecodeState()))
    return _rows(chunks)["spans"], _Found(chunks)


def test_proto_field_names_enum_names_and_64_bit_forms() -> None:
    rows, state = _one_span(
        trace_id="0af7651916cd43dd8448eb211c80319d", start_time_unix_nano=1e3,
        endTimeUnixNano="1544712661000000001", kind="SPAN_KIND_PRODUCER",
        status={"code": "STATUS_CODE_ERROR", "message": "m"}, flags="257",
        dropped_attributes_count=3, unknownField={"x": 1},
        attributes=[{"key": "d", "value": {"double_value": "NaN"}},
                    {"key": "i", "value": {"intValue": 7}},
                    {"key": "inf", "value": {"doubleValue": "-Infinity"}},
                    {"key": "b", "value": {"bytesValue": "AP8Q"}}])
    assert state.dead_letters == []
    [r] = rows
    assert (r["trace_id"], r["start_time_unix_nano"], r["end_time_unix_nano"], r["kind"],
            r["status_code"], r["flags"]) == (
        "0af7651916cd43dd8448eb211c80319d", 1000, 1544712661000000001, "PRODUCER", "ERROR",
        257)
    assert math.isnan(dict(r["attr_double"])["d"]) and dict(r["attr_double"])["inf"] == -math.inf
    assert dict(r["attr_int"]) == {"i": 7}
    assert json.loads(r["attr_json"]) == {"b": {"bytes": "AP8Q"}}


@pytest.mark.parametrize(("fields", "reason"), [
    ({"startTimeUnixNano": 1.5}, "Failed to parse startTimeUnixNano field: Couldn't parse "
                                 "integer: 1.5."),
    ({"endTimeUnixNano": True}, "Failed to parse endTimeUnixNano field: Bool value True is not "
                                "acceptable for integer field."),
    ({"startTimeUnixNano": -1}, "Failed to parse startTimeUnixNano field: Value out of range: "
                                "-1."),
    ({"flags": 2**32}, "Failed to parse flags field: Value out of range: 4294967296."),
    ({"droppedLinksCount": "x"}, "Failed to parse droppedLinksCount field: invalid literal for "
                                 "int() with base 10: 'x'."),
    ({"status": {"message": 3}}, "Failed to parse status.message field: expected string or "
                                 "bytes-like object, got 'int'."),
    ({"attributes": [{"key": "a", "value": {"stringValue": "x", "intValue": "3"}}]},
     'Failed to parse attributes[0].value field: AnyValue should not have multiple "value" '
     "oneof fields."),
    ({"attributes": [{"key": "a", "value": {"arrayValue": {"values": [{"intValue": "q"}]}}}]},
     "Failed to parse attributes[0].value.arrayValue.values[0].intValue field: invalid literal "
     "for int() with base 10: 'q'."),
    ({"attributes": [{"key": "a", "value": {"boolValue": "true"}}]},
     "Failed to parse attributes[0].value.boolValue field: Expected true or false without "
     "quotes."),
    ({"attributes": [{"key": "a", "value": {"doubleValue": "nan"}}]},
     'Failed to parse attributes[0].value.doubleValue field: Couldn\'t parse float "nan", use '
     '"NaN" instead.'),
    ({"events": [{"timeUnixNano": "x"}]},
     "Failed to parse events[0].timeUnixNano field: invalid literal for int() with base 10: "
     "'x'."),
    ({"links": [{"traceId": "abc"}]}, "links[0].traceId 'abc' must be 32 hex characters, got 3"),
    ({"links": [None]}, "Failed to parse links[0] field: null is not allowed to be used as an "
                        "element in a repeated field."),
    ({"kind": [1]}, "Failed to parse kind field: expected an enum name or number, got a list."),
    ({"status": "oops"}, "Failed to parse status field: expected a JSON object, got a string."),
    ({"parentSpanId": "0000000000000000"},
     "parent span id must be empty or 8 non-zero bytes, got '0000000000000000'"),
])
def test_wrong_types_name_the_field(fields: dict[str, Any], reason: str) -> None:
    rows, state = _one_span(**fields)
    assert rows == []
    [dl] = state.dead_letters
    assert (dl.location, dl.reason) == ("resourceSpans[0].scopeSpans[0].spans[0]", reason)


def test_json_lines_cut_exact_chunks_and_name_the_line() -> None:
    import io

    req = trace_request([span(1, i + 1) for i in range(5)])
    line = json.dumps(_hex_ids(MessageToDict(req)))
    bad = line.replace('"name": "op"', '"name": 5', 1)
    data = "\n".join([line, bad, line.replace('"svc"', '"svc2"')]).encode() + b"\n"
    state = DecodeState(DecodeOptions(chunk_records=4))
    chunks = list(_otlp_lines(io.BytesIO(data), "traces", state))
    sizes = [c.spans.num_rows for c in chunks if c.spans is not None]
    assert sizes == [4, 4, 4, 2]
    dead = [d for c in chunks for d in c.dead_letters]
    assert [(d.location, d.reason) for d in dead] == [
        ("line 2: resourceSpans[0].scopeSpans[0].spans[0]",
         "Failed to parse name field: expected string or bytes-like object, got 'int'.")]
