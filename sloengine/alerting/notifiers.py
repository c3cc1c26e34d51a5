"""Notifiers: one small protocol, an in-memory twin for tests (ARCHITECTURE.md rule 8), and
the built-in transports (httpx for HTTP, an append-only JSON-lines file or the console).

A notifier either returns (delivered) or raises: ``DeliveryFailed`` (transient: timeouts,
connection errors, 408/425/429, 5xx — retry later) or ``DeliveryRejected`` (terminal: any
other 4xx or 3xx — the receiver will not take it; retrying cannot help).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
import orjson

from sloengine.alerting import notice as notice_text
from sloengine.alerting import payloads
from sloengine.alerting.config import (
    AlertmanagerTarget,
    ConsoleTarget,
    FileTarget,
    NotifyConfig,
    PagerDutyTarget,
    SlackTarget,
    Target,
    WebhookTarget,
)
from sloengine.alerting.notice import Notice
from sloengine.errors import TerminalError, TransientError

SIGNATURE_HEADER = "X-Sloengine-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_RETRYABLE = {408, 425, 429}


class DeliveryFailed(TransientError):
    """The receiver did not take the notification now; the same send may succeed later."""


class DeliveryRejected(TerminalError):
    """The receiver refused the notification (bad request, bad credentials)."""


class Notifier(Protocol):
    def send(self, notice: Notice) -> None:
        """Deliver one notice or raise DeliveryFailed / DeliveryRejected."""

    def close(self) -> None: ...


class MemoryNotifier:
    """The in-memory twin: records what it is sent; can fail, reject or be slow on demand."""

    def __init__(self, *, fail_first: int = 0, reject: bool = False, delay: float = 0.0,
                 down: bool = False) -> None:
        self.sent: list[Notice] = []
        self.sent_at: list[float] = []
        self.calls = 0
        self.fail_first = fail_first
        self.reject = reject
        self.delay = delay
        self.down = down
        self._lock = threading.Lock()

    def send(self, notice: Notice) -> None:
        with self._lock:
            self.calls += 1
            calls = self.calls
        if self.delay:
            time.sleep(self.delay)
        if self.down or calls <= self.fail_first:
            raise DeliveryFailed(f"memory notifier down (call {calls})")
        if self.reject:
            raise DeliveryRejected("memory notifier rejects everything")
        with self._lock:
            self.sent.append(notice)
            self.sent_at.append(time.monotonic())

    def keys(self) -> list[str]:
        return [n.idempotency_key for n in self.sent]

    def close(self) -> None:
        pass


class ConsoleNotifier:
    """What an on-call engineer reads: the summary line and the details, as text."""

    def __init__(self, stream: str, details: bool = True) -> None:
        self.stream = stream
        self.details = details

    def send(self, notice: Notice) -> None:
        out = sys.stdout if self.stream == "stdout" else sys.stderr
        lines = notice_text.details(notice) if self.details else []
        text = "\n".join([notice_text.summary(notice), *(f"    {line}" for line in lines)])
        out.write(text + "\n")
        out.flush()

    def close(self) -> None:
        pass


class FileNotifier:
    """One JSON object per line (the notice), fsynced before it counts as delivered;
    ``-`` writes to standard output."""

    def __init__(self, path: str) -> None:
        self.path = path

    def send(self, notice: Notice) -> None:
        line = orjson.dumps(payloads.notice_json(notice), option=orjson.OPT_SORT_KEYS) + b"\n"
        if self.path == "-":
            sys.stdout.write(line.decode())
            sys.stdout.flush()
            return
        try:
            with open(self.path, "ab") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise DeliveryFailed(f"{self.path}: {exc}") from None

    def close(self) -> None:
        pass


class HttpNotifier:
    """POST a JSON body; classify the answer."""

    def __init__(self, url: str, timeout: timedelta) -> None:
        self.url = url
        self.client = httpx.Client(timeout=timeout.total_seconds(), follow_redirects=False)

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        try:
            resp = self.client.post(self.url, content=body, headers={
                "Content-Type": "application/json", "User-Agent": "sloengine",
                **(headers or {})})
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None
        code = resp.status_code
        if 200 <= code < 300:
            return resp
        text = f"HTTP {code}: {resp.text[:200]}"
        if code >= 500 or code in _RETRYABLE:
            raise DeliveryFailed(text)
        raise DeliveryRejected(text)

    def close(self) -> None:
        self.client.close()


class AlertmanagerNotifier(HttpNotifier):
    def __init__(self, cfg: AlertmanagerTarget, timeout: timedelta,
                 clock: Callable[[], datetime]) -> None:
        super().__init__(cfg.url.rstrip("/") + "/api/v2/alerts", timeout)
        self.cfg = cfg
        self.clock = clock

    def send(self, notice: Notice) -> None:
        self.send_many([notice])

    def send_many(self, notices: list[Notice]) -> None:
        """One POST of several alerts (the v2 API takes a list), as the refresh does."""
        now = self.clock()
        self.post(orjson.dumps([
            payloads.alertmanager(n, now, self.cfg.firing_ttl, self.cfg.generator_url)
            for n in notices]))


class WebhookNotifier(HttpNotifier):
    def __init__(self, cfg: WebhookTarget, timeout: timedelta) -> None:
        super().__init__(cfg.url, timeout)
        self.secret = cfg.secret.get_secret_value().encode()
        self.headers = dict(cfg.headers)

    def send(self, notice: Notice) -> None:
        body = orjson.dumps(payloads.notice_json(notice), option=orjson.OPT_SORT_KEYS)
        self.post(body, {**self.headers, **signed_headers(self.secret, body,
                                                          notice.idempotency_key)})


def signed_headers(secret: bytes, body: bytes, key: str) -> dict[str, str]:
    """``X-Sloengine-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` (verify it with a
    constant-time compare) and ``Idempotency-Key`` (dedup on it)."""
    sig = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return {SIGNATURE_HEADER: f"sha256={sig}", IDEMPOTENCY_HEADER: key}


class SlackNotifier(HttpNotifier):
    def __init__(self, cfg: SlackTarget, timeout: timedelta) -> None:
        super().__init__(cfg.url.get_secret_value(), timeout)

    def send(self, notice: Notice) -> None:
        self.post(orjson.dumps(payloads.slack(notice)))


class PagerDutyNotifier(HttpNotifier):
    def __init__(self, cfg: PagerDutyTarget, timeout: timedelta) -> None:
        super().__init__(cfg.url, timeout)
        self.routing_key = cfg.routing_key.get_secret_value()
        self.severity_map: dict[str, str] = dict(cfg.severity_map)

    def send(self, notice: Notice) -> None:
        event = payloads.pagerduty(notice, self.routing_key, self.severity_map)
        self.post(orjson.dumps(event))


def build(name: str, target: Target, config: NotifyConfig,
          clock: Callable[[], datetime]) -> Notifier:
    t = config.timeout
    if isinstance(target, AlertmanagerTarget):
        return AlertmanagerNotifier(target, t, clock)
    if isinstance(target, WebhookTarget):
        return WebhookNotifier(target, t)
    if isinstance(target, SlackTarget):
        return SlackNotifier(target, t)
    if isinstance(target, PagerDutyTarget):
        return PagerDutyNotifier(target, t)
    if isinstance(target, ConsoleTarget):
        return ConsoleNotifier(target.stream, target.details)
    if isinstance(target, FileTarget):
        return FileNotifier(target.path)
    raise AssertionError(f"notifier {name}: unknown kind")  # pragma: no cover


def build_all(config: NotifyConfig, clock: Callable[[], datetime],
              overrides: dict[str, Any] | None = None) -> dict[str, Notifier]:
    """A notifier per configured name; ``overrides`` (tests) replace some by name."""
    out: dict[str, Notifier] = dict(overrides or {})
    for name, target in config.notifiers.items():
        if name not in out:
            out[name] = build(name, target, config, clock)
    return out
