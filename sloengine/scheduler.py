"""``sloengine run``: one process, one Engine, one writer to the DuckDB file, and jobs on an
APScheduler 3 scheduler.

- Jobs never overlap themselves (``max_instances=1``, ``coalesce=True``) and a late job within
  ``misfire_grace_seconds`` still runs once.
- Bulkheads: each kind of job has its own executor (thread pool), so a slow delivery or report
  does not starve ingest or evaluation of threads. Database work is serialised by one lock
  (DuckDB connections are not for concurrent use); network waits happen outside it.
- SIGTERM / SIGINT drain: running jobs finish, nothing new starts, the store closes cleanly.
- The OTLP/HTTP receiver (sloengine/api/) runs on a thread of this process: requests are
  spooled to disk before their 200, and the ``spool`` job (a thread the receiver wakes)
  stores them as the one writer. The spool is drained on start (batches acknowledged before
  a crash) and on stop. Request bodies are decoded in worker processes the receiver starts
  with the service and stops in ``close`` (ingest/bodies.py).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from sloengine import telemetry
from sloengine.api import HttpServer, Receiver, Spool, build_app
from sloengine.engine import Engine
from sloengine.model import IngestResult, SloResult
from sloengine.settings import Settings

log = logging.getLogger("sloengine.scheduler")


@dataclass(slots=True)
class Cycle:
    """What one full cycle did (``run --once``)."""

    ingested: list[IngestResult] = field(default_factory=list)
    evaluations: list[SloResult] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class EngineService:
    """The scheduled engine around one Engine."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or Engine(settings)
        self.lock = threading.RLock()
        self._scheduler: BackgroundScheduler | None = None
        self.receiver: Receiver | None = None

    def close(self) -> None:
        if self.receiver is not None:
            self.receiver.close()  # its decode workers: no process outlives the service
        with self.lock:
            self.engine.close()

    # -- jobs ---------------------------------------------------------------------------
    def _job(self, name: str, fn: Callable[[], Any], *, locked: bool = True) -> Any:
        token = telemetry.CORRELATION_ID.set(f"{name}-{uuid.uuid4().hex[:12]}")
        started = time.perf_counter()
        try:
            if not locked:  # fn takes the lock (and sets the id) around each piece of DB work
                result = fn()
            else:
                with self.lock:
                    self.engine.correlation_id = telemetry.CORRELATION_ID.get()
                    result = fn()
            telemetry.JOB_RUNS.labels(name, "ok").inc()
            return result
        except Exception:
            telemetry.JOB_RUNS.labels(name, "error").inc()
            log.exception("job %s failed", name)
            return None
        finally:
            telemetry.JOB_SECONDS.labels(name).observe(time.perf_counter() - started)
            telemetry.CORRELATION_ID.reset(token)

    def ingest(self, on_file: Callable[[IngestResult], None] | None = None
               ) -> list[IngestResult]:
        def work() -> list[IngestResult]:
            results = self.engine.ingest_new(self.settings.inputs, on_file=on_file)
            for r in results:
                for table, n in r.counts.accepted.items():
                    telemetry.INGEST_ROWS.labels(table).inc(n)
                telemetry.INGEST_REJECTED.inc(r.counts.rejected)
                log.info("ingested %s: %s, %d rejected", r.info.source, r.counts.accepted,
                         r.counts.rejected)
            return results

        return self._job("ingest", work) or []

    def evaluate(self) -> list[SloResult]:
        def work() -> list[SloResult]:
            results = self.engine.evaluate()
            if results:
                newest = max(r.eval_minute for r in results) * 60
                telemetry.EVAL_LAG.set(max(0.0, time.time() - newest))
            firing: dict[str, int] = {}
            for r in results:
                for a in r.alerts:
                    if a.state == "firing":
                        firing[a.severity] = firing.get(a.severity, 0) + 1
            for sev in ("page", "ticket"):
                telemetry.FIRING.labels(sev).set(firing.get(sev, 0))
            telemetry.SLO_EVENTS.snapshot = [
                (slo, telemetry.group_labels(grp), good, bad)
                for slo, grp, good, bad in self.engine.slo_event_totals()]
            return results

        return self._job("evaluate", work) or []

    def deliver(self) -> Any:
        def work() -> Any:
            report = self.engine.deliver(self.engine.notify_config())
            waiting = sum(t.retrying for t in report.targets.values())
            telemetry.OUTBOX_DEPTH.set(waiting)
            for name, t in report.targets.items():
                if t.retrying or t.dead:
                    telemetry.NOTIFY_FAILURES.labels(name).inc(t.retrying + t.dead)
            return report

        return self._job("deliver", work)

    def report(self) -> list[Any]:
        """The HTML report of the last 30 days into reports_dir/latest (hourly job)."""
        def work() -> list[Any]:
            end = self.engine.clock()
            return self.engine.report(end - timedelta(days=30), end,
                                      self.settings.reports_dir / "latest", "html")

        return self._job("report", work) or []

    def drain_spool(self) -> int:
        """Store the batches the OTLP/HTTP receiver spooled (one lock per batch, so
        evaluation is not held up behind a long spool)."""
        receiver = self.receiver
        if receiver is None:
            return 0
        return len(self._job("spool", receiver.drain, locked=False) or [])

    def _drain_loop(self, receiver: Receiver) -> None:
        """The spool job: store spooled batches as soon as the receiver has some (it wakes
        this thread; ``drain_seconds`` is the fallback poll), until the service stops."""
        while not receiver.closing.is_set():
            receiver.wake.wait(self.settings.http.drain_seconds)
            receiver.wake.clear()
            if receiver.spool.batches and not receiver.closing.is_set():
                self.drain_spool()

    def _receiver(self) -> HttpServer | None:
        """The receiver and its server (bound now, so a port in use fails before anything
        runs), after the spool left by the previous run is stored."""
        http = self.settings.http
        if not http.enabled:
            return None
        spool = Spool(http.spool_dir or self.settings.db.with_name(self.settings.db.name
                                                                    + ".spool"),
                      max_bytes=http.spool_max_bytes, max_batches=http.spool_max_batches)
        self.receiver = Receiver(self.engine, spool, self.lock, http)
        server = HttpServer(build_app(self.receiver, service=self), http.host, http.port,
                            tls_cert=http.tls_cert, tls_key=http.tls_key)
        self.receiver.start()  # the decode workers, once the port is ours
        if http.auth and not self.engine.key_rows():
            log.warning("no API keys yet: every HTTP route answers 401; make one with "
                        "`sloengine keys create --role admin`")
        if spool.batches:
            log.info("draining %d spooled batch(es) left by the previous run", spool.batches)
            self.drain_spool()
        return server

    def retention(self) -> Any:
        return self._job("retention", self.engine.enforce_retention)

    def optimize(self) -> Any:
        return self._job("optimize", self.engine.optimize_layout)

    def catch_up(self) -> int:
        return int(self._job("catch_up", self.engine.catch_up) or 0)

    # -- one cycle ----------------------------------------------------------------------
    def run_once(self, on_file: Callable[[IngestResult], None] | None = None) -> Cycle:
        """Ingest, replay history that arrived for the past through the alert state machine,
        evaluate now, deliver the notifications."""
        cycle = Cycle()
        cycle.ingested = self.ingest(on_file)
        cycle.extra["layout"] = self.optimize()
        cycle.extra["caught_up_evaluations"] = self.catch_up()
        cycle.evaluations = self.evaluate()
        report = self.deliver()
        if report is not None:
            cycle.extra["delivery"] = report.to_json()
        cycle.extra["reports"] = [str(p) for p in self.report()]
        return cycle

    # -- forever ------------------------------------------------------------------------
    def serve(self) -> None:
        """Run the jobs (on the scheduler's threads) until SIGTERM/SIGINT, then stop taking
        requests, let running jobs finish, store what is spooled and close the store."""
        s = self.settings.schedule
        sched = BackgroundScheduler(
            executors={
                "ingest": ThreadPoolExecutor(1),
                "evaluate": ThreadPoolExecutor(1),
                "deliver": ThreadPoolExecutor(2),
                "reports": ThreadPoolExecutor(1),
            },
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": int(s.misfire_grace_seconds)},
            timezone=UTC,
        )
        now = datetime.now(UTC)
        sched.add_job(self.ingest, "interval", seconds=s.ingest_seconds, id="ingest",
                      executor="ingest", next_run_time=now)
        sched.add_job(self.evaluate, "interval", seconds=s.evaluate_seconds, id="evaluate",
                      executor="evaluate", next_run_time=now)
        sched.add_job(self.deliver, "interval", seconds=s.deliver_seconds, id="deliver",
                      executor="deliver", next_run_time=now)
        sched.add_job(self.report, "interval", seconds=s.report_seconds, id="report",
                      executor="reports")
        sched.add_job(self.optimize, "interval", seconds=s.optimize_seconds, id="optimize",
                      executor="reports")
        sched.add_job(self.retention, "interval", seconds=s.retention_seconds,
                      id="retention", executor="reports")
        self._scheduler = sched
        try:
            server = self._receiver()
        except BaseException:
            self.close()
            raise

        stopping: list[int] = []

        def stop(signum: int, _frame: FrameType | None) -> None:
            # Only a flag: the handler runs on the main thread between two bytecodes, maybe
            # inside a lock (a thread pool's, a logging handler's) that stopping would need.
            stopping.append(signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        if self.settings.metrics_port:
            telemetry.serve_metrics(self.settings.metrics_host, self.settings.metrics_port)
            log.info("metrics on http://%s:%d/metrics", self.settings.metrics_host,
                     self.settings.metrics_port)
        drainer = None
        try:
            if server is not None and self.receiver is not None:
                drainer = threading.Thread(target=self._drain_loop, args=(self.receiver,),
                                           name="spool-drain")
                drainer.start()
                server.start()
                log.info("OTLP/HTTP receiver on http://%s:%d/v1/{traces,logs,metrics}",
                         server.host, server.port)
            log.info("engine running: db %s, inputs %s, SLOs %s", self.settings.db,
                     [str(p) for p in self.settings.inputs], self.settings.slo_dir)
            sched.start()
            while not stopping:
                time.sleep(0.1)
            log.info("signal %s: draining running jobs and stopping", stopping[0])
        finally:
            if server is not None and self.receiver is not None:
                self.receiver.closing.set()
                server.stop()  # no new requests; those in flight finish (spooled)
                self.receiver.wake.set()
            if drainer is not None:
                drainer.join()
            if sched.running:
                sched.shutdown(wait=True)
            if self.receiver is not None:
                self.receiver.drain(time.monotonic() + 30, final=True)
            self.close()
            log.info("stopped")
