"""Bad input never crashes ingest and never vanishes: good records land, each bad one is a
dead letter with raw bytes and reason, and the CLI names file and line and exits 1."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from conftest import run_cli
from otlp_factory import span, trace_request

from sloengine.engine import Engine


def _three_resources() -> bytes:
    req = trace_request([span(1, 1, name="a"), span(1, 2, 1, name="b")], service="one")
    req.resource_spans.extend(trace_request([span(2, 3, name="c")], "two").resource_spans)
    req.resource_spans.extend(
        trace_request([span(3, 4, name="d"), span(3, 5, 4, name="e")], "three").resource_spans)
    return req.SerializeToString()


def test_truncated_protobuf_keeps_every_complete_span(tmp_path: Path, engine: Engine) -> None:
    data = _three_resources()
    f = tmp_path / "cut.traces.binpb"
    f.write_bytes(data[:-30])  # cut inside the last span of the last resource
    [r] = engine.ingest([f])
    assert r.counts.accepted["spans"] == 4
    assert r.counts.rejected == 1
    assert sorted(n for (n,) in engine.store.rows("SELECT name FROM spans")) == [
        "a", "b", "c", "d"]
    [(loc, reason, raw)] = engine.store.rows("SELECT location, reason, raw FROM dead_letters")
    assert loc == "resourceSpans[2].scopeSpans[0].spans[1]"
    assert reason == "truncated protobuf: the record is cut off"
    assert data[:-30].endswith(raw)
    # the service of the truncated resource is still known for the spans that survived
    assert engine.store.rows("SELECT service_name FROM spans WHERE name = 'd'") == [("three",)]


def test_invalid_utf8_in_one_span_rejects_only_that_span(tmp_path: Path, engine: Engine) -> None:
    marker = b"MARKER_NAME"
    req = trace_request([span(1, 1, name="good"), span(1, 2, name=marker.decode()),
                         span(1, 3, name="also good")])
    data = req.SerializeToString().replace(marker, b"\xff\xfe" + marker[2:])
    f = tmp_path / "bad-utf8.traces.pb"
    f.write_bytes(data)
    [r] = engine.ingest([f])
    assert (r.counts.accepted["spans"], r.counts.rejected) == (2, 1)
    assert engine.store.one("SELECT location FROM dead_letters") == (
        "resourceSpans[0].scopeSpans[0].spans[1]")


def test_garbage_protobuf_is_one_dead_letter(tmp_path: Path, engine: Engine) -> None:
    f = tmp_path / "garbage.traces.pb"
    f.write_bytes(b"\x0a\xff\xff\xff\xff\x0f" + b"x" * 10)
    [r] = engine.ingest([f])
    assert r.counts.rejected == 1
    assert engine.store.one("SELECT count(*) FROM spans") == 0


def test_broken_json_lines_name_the_line(tmp_path: Path, engine: Engine) -> None:
    good = trace_request([span(7, 1, name="x")])
    from google.protobuf.json_format import MessageToJson

    line = json.loads(MessageToJson(good))
    # hex ids as OTLP/JSON wants them
    sp = line["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    sp["traceId"], sp["spanId"] = "0" * 31 + "7", "0" * 15 + "1"
    sp2 = {**sp, "spanId": "0" * 15 + "2", "name": "y"}
    line2 = json.loads(json.dumps(line))
    line2["resourceSpans"][0]["scopeSpans"][0]["spans"] = [sp2]
    f = tmp_path / "collector.jsonl"
    f.write_text("\n".join([json.dumps(line), '{"resourceSpans": [ {broken', "",
                            json.dumps(line2), '"just a string"']) + "\n")
    [r] = engine.ingest([f])
    assert r.info.format == "otlp-jsonl"
    assert r.counts.accepted["spans"] == 2
    locs = sorted((e.location, e.reason.split(":")[0]) for e in r.errors)
    assert locs == [("line 2", "invalid JSON"), ("line 5", "not an OTLP request")]
    assert engine.store.rows("SELECT raw FROM dead_letters WHERE location = 'line 2'") == [
        (b'{"resourceSpans": [ {broken',)]


def test_access_log_bad_lines_and_cli_report(tmp_path: Path) -> None:
    lines = [
        {"ts": "2026-11-20T10:00:00.000Z", "method": "GET", "route": "/orders/{id}",
         "path": "/orders/9", "status": 200, "latency_ms": 12.5, "request_id": "req-1",
         "trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331"},
        {"ts": "not a time", "status": 200},
        {"ts": "2026-11-20T10:00:01Z", "status": "teapot"},
        {"ts": 1795168802.5, "method": "POST", "route": "/orders", "status": 503,
         "latency_ms": 800, "request_id": "req-2"},
        {"method": "GET", "status": 200},
    ]
    text = "\n".join(json.dumps(x) for x in lines[:3]) + "\n{oops\n" + "\n".join(
        json.dumps(x) for x in lines[3:]) + "\n"
    f = tmp_path / "gateway-access.jsonl.gz"
    f.write_bytes(gzip.compress(text.encode()))
    db = tmp_path / "cli.duckdb"
    proc = run_cli("ingest", str(f), "--db", str(db))
    assert proc.returncode == 1, proc.stderr
    assert "4 record(s) rejected and kept in table dead_letters:" in proc.stderr
    assert f"{f}: line 2: timestamp 'not a time' is not ISO 8601" in proc.stderr
    assert f"{f}: line 3: field 'status' (status) must be an integer, got 'teapot'" in proc.stderr
    assert f"{f}: line 4: invalid JSON" in proc.stderr
    assert f"{f}: line 6: field 'ts' (timestamp) is missing" in proc.stderr

    proc = run_cli("ingest", str(f), "--db", str(db), "--json")
    out = json.loads(proc.stdout)
    assert out["schema"] == "sloengine.ingest/v1"
    assert out["files"][0]["duplicate_of"] == 1  # same bytes: nothing stored again
    assert proc.returncode == 0

    eng_rows = _query(db, "SELECT time_unix_nano, http_route, http_method, http_status_code,"
                          " duration_ns, correlation_id, trace_id, severity_text, source_kind"
                          " FROM logs ORDER BY time_unix_nano")
    assert eng_rows == [
        (1795168800000000000, "/orders/{id}", "GET", 200, 12_500_000, "req-1",
         "0af7651916cd43dd8448eb211c80319c", "INFO", "accesslog"),
        (1795168802500000000, "/orders", "POST", 503, 800_000_000, "req-2", None, "ERROR",
         "accesslog"),
    ]


def test_access_log_mapping_is_configurable(tmp_path: Path) -> None:
    cfg = tmp_path / "sloengine.yaml"
    cfg.write_text("access_log:\n  timestamp: time\n  status: code\n  latency: dur_s\n"
                   "  latency_unit: s\n  route: upstream_route\n  correlation_id: x_req\n")
    f = tmp_path / "envoy.log"
    f.write_text(json.dumps({"time": "2026-11-20T10:00:00+01:00", "code": 504, "dur_s": 1.25,
                             "upstream_route": "/pay", "x_req": "abc"}) + "\n")
    db = tmp_path / "m.duckdb"
    proc = run_cli("ingest", str(f), "--db", str(db), "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr
    assert _query(db, "SELECT time_unix_nano, http_status_code, duration_ns, http_route,"
                      " correlation_id FROM logs") == [
        (1795165200000000000, 504, 1_250_000_000, "/pay", "abc")]


def test_truncated_gzip_keeps_lines_before_the_cut(tmp_path: Path, engine: Engine) -> None:
    text = "".join(json.dumps({"ts": 1763632800 + i, "status": 200, "route": "/r"}) + "\n"
                   for i in range(3000))
    data = gzip.compress(text.encode())
    f = tmp_path / "access.jsonl.gz"
    f.write_bytes(data[: len(data) // 2])
    [r] = engine.ingest([f])
    assert 0 < r.counts.accepted["logs"] < 3000
    assert r.counts.rejected >= 1
    reasons = [e.reason for e in r.errors]
    assert any(x.startswith("file cannot be read to the end") for x in reasons)


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    proc = run_cli("ingest", str(tmp_path / "nope.pb"), "--db", str(tmp_path / "x.duckdb"))
    assert proc.returncode == 2
    missing = tmp_path / "nope.pb"
    assert proc.stderr.strip() == f"sloengine: error: {missing}: no such file or folder"


def _query(db: Path, sql: str) -> list[tuple[object, ...]]:
    from sloengine.store import Store

    with Store(db, read_only=True) as s:
        return s.rows(sql)


def test_out_of_range_http_status_is_a_warning_not_a_crash(tmp_path: Path,
                                                             engine: Engine) -> None:
    req = trace_request([span(1, 1, attrs={"http.response.status_code": 2**40}),
                         span(1, 2, attrs={"http.response.status_code": float("inf")}),
                         span(1, 3, attrs={"http.response.status_code": 503})])
    f = tmp_path / "status.traces.pb"
    f.write_bytes(req.SerializeToString())
    [r] = engine.ingest([f])
    assert (r.counts.accepted["spans"], r.counts.rejected) == (3, 0)
    assert sum("is not an HTTP status" in w for w in r.warnings) == 2
    assert engine.store.rows("SELECT http_status_code FROM spans ORDER BY span_id") == [
        (None,), (None,), (503,)]
