"""Files produced by the real OpenTelemetry Python SDK exporters, in both encodings:
protobuf bodies captured from OTLPSpanExporter/OTLPLogExporter/OTLPMetricExporter posting to a
local HTTP server, and JSON Lines written by the OTLP JSON file exporters."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from otlp_factory import sdk_spans

from sloengine.engine import Engine


class _Capture(BaseHTTPRequestHandler):
    bodies: ClassVar[dict[str, list[bytes]]] = {}

    def do_POST(self) -> None:
        n = int(self.headers["Content-Length"])
        body = self.rfile.read(n)
        if self.headers.get("Content-Encoding") == "gzip":
            import gzip

            body = gzip.decompress(body)
        self.bodies.setdefault(self.path, []).append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, dict[str, list[bytes]]]]:
    _Capture.bodies = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Capture.bodies
    server.shutdown()


def _emit_logs(processor: Any) -> None:
    from opentelemetry._logs import LogRecord, SeverityNumber
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.resources import Resource

    provider = LoggerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_log_record_processor(processor)
    logger = provider.get_logger("tests.sdk")
    t = 1_764_000_000_000_000_000
    logger.emit(LogRecord(timestamp=t, severity_number=SeverityNumber.ERROR,
                          severity_text="ERROR", body="payment failed for jane.doe@example.com",
                          attributes={"correlation.id": "req-42"}))
    logger.emit(LogRecord(timestamp=t + 1000, severity_number=SeverityNumber.INFO,
                          severity_text="INFO", body="order stored"))
    provider.shutdown()


def _record_metrics(exporter: Any) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=Resource.create({"service.name": "checkout"}),
                             metric_readers=[reader])
    meter = provider.get_meter("tests.sdk")
    counter = meter.create_counter("orders.created")
    hist = meter.create_histogram("http.server.request.duration", unit="s")
    gauge = meter.create_up_down_counter("queue.depth")
    counter.add(3, {"tenant": "a"})
    for v in (0.004, 0.02, 0.3, 1.7):
        hist.record(v, {"http.route": "/orders"})
    gauge.add(5)
    provider.shutdown()


def test_sdk_protobuf_exporters_all_signals(collector: Any, tmp_path: Path,
                                            engine: Engine) -> None:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

    url, bodies = collector
    _, spans = sdk_spans()
    assert OTLPSpanExporter(endpoint=f"{url}/v1/traces").export(spans).name == "SUCCESS"
    _emit_logs(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{url}/v1/logs")))
    _record_metrics(OTLPMetricExporter(endpoint=f"{url}/v1/metrics"))

    for path, name in (("/v1/traces", "traces.binpb"), ("/v1/logs", "logs.binpb"),
                       ("/v1/metrics", "metrics.binpb")):
        # Concatenated protobuf messages merge (repeated fields append): one file per signal.
        (tmp_path / name).write_bytes(b"".join(bodies[path]))
    results = engine.ingest([tmp_path])
    by_name = {Path(r.info.source).name: r for r in results}
    assert {n: r.info.signal for n, r in by_name.items()} == {
        "logs.binpb": "logs", "metrics.binpb": "metrics", "traces.binpb": "traces"}
    assert all(r.counts.rejected == 0 for r in results)

    got = engine.store.rows(
        "SELECT name, kind, service_name, status_code, is_error, http_route, http_status_code,"
        " db_system, db_namespace, correlation_id, event_count, parent_span_id IS NULL "
        "FROM spans ORDER BY start_time_unix_nano")
    assert got == [
        ("POST /orders", "SERVER", "checkout", "ERROR", True, "/orders", 502, None, None,
         "req-42", 0, True),
        ("INSERT orders", "CLIENT", "checkout", "ERROR", True, None, None, "postgresql",
         "orders", None, 1, False),
    ]
    # ids survive byte-for-byte: compare with what the SDK generated
    sdk_ids = sorted((format(s.context.trace_id, "032x"), format(s.context.span_id, "016x"))
                     for s in spans)
    assert sorted(engine.store.rows("SELECT trace_id, span_id FROM spans")) == sdk_ids
    ev = engine.store.rows("SELECT name, attributes FROM span_events")
    assert ev == [("retry", {"attempt": "2"})]

    logs = engine.store.rows(
        "SELECT severity_text, body, correlation_id FROM logs ORDER BY time_unix_nano")
    assert [r[0] for r in logs] == ["ERROR", "INFO"]
    assert logs[0][1].startswith("payment failed for [redacted:email:")
    assert "jane.doe" not in logs[0][1]
    assert logs[0][2] == "req-42"

    metrics = dict(engine.store.rows(
        "SELECT metric_name, metric_type || '/' || coalesce(temporality, '-') || '/' || "
        "coalesce(CAST(is_monotonic AS VARCHAR), '-') FROM metric_points"))
    assert metrics == {
        "orders.created": "sum/cumulative/true",
        "http.server.request.duration": "histogram/cumulative/-",
        "queue.depth": "sum/cumulative/false",
    }
    hist = engine.store.rows(
        "SELECT count, sum, bucket_counts, explicit_bounds[1:3] FROM metric_points "
        "WHERE metric_type = 'histogram'")
    assert hist[0][0] == 4
    assert hist[0][1] == pytest.approx(2.024)
    assert sum(hist[0][2]) == 4
    assert hist[0][3] == [0.0, 5.0, 10.0]


def test_sdk_json_file_exporters_all_signals(tmp_path: Path, engine: Engine) -> None:
    from opentelemetry.exporter.otlp.json.file._log_exporter import FileLogExporter
    from opentelemetry.exporter.otlp.json.file.metric_exporter import FileMetricExporter
    from opentelemetry.exporter.otlp.json.file.trace_exporter import FileSpanExporter
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

    _, spans = sdk_spans()
    FileSpanExporter(tmp_path / "traces.jsonl").export(spans)
    _emit_logs(SimpleLogRecordProcessor(FileLogExporter(tmp_path / "logs.jsonl")))
    _record_metrics(FileMetricExporter(tmp_path / "metrics.jsonl"))

    results = engine.ingest([tmp_path])
    assert sorted((Path(r.info.source).name, r.info.format, r.info.signal) for r in results) == [
        ("logs.jsonl", "otlp-jsonl", "logs"),
        ("metrics.jsonl", "otlp-jsonl", "metrics"),
        ("traces.jsonl", "otlp-jsonl", "traces"),
    ]
    assert all(r.counts.rejected == 0 for r in results)
    sdk_ids = sorted((format(s.context.trace_id, "032x"), format(s.context.span_id, "016x"))
                     for s in spans)
    assert sorted(engine.store.rows("SELECT trace_id, span_id FROM spans")) == sdk_ids
    assert engine.store.one("SELECT count(*) FROM logs") == 2
    assert engine.store.one("SELECT count(*) FROM metric_points") == 3
