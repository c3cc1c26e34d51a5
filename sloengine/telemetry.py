"""The engine observing itself: Prometheus metrics (prometheus-client) served on a /metrics
port, and structured JSON logs that carry the correlation id of the job or request."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextvars import ContextVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics_core import Metric
from pythonjsonlogger.json import JsonFormatter

CORRELATION_ID: ContextVar[str] = ContextVar("correlation_id", default="-")
#: the X-Request-ID of the HTTP request being served (api/app.py), in every log line of it
REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")

REGISTRY = CollectorRegistry()
INGEST_ROWS = Counter("sloengine_ingest_rows", "Records stored by ingest.", ["table"],
                      registry=REGISTRY)
INGEST_REJECTED = Counter("sloengine_ingest_rejected_records",
                          "Records rejected into dead letters.", registry=REGISTRY)
JOB_SECONDS = Histogram("sloengine_job_duration_seconds", "Duration of scheduler jobs.",
                        ["job"], registry=REGISTRY,
                        buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
JOB_RUNS = Counter("sloengine_job_runs", "Scheduler job runs by outcome.", ["job", "outcome"],
                   registry=REGISTRY)
EVAL_LAG = Gauge("sloengine_evaluation_lag_seconds",
                 "Seconds between now and the newest evaluated minute.", registry=REGISTRY)
OUTBOX_DEPTH = Gauge("sloengine_outbox_depth", "Notifications waiting to be delivered.",
                     registry=REGISTRY)
NOTIFY_FAILURES = Counter("sloengine_notification_failures",
                          "Failed notification delivery attempts.", ["target"],
                          registry=REGISTRY)
FIRING = Gauge("sloengine_alerts_firing", "Alerts firing now.", ["severity"],
               registry=REGISTRY)


class SloEventsCollector:
    """``sloengine_slo_events_total{slo, good, <groupBy labels>}``: every SLO's good and bad
    events, the counter the exported Prometheus rules read (export/promql.py). Served from a
    snapshot the evaluate job refreshes, so a scrape never waits for the database."""

    def __init__(self) -> None:
        self.snapshot: list[tuple[str, dict[str, str], float, float]] = []

    def collect(self) -> Iterator[Metric]:
        fam = Metric("sloengine_slo_events", "Events of each SLO's SLI, by outcome.",
                     "counter")
        for slo, labels, good, bad in self.snapshot:
            for flag, value in (("true", good), ("false", bad)):
                fam.add_sample("sloengine_slo_events_total",
                               {"slo": slo, "good": flag, **labels}, value)
        yield fam


SLO_EVENTS = SloEventsCollector()
REGISTRY.register(SLO_EVENTS)


def group_labels(grp: str) -> dict[str, str]:
    """``route=/a,method=GET`` → Prometheus labels (names sanitised to [a-zA-Z0-9_])."""
    out: dict[str, str] = {}
    for part in filter(None, grp.split(",")):
        name, _, value = part.partition("=")
        out[re.sub(r"[^a-zA-Z0-9_]", "_", name)] = value
    return out


def serve_metrics(host: str, port: int) -> None:
    """Expose REGISTRY on http://host:port/metrics (a daemon thread)."""
    start_http_server(port, addr=host, registry=REGISTRY)


class _CorrelationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = CORRELATION_ID.get()
        record.request_id = REQUEST_ID.get()
        return True


def setup_logging(fmt: str = "auto", level: int = logging.INFO) -> None:
    """JSON lines on stderr (or plain text for a person at a terminal)."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_CorrelationFilter())
    if use_json:
        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s "
            "%(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s [%(correlation_id)s] %(message)s"))
    root = logging.getLogger("sloengine")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
