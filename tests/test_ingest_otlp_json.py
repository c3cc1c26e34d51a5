"""OTLP/JSON rules (OTLP-NOTES.md): hex ids (not base64), 64-bit ints as strings or numbers,
integer or named enums, unknown fields ignored, all-zero ids invalid. Fixtures are modelled
on the opentelemetry-proto repository's examples/{trace,logs,metrics}.json."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from conftest import FIXTURES
from google.protobuf.json_format import Parse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from sloengine.engine import Engine

OTLP = FIXTURES / "otlp"


def test_spec_trace_example(engine: Engine) -> None:
    [r] = engine.ingest([OTLP / "trace.json"])
    assert (r.info.format, r.info.signal, r.counts.accepted["spans"], r.counts.rejected) == (
        "otlp-json", "traces", 1, 0)
    row = engine.store.rows(
        "SELECT trace_id, span_id, parent_span_id, name, kind, service_name, scope_name,"
        " scope_version, start_time_unix_nano, end_time_unix_nano, duration_ns, status_code,"
        " status_message, is_error, http_status_code, attr_str FROM spans")
    assert row == [(
        "5b8efff798038103d269b633813fc60c",  # upper-case hex accepted, stored lower-case
        "eee19b7ec3c1b174",
        "eee19b7ec3c1b173",
        "I'm a server span",
        "SERVER",  # kind 2 on the wire
        "my.service",
        "my.library",
        "1.0.0",
        1544712660000000000,  # a JSON number
        1544712661000000001,  # a JSON string, exact to the nanosecond (beyond double precision)
        1000000001,
        "ERROR",
        "upstream unavailable",
        True,
        503,  # intValue given as a string
        {"my.span.attr": "some value"},
    )]


def test_hex_id_trap_stock_json_format_corrupts_ids(engine: Engine) -> None:
    """protobuf's json_format reads the hex id as base64: 32 hex chars → 24 wrong bytes."""
    doc = (OTLP / "trace.json").read_text()
    stock = Parse(doc, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    corrupted = stock.resource_spans[0].scope_spans[0].spans[0].trace_id
    assert len(corrupted) == 24
    assert corrupted == base64.b64decode("5B8EFFF798038103D269B633813FC60C")
    engine.ingest([OTLP / "trace.json"])
    assert engine.store.one("SELECT trace_id FROM spans") == "5b8efff798038103d269b633813fc60c"


def test_spec_logs_example_typed_attributes(engine: Engine) -> None:
    [r] = engine.ingest([OTLP / "logs.json"])
    assert r.counts.accepted["logs"] == 1 and r.counts.rejected == 0
    row = engine.store.rows(
        "SELECT time_unix_nano, severity_number, severity_text, body, trace_id, span_id,"
        " service_name, attr_str, attr_int, attr_double, attr_bool, attr_json, source_kind "
        "FROM logs")
    assert row == [(
        1544712660300000000, 10, "Information", "Example log record",
        "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "my.service",
        {"string.attribute": "some string"}, {"int.attribute": 10},
        {"double.attribute": 637.704}, {"boolean.attribute": True},
        json.dumps({"array.attribute": ["many", "values"],
                    "map.attribute": {"some.map.key": "some value"}}, separators=(",", ":")),
        "otlp",
    )]


def test_spec_metrics_example_all_point_kinds(engine: Engine) -> None:
    [r] = engine.ingest([OTLP / "metrics.json"])
    assert r.counts.accepted["metric_points"] == 4
    # The second histogram point has 3 bucket counts for 1 bound: rejected, with the reason.
    assert r.counts.rejected == 1
    [err] = r.errors
    assert err.location == (
        "resourceMetrics[0].scopeMetrics[0].metrics[2] ('my.histogram').dataPoints[1]")
    assert err.reason == ("histogram has 3 bucket counts for 1 explicit bounds "
                          "(must be bounds + 1)")
    got = engine.store.rows(
        "SELECT metric_name, metric_type, temporality, is_monotonic, value, value_int, count,"
        " bucket_counts, explicit_bounds, scale, zero_count, positive_offset,"
        " positive_bucket_counts, attributes FROM metric_points ORDER BY metric_name")
    assert got == [
        ("my.counter", "sum", "delta", True, 5.0, None, None, None, None, None, None, None, None,
         {"my.counter.attr": "some value"}),
        ("my.exponential", "exponential_histogram", "delta", None, None, None, 6, None, None, 2,
         1, 3, [2, 3], {}),
        # asInt beyond 2**53 is kept exactly in value_int
        ("my.gauge", "gauge", None, None, 9007199254740992.0, 9007199254740993, None, None,
         None, None, None, None, None, {"my.gauge.attr": "some value"}),
        ("my.histogram", "histogram", "cumulative", None, None, None, 3, [1, 1, 1], [1.0, 2.0],
         None, None, None, None, {"my.histogram.attr": "some value"}),
    ]
    ex = engine.store.one("SELECT exemplars FROM metric_points WHERE metric_name='my.histogram'")
    assert ex == [{"time_unix_nano": 1544712660200000000, "value": 1.5,
                   "trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b174"}]


def _doc(spans: list[dict[str, object]]) -> dict[str, object]:
    return {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "s"}}]},
        "scopeSpans": [{"spans": spans}]}]}


GOOD = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
        "name": "ok", "kind": "SPAN_KIND_CLIENT", "startTimeUnixNano": "1", "endTimeUnixNano": "2"}


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({**GOOD, "traceId": "00000000000000000000000000000000"}, "trace id is all zeros"),
        ({**GOOD, "spanId": "0000000000000000"}, "span id is all zeros"),
        ({**GOOD, "traceId": ""}, "trace id must be 16 bytes, got 0"),
        ({**GOOD, "traceId": "CvdlGRbNQ92ESOshHIAxnA=="},
         "traceId 'CvdlGRbNQ92ESOshHIAxnA==' must be 32 hex characters, got 24"),
        ({**GOOD, "spanId": "b7ad6b716920333z"}, "spanId 'b7ad6b716920333z' is not hex"),
        ({**GOOD, "startTimeUnixNano": "yesterday"}, "Failed to parse startTimeUnixNano field"),
        ({**GOOD, "attributes": {"key": "not a list"}}, "attributes"),
        ({**GOOD, "name": 17}, "name"),
    ],
)
def test_bad_span_is_dead_lettered_and_siblings_land(
    tmp_path: Path, engine: Engine, bad: dict[str, object], reason: str
) -> None:
    other = {**GOOD, "spanId": "b7ad6b7169203332"}
    f = tmp_path / "spans.json"
    f.write_text(json.dumps(_doc([GOOD, bad, other])))
    [r] = engine.ingest([f])
    assert r.counts.accepted["spans"] == 2
    assert r.counts.rejected == 1
    [dl] = engine.store.rows("SELECT location, reason, raw, source, batch_id FROM dead_letters")
    assert dl[0] == "resourceSpans[0].scopeSpans[0].spans[1]"
    assert reason in dl[1]
    assert json.loads(dl[2]) == bad
    assert dl[3] == str(f) and dl[4] == r.batch_id
    kinds = {k for (k,) in engine.store.rows("SELECT DISTINCT kind FROM spans")}
    assert kinds == {"CLIENT"}  # enum names are accepted too


def test_unknown_enum_name_is_unspecified_not_an_error(tmp_path: Path, engine: Engine) -> None:
    f = tmp_path / "spans.json"
    f.write_text(json.dumps(_doc([{**GOOD, "kind": "SPAN_KIND_SIDEWAYS"}])))
    [r] = engine.ingest([f])
    assert r.counts.rejected == 0
    assert engine.store.one("SELECT kind FROM spans") == "UNSPECIFIED"


def test_log_with_invalid_ids_is_kept_uncorrelated(tmp_path: Path, engine: Engine) -> None:
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": "5", "body": {"stringValue": "x"}, "traceId": "abc", "spanId": "zz"}]}]}]}
    f = tmp_path / "logs.json"
    f.write_text(json.dumps(doc))
    [r] = engine.ingest([f])
    assert r.counts.accepted["logs"] == 1 and r.counts.rejected == 0
    assert any("not correlated" in w for w in r.warnings)
    assert engine.store.rows("SELECT trace_id, span_id, body FROM logs") == [(None, None, "x")]
