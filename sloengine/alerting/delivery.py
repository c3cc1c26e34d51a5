"""One delivery pass over the outbox: route, send concurrently per target, record.

* Each target gets its own thread; the store is touched only by the calling thread, which
  records every outcome as soon as a sender reports it (a queue). A slow or dead target
  delays nobody else, and a kill loses at most the sends in flight — they are resent later
  with the same idempotency key (at-least-once; receivers dedup).
* Retries inside a pass: tenacity with exponential backoff plus jitter — the wait after the
  n-th failure is initial × 2^(n−1) + U(0, jitter), capped (tenacity's
  ``wait_exponential_jitter`` formula, computed by ``RetryPolicy.backoff`` so passes share
  it). A notification still failing stays pending; later passes retry it on the same
  schedule (``next_attempt_at``), so retries survive restarts.
* A circuit breaker per target (state kept in ``alert_targets``): after ``failures`` failed
  attempts in a row the target is skipped until ``reset_after`` has passed, then one trial
  attempt closes or re-opens it. Nygard, *Release It!* (2nd ed.), "Circuit Breaker".
* Per target, notifications go out in order and a transient failure stops that target for
  the pass, so a resolve never overtakes its trigger.
"""

from __future__ import annotations

import queue
import random
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_any,
)
from tenacity.stop import stop_base

from sloengine.alerting import outbox, refresh
from sloengine.alerting.config import BreakerPolicy, NotifyConfig, RetryPolicy
from sloengine.alerting.notifiers import DeliveryFailed, DeliveryRejected, Notifier, build_all
from sloengine.store import Store

Clock = Callable[[], datetime]


class CircuitOpen(Exception):
    """The target's breaker refused the attempt (not counted as an attempt)."""


class CircuitBreaker:
    """closed → open (``failures`` in a row) → half-open after ``reset_after`` (one trial
    attempt) → closed on success, open again on failure."""

    def __init__(self, policy: BreakerPolicy, failures: int = 0,
                 open_until: datetime | None = None, last_error: str | None = None) -> None:
        self.policy = policy
        self.failures = failures
        self.open_until = open_until
        self.last_error = last_error
        self.last_success: datetime | None = None

    def state(self, now: datetime) -> str:
        if self.open_until is None:
            return "closed"
        return "open" if now < self.open_until else "half-open"

    def allow(self, now: datetime) -> bool:
        return self.state(now) != "open"

    def success(self, now: datetime) -> None:
        self.failures, self.open_until, self.last_success = 0, None, now

    def failure(self, now: datetime, error: str) -> None:
        self.failures += 1
        self.last_error = error
        if self.failures >= self.policy.failures:
            self.open_until = now + self.policy.reset_after


@dataclass(slots=True)
class TargetReport:
    target: str
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    attempts: int = 0
    skipped: int = 0  # not tried this pass (circuit open, deadline, target not configured)
    breaker: str = "closed"
    last_error: str | None = None


@dataclass(slots=True)
class DeliveryReport:
    routed: int = 0
    no_route: int = 0
    targets: dict[str, TargetReport] = field(default_factory=dict)
    refreshed: list[refresh.Refreshed] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        return sum(t.attempts for t in self.targets.values())

    @property
    def delivered(self) -> int:
        return sum(t.delivered for t in self.targets.values())

    @property
    def ok(self) -> bool:
        return (all(t.retrying == t.dead == t.skipped == 0 for t in self.targets.values())
                and all(r.error is None for r in self.refreshed))

    def to_json(self) -> dict[str, Any]:
        return {"routed": self.routed, "no_route": self.no_route, "ok": self.ok,
                "delivered": self.delivered, "attempts": self.attempts,
                "targets": [asdict(t) for t in self.targets.values()],
                "refreshed": [asdict(r) for r in self.refreshed]}


@dataclass(frozen=True, slots=True)
class _Outcome:
    target: str
    nid: int
    outcome: str  # delivered | retry | dead | skipped
    attempts: int
    prior_attempts: int
    error: str | None = None


def deliver_pass(store: Store, config: NotifyConfig, *, clock: Clock,
                 notifiers: Mapping[str, Notifier] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> DeliveryReport:
    """Route new notifications, send what is due to every target concurrently, record each
    outcome as it arrives; then send the firing alerts again to the Alertmanager targets
    that are due (refresh.py). ``notifiers`` replaces configured notifiers by name (tests)."""
    report = DeliveryReport()
    report.routed, report.no_route = outbox.route(store, config, clock())
    work = outbox.due(store, clock(), config.batch)
    if not work and not refresh.due(store, config, clock()):
        return report
    built = build_all(config, clock, dict(notifiers or {}))
    breakers = {t: CircuitBreaker(config.breaker, *outbox.load_target(store, t)) for t in work}
    try:
        if work:
            _deliver(store, config, work, built, breakers, report, clock, sleep)
        report.refreshed = refresh.refresh_pass(store, config, built, clock())
    finally:
        for n in built.values():
            n.close()
    now = clock()
    for target, b in breakers.items():
        outbox.save_target(store, target, b.failures, b.open_until, b.last_error,
                           b.last_success, now)
        report.targets[target].breaker = b.state(now)
    return report


def _deliver(store: Store, config: NotifyConfig, work: dict[str, list[outbox.Due]],
             built: Mapping[str, Notifier], breakers: dict[str, CircuitBreaker],
             report: DeliveryReport, clock: Clock, sleep: Callable[[float], None]) -> None:
    results: queue.Queue[_Outcome | str] = queue.Queue()
    deadline = time.monotonic() + config.pass_deadline.total_seconds()
    with ThreadPoolExecutor(max_workers=len(work),
                            thread_name_prefix="sloengine-notify") as pool:
        for target, items in work.items():
            report.targets[target] = TargetReport(target)
            pool.submit(_drain, target, items, built.get(target), breakers[target],
                        config, clock, sleep, deadline, results.put)
        finished = 0
        while finished < len(work):
            item = results.get()
            if isinstance(item, str):
                finished += 1
                continue
            _record(store, config, report.targets[item.target], item, clock())


def _record(store: Store, config: NotifyConfig, rep: TargetReport, o: _Outcome,
            now: datetime) -> None:
    rep.attempts += o.attempts
    if o.error:
        rep.last_error = o.error
    if o.outcome == "skipped":
        rep.skipped += 1
        return
    retry_at = None
    if o.outcome == "retry":
        rep.retrying += 1
        if o.attempts:
            wait = config.retry.backoff(o.prior_attempts + o.attempts, random.random())
            retry_at = now + wait
    elif o.outcome == "dead":
        rep.dead += 1
    else:
        rep.delivered += 1
    outbox.record(store, rep.target, o.nid, o.outcome, o.attempts, o.error, now, retry_at)


def _drain(target: str, items: list[outbox.Due], notifier: Notifier | None,
           breaker: CircuitBreaker, config: NotifyConfig, clock: Clock,
           sleep: Callable[[float], None], deadline: float,
           emit: Callable[[_Outcome | str], None]) -> None:
    """Send one target's due notifications in order (runs in the target's thread)."""
    why = None if notifier else f"notifier {target!r} is not configured"
    try:
        sent = 0
        for item in items:
            if notifier is None:
                break
            if time.monotonic() >= deadline:
                why = "pass deadline reached"
                break
            if not breaker.allow(clock()):
                why = f"circuit open until {_iso(breaker.open_until)}"
                break
            o = _send(target, item, notifier, breaker, config, clock, sleep,
                      deadline - time.monotonic())
            emit(o)
            sent += 1
            if o.outcome in ("retry", "skipped"):
                break
        for item in items[sent:]:
            emit(_Outcome(target, item.notification_id, "skipped", 0, item.attempts, why))
    except Exception as exc:  # a bug must not hang the pass, and must show in the report
        emit(_Outcome(target, items[0].notification_id, "skipped", 0, 0, repr(exc)))
    finally:
        emit(target)


class _PastDeadline(stop_base):
    """Stop when even the shortest next wait would end after the pass deadline."""

    def __init__(self, policy: RetryPolicy, deadline: float) -> None:
        self.policy, self.deadline = policy, deadline

    def __call__(self, rs: RetryCallState) -> bool:
        wait = self.policy.backoff(rs.attempt_number, 0.0).total_seconds()
        return time.monotonic() + wait > self.deadline


def _send(target: str, item: outbox.Due, notifier: Notifier, breaker: CircuitBreaker,
          config: NotifyConfig, clock: Clock, sleep: Callable[[float], None],
          remaining: float) -> _Outcome:
    p = config.retry
    attempts = 0
    deadline = time.monotonic() + remaining

    def wait(rs: RetryCallState) -> float:
        return p.backoff(rs.attempt_number, random.random()).total_seconds()

    retrying = Retrying(
        stop=stop_any(stop_after_attempt(p.attempts), _PastDeadline(p, deadline)), wait=wait,
        retry=retry_if_exception_type(DeliveryFailed), sleep=sleep, reraise=True)
    try:
        for attempt in retrying:
            with attempt:
                if not breaker.allow(clock()):
                    raise CircuitOpen(f"circuit open until {_iso(breaker.open_until)}")
                attempts += 1
                try:
                    notifier.send(item.notice)
                except DeliveryRejected:
                    raise
                except DeliveryFailed as exc:
                    breaker.failure(clock(), str(exc))
                    raise
                except Exception as exc:  # a notifier bug counts as a failed attempt
                    breaker.failure(clock(), repr(exc))
                    raise DeliveryFailed(repr(exc)) from exc
                breaker.success(clock())
    except DeliveryRejected as exc:
        return _Outcome(target, item.notification_id, "dead", attempts, item.attempts,
                        str(exc))
    except DeliveryFailed as exc:
        return _Outcome(target, item.notification_id, "retry", attempts, item.attempts,
                        str(exc))
    except CircuitOpen as exc:  # opened by this item's own failures, or by an earlier one
        error = f"{breaker.last_error}; {exc}" if attempts else str(exc)
        return _Outcome(target, item.notification_id, "retry" if attempts else "skipped",
                        attempts, item.attempts, error)
    return _Outcome(target, item.notification_id, "delivered", attempts, item.attempts)



def _iso(dt: datetime | None) -> str:
    return "-" if dt is None else dt.astimezone(UTC).isoformat(timespec="seconds")
