"""`sloengine run` as a service: jobs run, its own metrics are served, logs are JSON with a
correlation id, a new file dropped into a watched folder is ingested once, and SIGTERM drains
and stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from conftest import ROOT
from otlp_factory import span, trace_request
from prometheus_client.parser import text_string_to_metric_families
from servers import free_port


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus exposition text (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v
                                           for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_service_runs_jobs_serves_metrics_and_stops_on_sigterm(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    port = free_port()
    cfg = tmp_path / "sloengine.yaml"
    cfg.write_text(
        f"db: {tmp_path / 'svc.duckdb'}\ninputs: [{inbox}]\nslo_dir: {ROOT / 'slo_definitions'}\n"
        f"metrics_port: {port}\nlog_format: json\nhttp: {{port: {free_port()}}}\n"
        "schedule: {ingest_seconds: 0.3, evaluate_seconds: 0.5}\n")
    proc = subprocess.Popen([sys.executable, "-m", "sloengine", "run", "--config", str(cfg)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ})
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 60
        text = ""
        while time.monotonic() < deadline:
            try:
                text = httpx.get(url, timeout=1).text
                if _metric(text, "sloengine_job_runs_total", job="evaluate", outcome="ok") >= 1:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        assert _metric(text, "sloengine_job_runs_total", job="evaluate", outcome="ok") >= 1
        # a file dropped into the watched folder is ingested (once)
        f = inbox / "late.traces.pb"
        f.write_bytes(trace_request([span(5, 1), span(5, 2, 1)]).SerializeToString())
        while time.monotonic() < deadline:
            text = httpx.get(url, timeout=1).text
            if _metric(text, "sloengine_ingest_rows_total", table="spans") >= 2:
                break
            time.sleep(0.1)
        assert _metric(text, "sloengine_ingest_rows_total", table="spans") == 2
        time.sleep(1.0)  # more ingest polls: the unchanged file is not taken in again
        text = httpx.get(url, timeout=1).text
        assert _metric(text, "sloengine_ingest_rows_total", table="spans") == 2
        # the counter the exported Prometheus rules read (export/promql.py)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _metric(
                text, "sloengine_slo_events_total", slo="orders-db-latency", good="true") == 0:
            f2 = inbox / "db.traces.pb"
            if not f2.exists():
                f2.write_bytes(trace_request([span(6, 1, kind=3, attrs={
                    "db.system.name": "postgresql", "db.namespace": "orders"})],
                    "orders-service").SerializeToString())
            time.sleep(0.2)
            text = httpx.get(url, timeout=1).text
        assert _metric(text, "sloengine_slo_events_total", slo="orders-db-latency",
                       good="true") == 1
        assert _metric(text, "sloengine_slo_events_total", slo="orders-db-latency",
                       good="false") == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(rec["message"].startswith("ingested ") and rec["correlation_id"].startswith(
        "ingest-") for rec in logs)
    assert logs[-1]["message"] == "stopped"
    assert any("draining" in rec["message"] for rec in logs)
