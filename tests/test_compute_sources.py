"""Buckets from every kind of source, against hand-computed numbers: spans (ratio, latency,
filters, groupBy), logs (access-log status and latency), OTLP metrics (cumulative counters
with a reset, delta counters, histogram latency exact and interpolated), late data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from otlp_factory import T0, span, trace_request
from slo_helpers import load_one

from sloengine.compute import materialize
from sloengine.engine import Engine

M0 = T0 // 60_000_000_000  # minute of T0


def buckets(engine: Engine, name: str) -> list[tuple[Any, ...]]:
    return engine.store.rows(
        "SELECT grp, minute - ?, good, total FROM slo_buckets WHERE slo_name = ? "
        "ORDER BY grp, minute", [M0, name])


def _spans_file(tmp: Path) -> Path:
    sp = []
    # minute 0: 4 server spans on two routes (one 503, one slow), 1 client span (ignored)
    sp.append(span(1, 1, start_ms=0, dur_ms=100, attrs={"http.route": "/a",
                   "http.response.status_code": 200, "tenant.id": "t1"}))
    sp.append(span(1, 2, start_ms=1000, dur_ms=900, attrs={"http.route": "/a",
                   "http.response.status_code": 200, "tenant.id": "t2"}))
    sp.append(span(1, 3, start_ms=2000, dur_ms=50, attrs={"http.route": "/b",
                   "http.response.status_code": 503, "tenant.id": "t1"}))
    sp.append(span(1, 4, start_ms=3000, dur_ms=20, attrs={"http.route": "/b",
                   "http.response.status_code": 404}))
    sp.append(span(1, 5, start_ms=4000, dur_ms=20, kind=3,
                   attrs={"http.response.status_code": 500}))
    # minute 2 (by END time: starts in minute 1, ends in minute 2)
    sp.append(span(1, 6, start_ms=119_950, dur_ms=100, attrs={"http.route": "/a",
                   "http.response.status_code": 500}))
    f = tmp / "s.traces.pb"
    f.write_bytes(trace_request(sp, "gw").SerializeToString())
    return f


def test_span_ratio_latency_filters_and_groups(tmp_path: Path, engine: Engine) -> None:
    engine.ingest([_spans_file(tmp_path)])
    ratio = load_one(tmp_path, {
        "indicator": {"kind": "ratio", "total": {"source": "spans",
                                                 "where": {"service": "gw", "kind": "SERVER"}},
                      "bad": {"status_code": {"gte": 500}}},
        "objectives": [{"target": 0.99}], "window": {"rolling": "1d"}}, "ratio")
    lat = load_one(tmp_path, {
        "indicator": {"kind": "latency", "total": {"source": "spans", "where": {
            "kind": "SERVER", "route": ["/a", "/b"]}}, "threshold": "500ms"},
        "groupBy": ["route"],
        "objectives": [{"target": 0.99}], "window": {"rolling": "1d"}}, "lat")
    tenant = load_one(tmp_path, {
        "indicator": {"kind": "ratio", "total": {"source": "spans", "where": {
            "attr.tenant.id": {"exists": True}}}, "good": {"error": False}},
        "groupBy": ["attr.tenant.id"],
        "objectives": [{"target": 0.99}], "window": {"rolling": "1d"}}, "tenant")
    for s in (ratio, lat, tenant):
        materialize(engine.store, s.slo)
    # server spans: minute 0 → 4 events, 1 bad (503; the 404 is not a server error)
    assert buckets(engine, "ratio") == [("", 0, 3.0, 4.0), ("", 2, 0.0, 1.0)]
    assert buckets(engine, "lat") == [("route=/a", 0, 1.0, 2.0), ("route=/a", 2, 1.0, 1.0),
                                      ("route=/b", 0, 2.0, 2.0)]
    assert buckets(engine, "tenant") == [("attr.tenant.id=t1", 0, 1.0, 2.0),
                                         ("attr.tenant.id=t2", 0, 1.0, 1.0)]


def test_late_data_updates_buckets_and_lateness_limit(tmp_path: Path, engine: Engine) -> None:
    slo = load_one(tmp_path, {
        "indicator": {"kind": "ratio", "total": {"source": "spans"}, "bad": {"error": True}},
        "objectives": [{"target": 0.99}], "window": {"rolling": "30d"}})
    first = tmp_path / "a.traces.pb"
    first.write_bytes(trace_request([span(1, 1, start_ms=0), span(1, 2, start_ms=600_000)]
                                    ).SerializeToString())
    engine.ingest([first])
    assert materialize(engine.store, slo.slo)["rebuild"] is True
    # a late span for minute 0 arrives: the minute is recomputed
    late = tmp_path / "b.traces.pb"
    late.write_bytes(trace_request([span(2, 1, start_ms=10, status=2)]).SerializeToString())
    engine.ingest([late])
    done = materialize(engine.store, slo.slo, lateness_minutes=60)
    assert (done["rebuild"], done["late_minutes_skipped"]) == (False, 0)
    assert buckets(engine, "s") == [("", 0, 1.0, 2.0), ("", 10, 1.0, 1.0)]
    # nothing new: nothing to do, same buckets (idempotent)
    assert materialize(engine.store, slo.slo)["minutes"] == 0
    # data later than the lateness window behind the newest bucket is not applied
    too_late = tmp_path / "c.traces.pb"
    too_late.write_bytes(trace_request([span(3, 1, start_ms=0, status=2)]).SerializeToString())
    engine.ingest([too_late])
    done = materialize(engine.store, slo.slo, lateness_minutes=5)
    assert done["late_minutes_skipped"] == 5  # minutes 0..4 are closed
    assert buckets(engine, "s") == [("", 0, 1.0, 2.0), ("", 10, 1.0, 1.0)]


def test_log_sources_status_and_latency(tmp_path: Path, engine: Engine) -> None:
    lines = [{"ts": (T0 // 1_000_000_000) + i * 20, "status": st, "route": "/x",
              "latency_ms": lat} for i, (st, lat) in enumerate(
                  [(200, 100), (500, 50), (200, 700), (404, 30), (200, None)])]
    f = tmp_path / "access.jsonl"
    f.write_text("\n".join(json.dumps({k: v for k, v in x.items() if v is not None})
                           for x in lines) + "\n")
    engine.ingest([f])
    avail = load_one(tmp_path, {
        "indicator": {"kind": "ratio", "total": {"source": "logs",
                                                 "where": {"source_kind": "accesslog"}},
                      "bad": {"status_code": {"gte": 500}}},
        "objectives": [{"target": 0.99}], "window": {"rolling": "1d"}}, "avail")
    lat = load_one(tmp_path, {
        "indicator": {"kind": "latency", "total": {"source": "logs"}, "threshold": "500ms"},
        "objectives": [{"target": 0.99}], "window": {"rolling": "1d"}}, "lat")
    materialize(engine.store, avail.slo)
    materialize(engine.store, lat.slo)
    # minutes: lines at +0s, +20s, +40s → minute 0; +60s, +80s → minute 1
    assert buckets(engine, "avail") == [("", 0, 2.0, 3.0), ("", 1, 2.0, 2.0)]
    # the line without latency is not an event of a latency SLI
    assert buckets(engine, "lat") == [("", 0, 2.0, 3.0), ("", 1, 1.0, 1.0)]


def _metrics_doc(points: list[dict[str, Any]], kind: str, metric: str, unit: str = "s",
                 temporality: int = 2) -> dict[str, Any]:
    data: dict[str, Any] = {"aggregationTemporality": temporality, "dataPoints": points}
    if kind == "sum":
        data["isMonotonic"] = True
    return {"resourceMetrics": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "gw"}}]},
        "scopeMetrics": [{"metrics": [{"name": metric, "unit": unit, kind: data}]}]}]}


def _pt(minute: int, **fields: Any) -> dict[str, Any]:
    return {"startTimeUnixNano": str(T0), "timeUnixNano": str(T0 + minute * 60_000_000_000
                                                               + 30_000_000_000), **fields}


def test_metric_counters_cumulative_with_reset(tmp_path: Path, engine: Engine) -> None:
    code = {"key": "code", "value": {"stringValue": "500"}}
    ok = {"key": "code", "value": {"stringValue": "200"}}
    pts = [
        _pt(0, asInt="100", attributes=[ok]), _pt(1, asInt="150", attributes=[ok]),
        _pt(2, asInt="20", attributes=[ok]),  # reset: the increase is 20
        _pt(0, asInt="1", attributes=[code]), _pt(1, asInt="4", attributes=[code]),
        _pt(2, asInt="4", attributes=[code]),
    ]
    f = tmp_path / "m.json"
    f.write_text(json.dumps(_metrics_doc(pts, "sum", "http.requests", unit="1")))
    engine.ingest([f])
    slo = load_one(tmp_path, {
        "indicator": {"kind": "ratio", "total": {"source": "metrics", "metric": "http.requests"},
                      "bad": {"attr.code": "500"}},
        "objectives": [{"target": 0.99}], "window": {"rolling": "1d"}})
    materialize(engine.store, slo.slo)
    # first points count since their start time: 101 total, 1 bad
    assert buckets(engine, "s") == [("", 0, 100.0, 101.0), ("", 1, 50.0, 53.0),
                                    ("", 2, 20.0, 20.0)]


def test_metric_histogram_latency_exact_and_interpolated(tmp_path: Path,
                                                         engine: Engine) -> None:
    bounds = [0.1, 0.5, 1.0]
    pts = [_pt(0, count="10", sum=3, bucketCounts=["4", "4", "2", "0"], explicitBounds=bounds),
           _pt(1, count="20", sum=9, bucketCounts=["6", "8", "4", "2"], explicitBounds=bounds)]
    f = tmp_path / "h.json"
    f.write_text(json.dumps(_metrics_doc(pts, "histogram", "http.server.request.duration")))
    engine.ingest([f])
    exact = load_one(tmp_path, {
        "indicator": {"kind": "latency", "total": {
            "source": "metrics", "metric": "http.server.request.duration"},
            "threshold": "500ms"},
        "objectives": [{"target": 0.99}], "window": {"rolling": "1d"}}, "exact")
    interp = load_one(tmp_path, {
        "indicator": {"kind": "latency", "total": {
            "source": "metrics", "metric": "http.server.request.duration"},
            "threshold": "750ms"},
        "objectives": [{"target": 0.99}], "window": {"rolling": "1d"}}, "interp")
    done = materialize(engine.store, exact.slo)
    materialize(engine.store, interp.slo)
    assert "interpolated" in done["note"]
    # ≤ 0.5 s: buckets 1–2. Minute 0: 8 of 10; minute 1 (cumulative diff): (6+8)-(4+4)=6 of 10
    assert buckets(engine, "exact") == [("", 0, 8.0, 10.0), ("", 1, 6.0, 10.0)]
    # ≤ 0.75 s: half of the (0.5, 1.0] bucket is interpolated as good
    assert buckets(engine, "interp") == [("", 0, 9.0, 10.0), ("", 1, 7.0, 10.0)]
