"""The OTLP/HTTP receiver of a running ``sloengine run`` (a subprocess, as an operator runs
it), fed by the real OpenTelemetry Python SDK exporters — protobuf (with and without gzip)
and JSON — including a client's retry of the same batch, a full spool, and ``kill -9``
right after a 200."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from conftest import ROOT
from otlp_factory import sdk_spans, span, trace_request
from servers import free_port

from sloengine.store import Store


def _config(tmp_path: Path, **http: Any) -> tuple[Path, int]:
    port = free_port()
    inbox = tmp_path / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    extra = "".join(f", {k}: {v}" for k, v in http.items())
    cfg = tmp_path / "sloengine.yaml"
    cfg.write_text(
        f"db: {tmp_path / 'svc.duckdb'}\ninputs: [{inbox}]\nslo_dir: {ROOT / 'slo_definitions'}\n"
        f"metrics_port: 0\nlog_format: json\nhttp: {{port: {port}, auth: false{extra}}}\n"
        "schedule: {ingest_seconds: 3600, evaluate_seconds: 3600}\n")
    return cfg, port


def _start(cfg: Path) -> subprocess.Popen[str]:
    """The service, its output into a file (a pipe nobody reads could fill and block it)."""
    with (cfg.parent / "service.log").open("a") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "sloengine", "run", "--config", str(cfg)], cwd=cfg.parent,
            stdout=out, stderr=out, text=True, env={**os.environ})


def _log(cfg: Path) -> str:
    return (cfg.parent / "service.log").read_text()[-4000:]


def _wait(port: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("service exited")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError("receiver did not come up")


def _spool_empty(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json()[
                "spool_batches"] == 0:
            return
        time.sleep(0.05)
    raise AssertionError("spool not drained")


@contextmanager
def service(cfg: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    proc = _start(cfg)
    try:
        _wait(port, proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(f"no stop after SIGTERM: {_log(cfg)}") from None
        assert proc.returncode == 0, _log(cfg)


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with Store(db, read_only=True) as store:
        return store.rows(sql)


def test_sdk_exporters_send_to_a_running_service(tmp_path: Path) -> None:
    from opentelemetry.exporter.otlp.json.http._log_exporter import (
        OTLPLogExporter as JsonLogExporter,
    )
    from opentelemetry.exporter.otlp.json.http.metric_exporter import (
        OTLPMetricExporter as JsonMetricExporter,
    )
    from opentelemetry.exporter.otlp.json.http.trace_exporter import (
        OTLPSpanExporter as JsonSpanExporter,
    )
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.trace.export import SpanExportResult
    from test_ingest_sdk import _emit_logs, _record_metrics

    cfg, port = _config(tmp_path)
    url = f"http://127.0.0.1:{port}"
    _, spans = sdk_spans()
    with service(cfg, port):
        ok = SpanExportResult.SUCCESS
        proto = OTLPSpanExporter(endpoint=f"{url}/v1/traces")
        assert proto.export(spans) == ok
        # a client's retry of the same batch (its 200 was lost): stored once
        assert proto.export(spans) == ok
        # the same spans gzip'd, and as OTLP/JSON: other bytes, same span ids, stored once
        gz = OTLPSpanExporter(endpoint=f"{url}/v1/traces", compression=Compression.Gzip)
        assert gz.export(spans) == ok
        assert JsonSpanExporter(endpoint=f"{url}/v1/traces").export(spans) == ok
        _, other = sdk_spans()  # new ids
        assert JsonSpanExporter(endpoint=f"{url}/v1/traces").export(other) == ok
        _emit_logs(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{url}/v1/logs")))
        _record_metrics(OTLPMetricExporter(endpoint=f"{url}/v1/metrics"))
        _emit_logs(SimpleLogRecordProcessor(JsonLogExporter(endpoint=f"{url}/v1/logs")))
        _record_metrics(JsonMetricExporter(endpoint=f"{url}/v1/metrics"))
        _spool_empty(port)
    db = tmp_path / "svc.duckdb"
    assert _rows(db, "SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM spans") == [
        (4, 4)]
    assert _rows(db, "SELECT name, service_name, count(*) FROM spans GROUP BY ALL "
                 "ORDER BY 1") == [("INSERT orders", "checkout", 2),
                                   ("POST /orders", "checkout", 2)]
    batches = _rows(db, "SELECT format, status, accepted_spans, duplicate_records "
                    "FROM ingest_batches WHERE signal = 'traces' ORDER BY batch_id")
    assert batches == [("otlp-proto", "complete", 2, 0), ("otlp-proto", "duplicate", 0, 0),
                       ("otlp-proto", "duplicate", 0, 0), ("otlp-json", "complete", 0, 2),
                       ("otlp-json", "complete", 2, 0)]
    assert all(s.startswith("http:127.0.0.1:") for (s,) in _rows(
        db, "SELECT source FROM ingest_batches"))
    # logs and metrics, each emitted twice (protobuf, then JSON): all stored, none rejected
    assert _rows(db, "SELECT signal, format, count(*), sum(rejected) FROM ingest_batches "
                 "WHERE signal <> 'traces' GROUP BY ALL ORDER BY ALL") == [
        ("logs", "otlp-json", 2, 0), ("logs", "otlp-proto", 2, 0),
        ("metrics", "otlp-json", 1, 0), ("metrics", "otlp-proto", 1, 0)]
    assert _rows(db, "SELECT count(*) FROM logs") == [(4,)]
    assert _rows(db, "SELECT count(*), count(DISTINCT metric_name) FROM metric_points") == [
        (6, 3)]


def test_partial_success_and_error_codes_from_a_running_service(tmp_path: Path) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    cfg, port = _config(tmp_path, max_body_bytes=8192)
    url = f"http://127.0.0.1:{port}/v1/traces"
    pb = {"content-type": "application/x-protobuf"}
    bad = span(40, 2)
    bad.trace_id = bytes(16)
    with service(cfg, port):
        r = httpx.post(url, content=trace_request([span(40, 1), bad]).SerializeToString(),
                       headers=pb)
        assert r.status_code == 200
        resp = ExportTraceServiceResponse.FromString(r.content)
        assert resp.partial_success.rejected_spans == 1
        assert "trace id is all zeros" in resp.partial_success.error_message
        assert httpx.post(url, content=b"\xff\xff\xff", headers=pb).status_code == 400
        big = trace_request([span(41, i + 1) for i in range(300)]).SerializeToString()
        assert httpx.post(url, content=big, headers=pb).status_code == 413
        assert httpx.post(url, content=b"x", headers={"content-type": "text/xml"}
                          ).status_code == 415
        _spool_empty(port)
    db = tmp_path / "svc.duckdb"
    assert _rows(db, "SELECT count(*) FROM spans") == [(1,)]
    assert _rows(db, "SELECT reason FROM dead_letters") == [("trace id is all zeros",)]


#: ``sloengine run`` whose writer never gets to the spool (as when it is busy): what is
#: acknowledged stays spooled, deterministically
_NO_DRAIN = """
import sys
from pathlib import Path
from sloengine.scheduler import EngineService
from sloengine.settings import load_settings
from sloengine.telemetry import setup_logging
settings = load_settings(Path(sys.argv[1]))
setup_logging(settings.log_format)
service = EngineService(settings)
service.drain_spool = lambda: 0
service.serve()
"""


def test_full_spool_answers_429_and_kill_9_after_200_loses_nothing(tmp_path: Path) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    cfg, port = _config(tmp_path, spool_max_batches=2, retry_after_seconds=1)
    url = f"http://127.0.0.1:{port}/v1/traces"
    pb = {"content-type": "application/x-protobuf"}
    _, spans = sdk_spans()
    with (tmp_path / "service.log").open("a") as out:
        proc = subprocess.Popen([sys.executable, "-c", _NO_DRAIN, str(cfg)], cwd=tmp_path,
                                stdout=out, stderr=out)
    try:
        _wait(port, proc)
        assert OTLPSpanExporter(endpoint=url).export(spans) == SpanExportResult.SUCCESS
        body = trace_request([span(50, 1), span(50, 2, 1)]).SerializeToString()
        assert httpx.post(url, content=body, headers=pb).status_code == 200
        r = httpx.post(url, content=trace_request([span(51, 1)]).SerializeToString(),
                       headers=pb)
        assert (r.status_code, r.headers["retry-after"]) == (429, "1")
        # the exporter honours 429 + Retry-After: it retries, then gives up at its timeout
        slow = OTLPSpanExporter(endpoint=url, timeout=2.5)
        started = time.monotonic()
        assert slow.export(sdk_spans()[1]) == SpanExportResult.FAILURE
        assert time.monotonic() - started >= 1.0
    finally:
        proc.kill()  # kill -9 right after the 200s
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert len(list((tmp_path / "svc.duckdb.spool").glob("*.otlp"))) == 2
    # restart: the spool is drained first
    cfg2, port2 = _config(tmp_path)
    with service(cfg2, port2):
        _spool_empty(port2)
    db = tmp_path / "svc.duckdb"
    ids = {format(s.context.span_id, "016x") for s in spans} | {
        (1).to_bytes(8, "big").hex(), (2).to_bytes(8, "big").hex()}
    assert {r[0] for r in _rows(db, "SELECT span_id FROM spans")} == ids
    assert _rows(db, "SELECT count(*) FROM spans") == [(4,)]
    assert list((tmp_path / "svc.duckdb.spool").glob("*.otlp")) == []
    assert "draining 2 spooled batch(es) left by the previous run" in _log(cfg2)


def test_kill_9_during_a_burst_loses_no_acknowledged_span(tmp_path: Path) -> None:
    """Concurrent senders, ``kill -9`` right after the last 200 (the writer is behind: most
    or all batches are still spooled, one may be half stored), restart: every acknowledged
    span, once."""
    cfg, port = _config(tmp_path)
    url = f"http://127.0.0.1:{port}/v1/traces"
    pb = {"content-type": "application/x-protobuf"}
    bodies = [trace_request([span(1000 + b, i + 1) for i in range(200)]).SerializeToString()
              for b in range(24)]
    proc = _start(cfg)
    try:
        _wait(port, proc)

        def send(part: list[bytes]) -> list[int]:
            with httpx.Client() as client:
                return [client.post(url, content=b, headers=pb).status_code for b in part]

        with ThreadPoolExecutor(4) as pool:
            codes = [c for part in pool.map(send, [bodies[i::4] for i in range(4)])
                     for c in part]
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert codes == [200] * len(bodies)
    left = len(list((tmp_path / "svc.duckdb.spool").glob("*.otlp")))
    cfg2, port2 = _config(tmp_path)
    with service(cfg2, port2):
        _spool_empty(port2)
    db = tmp_path / "svc.duckdb"
    assert _rows(db, "SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM spans") == [
        (24 * 200, 24 * 200)], f"{left} batches were spooled at the kill"


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (its forkserver and the decode workers), from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry)] = int(fields[1])
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found.update(kids)
        todo.extend(kids)
    return found


def _gone(pids: set[int], timeout: float = 10) -> set[int]:
    deadline = time.monotonic() + timeout
    while (left := {p for p in pids if os.path.exists(f"/proc/{p}")}) and (
            time.monotonic() < deadline):
        time.sleep(0.1)
    return left


def test_decode_workers_stop_with_the_service(tmp_path: Path) -> None:
    """Bodies are decoded in worker processes that start with the service; SIGTERM stops
    them with it, and after ``kill -9`` they exit by themselves (nothing left running)."""
    url_body = trace_request([span(70, i + 1) for i in range(300)]).SerializeToString()
    for stop in ("term", "kill"):
        cfg, port = _config(tmp_path / stop, decode_workers=2)
        proc = _start(cfg)
        try:
            _wait(port, proc)
            r = httpx.post(f"http://127.0.0.1:{port}/v1/traces", content=url_body,
                           headers={"content-type": "application/x-protobuf"})
            assert r.status_code == 200
            _spool_empty(port)
            workers = _descendants(proc.pid)
            assert len(workers) >= 3, workers  # the forkserver and two workers
        finally:
            proc.send_signal(signal.SIGTERM if stop == "term" else signal.SIGKILL)
            proc.wait(timeout=60)
        assert proc.returncode == (0 if stop == "term" else -signal.SIGKILL), _log(cfg)
        assert _gone(workers) == set(), f"left running after {stop}"
        assert _rows(tmp_path / stop / "svc.duckdb", "SELECT count(*) FROM spans") == [(300,)]


def test_sdk_exporter_authenticates_with_a_key_from_the_environment(
        tmp_path: Path, monkeypatch: Any) -> None:
    """With keys on (the default), the SDK exporter sends the key it reads from
    OTEL_EXPORTER_OTLP_HEADERS (URL-encoded, as the exporter spec says): an ingest key is
    taken, a key of a role without ingest:write gets 403 and no key 401 — nothing stored."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    cfg, port = _config(tmp_path)
    cfg.write_text(cfg.read_text().replace("auth: false", "auth: true"))
    keys = {}
    for role in ("ingest", "oncall"):
        made = subprocess.run(
            [sys.executable, "-m", "sloengine", "keys", "create", "--role", role, "--config",
             str(cfg)], cwd=tmp_path, capture_output=True, text=True, check=True)
        keys[role] = made.stdout.strip()
    url = f"http://127.0.0.1:{port}/v1/traces"

    def export(header: str | None) -> SpanExportResult:
        if header is None:
            monkeypatch.delenv("OTEL_EXPORTER_OTLP_HEADERS", raising=False)
        else:
            monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", header)
        _, spans = sdk_spans()
        return OTLPSpanExporter(endpoint=url).export(spans)

    with service(cfg, port):
        assert export(None) == SpanExportResult.FAILURE
        assert export(f"Authorization=Bearer%20{keys['oncall']}") == SpanExportResult.FAILURE
        assert export(f"Authorization=Bearer%20{keys['ingest']}") == SpanExportResult.SUCCESS
        _spool_empty(port)
    db = tmp_path / "svc.duckdb"
    assert _rows(db, "SELECT count(*) FROM spans") == [(2,)]
    assert _rows(db, "SELECT count(*) FROM ingest_batches") == [(1,)]
