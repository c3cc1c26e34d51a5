"""Helpers for the alert delivery tests: a local HTTP receiver (http.server in a thread) that
verifies webhook signatures, answers from a script of status codes, can be slow, and dedups
by Idempotency-Key like a careful receiver; and synthetic alert transitions for the outbox."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sloengine.alerting import Transition, enqueue
from sloengine.model import ErrorBudget, SloResult, TierDecision
from sloengine.spec.model import SLO
from sloengine.store import Store

T0 = datetime(2026, 11, 21, 14, 25, tzinfo=UTC)
M0 = int(T0.timestamp()) // 60

SLO_DOC = {
    "apiVersion": "sloengine/v1", "kind": "SLO",
    "metadata": {"name": "checkout-availability", "service": "checkout", "team": "shop",
                 "owner": "shop-oncall@example.com",
                 "runbook": "https://runbooks.example.com/shop/checkout",
                 "labels": {"layer": "api", "tier": "1"}},
    "spec": {"indicator": {"kind": "ratio",
                           "total": {"source": "spans", "where": {"service": "checkout"}},
                           "bad": {"error": True}},
             "groupBy": ["route"],
             "objectives": [{"name": "99.9", "target": 0.999}],
             "window": {"rolling": "30d"}},
}


def slo() -> SLO:
    return SLO.model_validate(SLO_DOC)


def transition(group: str, minute: int, frm: str, to: str, severity: str = "page"
               ) -> Transition:
    tier = "page-fast" if severity == "page" else "ticket-slow"
    d = TierDecision(tier=tier, severity=severity, long_window="1h", short_window="5m",
                     threshold=14.4, long_burn_rate=20.5, short_burn_rate=31.25,
                     long_events=1200.0, condition=to == "firing", state=to)
    r = SloResult(name="checkout-availability", service="checkout", objective="99.9",
                  target=0.999, group=group, window="rolling 30d",
                  budgeting_method="Occurrences", eval_minute=minute, sli=0.9975,
                  good=39900.0, total=40000.0,
                  error_budget=ErrorBudget("events", 40.0, 100.0, 2.5, -1.5),
                  burn_rates={"1h": 20.5, "5m": 31.25}, time_to_exhaustion_seconds=0.0,
                  alerts=[d], budget_alerts=[], status="ok", slo_version="v1")
    key = f"checkout-availability/99.9/{group}/{tier}"
    return Transition(key, minute, frm, to, r, d)


def fill_outbox(store: Store, n: int, severity: str = "page") -> list[str]:
    """n notifications (a firing and, for every other group, its resolve); their keys."""
    trs = []
    for i in range(n):
        group = f"route=/r{i // 2}"
        trs.append(transition(group, M0 + i, "inactive", "firing", severity) if i % 2 == 0
                   else transition(group, M0 + i, "firing", "resolved", severity))
    with store.transaction():
        enqueue(store, trs, slo(), None, now=T0)
    return [str(r[0]) for r in store.rows(
        "SELECT idempotency_key FROM alert_notifications ORDER BY notification_id")]


@dataclass
class Receiver:
    """A local HTTP receiver. ``statuses`` are answered in order, then ``ok``; a request
    answered ``ok`` is processed (dedup set; a key seen again counts as a duplicate) before
    the answer is written, as a real receiver does its work before it replies."""

    secret: bytes | None = None
    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    ok: int = 200
    port: int = 0
    arrivals: list[tuple[str, float]] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    processed: set[str] = field(default_factory=set)
    duplicates: int = 0
    bad_signatures: int = 0

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                key = self.headers.get("Idempotency-Key", "")
                code = receiver._arrive(raw, key, self.headers.get("X-Sloengine-Signature"))
                if receiver.delay:  # the receiver's own work, before it answers
                    time.sleep(receiver.delay)
                if code == receiver.ok:
                    receiver._process(key)
                try:
                    body = b'{"status":"success"}'
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the sender was killed mid-request: it never hears "ok"
                    return

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _arrive(self, raw: bytes, key: str, sig: str | None) -> int:
        with self.lock:
            self.arrivals.append((key, time.monotonic()))
            self.bodies.append(json.loads(raw))
            if self.secret is not None:
                want = "sha256=" + hmac.new(self.secret, raw, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(want, sig or ""):
                    self.bad_signatures += 1
                    return 401
            return self.statuses.pop(0) if self.statuses else self.ok

    def _process(self, key: str) -> None:
        with self.lock:
            if key in self.processed:
                self.duplicates += 1
            self.processed.add(key)

    def keys(self) -> list[str]:
        with self.lock:
            return [k for k, _ in self.arrivals]

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
