"""The alert outbox and its delivery worker: transactional enqueue, routing, retries with
backoff, per-target circuit breakers, slow targets, at-least-once across a SIGKILL, and the
CLI. Receivers are local HTTP servers (tests/notify_helpers.py) or the in-memory twin."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from notify_helpers import T0, Receiver, fill_outbox, slo, transition
from servers import free_port

from sloengine.alerting import (
    CircuitBreaker,
    MemoryNotifier,
    NotifyConfig,
    advance,
    enqueue,
    load_notify_config,
)
from sloengine.alerting.config import BreakerPolicy
from sloengine.engine import Engine
from sloengine.errors import ConfigError
from sloengine.settings import load_settings

SECRET = "s3cret-for-tests"


class Clock:
    """A clock the test moves by hand (``live`` follows the wall clock instead)."""

    def __init__(self, t: datetime = T0) -> None:
        self.t = t
        self.live = False

    def __call__(self) -> datetime:
        return datetime.now().astimezone() if self.live else self.t


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now().astimezone())


@pytest.fixture
def eng(db_path: Path, clock: Clock) -> Any:
    e = Engine(load_settings(None, db=db_path), clock=clock)
    yield e
    e.close()


def cfg(**kw: Any) -> NotifyConfig:
    base: dict[str, Any] = {"retry": {"attempts": 3, "initial": "50ms", "jitter": "10ms"},
                            "timeout": "5s"}
    return NotifyConfig.model_validate(base | kw)


def deliveries(eng: Engine, target: str) -> list[tuple[Any, ...]]:
    return eng.store.rows(
        "SELECT notification_id, status, attempts, next_attempt_at, delivered_at, last_error "
        "FROM alert_deliveries WHERE target = ? ORDER BY notification_id", [target])


# -- enqueue ------------------------------------------------------------------------------

def test_notification_commits_or_rolls_back_with_the_alert_state(eng: Engine) -> None:
    store = eng.store
    tr = transition("route=/a", 100, "inactive", "firing")
    with pytest.raises(RuntimeError), store.transaction():
        _, trs = advance(store, [tr.result], {})
        assert [t.to_state for t in trs] == ["firing"]
        enqueue(store, trs, slo(), None, now=T0)
        assert store.one("SELECT count(*) FROM alert_notifications") == 1
        raise RuntimeError("crash before commit")
    assert store.one("SELECT count(*) FROM alerts") == 0
    assert store.one("SELECT count(*) FROM alert_notifications") == 0
    with store.transaction():
        _, trs = advance(store, [tr.result], {})
        enqueue(store, trs, slo(), None, now=T0)
    assert store.one("SELECT count(*) FROM alerts") == 1
    assert store.rows("SELECT dedup_key, to_state FROM alert_notifications") == [
        ("checkout-availability/99.9/route=/a/page-fast", "firing")]
    # the same transition again (a retried evaluation) adds nothing: one idempotency key
    with store.transaction():
        assert enqueue(store, trs, slo(), None, now=T0) == []


def test_pending_alerts_are_not_notified(eng: Engine) -> None:
    trs = [transition("route=/a", 100, "inactive", "pending"),
           transition("route=/a", 101, "pending", "inactive")]
    with eng.store.transaction():
        assert enqueue(eng.store, trs, slo(), None, now=T0) == []


# -- routing and config -------------------------------------------------------------------

def test_routing_by_labels_and_severity() -> None:
    c = NotifyConfig.model_validate({
        "notifiers": {"pd": {"kind": "pagerduty", "routing_key": "k"},
                      "slack": {"kind": "slack", "url": "http://127.0.0.1:1/hook"},
                      "am": {"kind": "alertmanager", "url": "http://127.0.0.1:9093"},
                      "log": {"kind": "file", "path": "-"}},
        "routes": [{"match": {"severity": "page"}, "notifier": ["pd", "am"], "continue": True},
                   {"match": {"team": ["shop", "edge"]}, "notifier": "slack"},
                   {"match": {"layer": "batch"}, "notifier": "am"}],
        "default": ["log"]})
    assert c.route({"severity": "page", "team": "shop"}) == ["pd", "am", "slack"]
    assert c.route({"severity": "page", "team": "data"}) == ["pd", "am"]
    assert c.route({"severity": "ticket", "team": "edge", "layer": "batch"}) == ["slack"]
    assert c.route({"severity": "ticket", "layer": "batch"}) == ["am"]
    assert c.route({"severity": "ticket"}) == ["log"]


@pytest.mark.parametrize(("doc", "problem"), [
    ({"notifiers": {}, "default": ["nope"]}, "unknown notifier 'nope'"),
    ({"notifiers": {"x": {"kind": "smtp"}}}, "notifiers.x"),
    ({"notifiers": {"x": {"kind": "file", "colour": "red"}}}, "notifiers.x.file.colour"),
    ({"notifiers": {"x": {"kind": "webhook", "url": "http://h"}}}, "notifiers.x.webhook.secret"),
    ({"retry": {"initial": "soon"}}, "retry.initial"),
])
def test_config_errors_name_the_field(tmp_path: Path, doc: dict[str, Any], problem: str
                                      ) -> None:
    f = tmp_path / "notify.yaml"
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as err:
        load_notify_config(f)
    assert problem in str(err.value) and str(f) in str(err.value)


# -- retries, breaker, slow targets --------------------------------------------------------

def test_retry_backoff_then_fifo_per_target(eng: Engine, clock: Clock) -> None:
    keys = fill_outbox(eng.store, 4)
    mem = MemoryNotifier(fail_first=3)
    c = cfg(notifiers={"m": {"kind": "file"}}, default=["m"],
            retry={"attempts": 3, "initial": "10ms", "jitter": "0s", "max": "10m"})
    rep = eng.deliver(c, {"m": mem})
    t = rep.targets["m"]
    # three failed attempts on the first; the rest wait behind it (a resolve never overtakes)
    assert (t.delivered, t.retrying, t.skipped, t.attempts) == (0, 1, 3, 3)
    rows = deliveries(eng, "m")
    assert rows[0][1:3] == ("pending", 3)
    assert rows[0][3] == clock.t + timedelta(milliseconds=40)  # 10 ms × 2^(3−1), no jitter
    assert [r[2] for r in rows[1:]] == [0, 0, 0]
    assert mem.sent == []
    clock.t += timedelta(seconds=1)
    rep = eng.deliver(c, {"m": mem})
    assert rep.ok and rep.targets["m"].delivered == 4
    assert mem.keys() == keys  # in order
    assert [r[1:3] for r in deliveries(eng, "m")] == [("delivered", 4)] + [("delivered", 1)] * 3


def test_circuit_breaker_states() -> None:
    b = CircuitBreaker(BreakerPolicy(failures=2, reset_after=timedelta(minutes=1)))
    assert b.state(T0) == "closed"
    b.failure(T0, "boom")
    assert b.allow(T0)
    b.failure(T0, "boom")
    assert b.state(T0) == "open" and not b.allow(T0 + timedelta(seconds=59))
    assert b.state(T0 + timedelta(minutes=1)) == "half-open"
    b.failure(T0 + timedelta(minutes=1), "still down")  # the trial failed: open again
    assert b.state(T0 + timedelta(minutes=1, seconds=30)) == "open"
    b.success(T0 + timedelta(minutes=3))
    assert b.state(T0 + timedelta(minutes=3)) == "closed" and b.failures == 0


def test_dead_target_opens_breaker_and_others_still_deliver(eng: Engine, clock: Clock
                                                            ) -> None:
    fill_outbox(eng.store, 4)
    port = free_port()  # nothing listens: connection refused
    live = MemoryNotifier()
    c = cfg(notifiers={"dead": {"kind": "webhook", "url": f"http://127.0.0.1:{port}/hook",
                                "secret": SECRET},
                       "live": {"kind": "file"}},
            default=["dead", "live"], breaker={"failures": 2, "reset_after": "1m"},
            retry={"attempts": 3, "initial": "10ms", "jitter": "0s"})
    rep = eng.deliver(c, {"live": live})
    assert rep.targets["live"].delivered == 4 and len(live.sent) == 4
    dead = rep.targets["dead"]
    assert (dead.attempts, dead.retrying, dead.skipped, dead.breaker) == (2, 1, 3, "open")
    assert "ConnectError" in (dead.last_error or "")
    # while open, the target is not even tried
    clock.t += timedelta(seconds=30)
    rep = eng.deliver(c, {"live": live})
    assert rep.targets["dead"].attempts == 0 and rep.targets["dead"].skipped == 4
    assert "circuit open" in (rep.targets["dead"].last_error or "")
    # after reset_after: one trial attempt, which fails and re-opens the circuit
    clock.t += timedelta(minutes=1)
    rep = eng.deliver(c, {"live": live})
    assert rep.targets["dead"].attempts == 1 and rep.targets["dead"].breaker == "open"
    view = eng.store.rows("SELECT consecutive_failures, open_until FROM alert_targets "
                          "WHERE target = 'dead'")
    assert view == [(3, clock.t + timedelta(minutes=1))]
    # the target comes back: the next trial closes the circuit and everything goes out
    clock.t += timedelta(minutes=2)
    with Receiver(secret=SECRET.encode(), port=port) as rx:
        rep = eng.deliver(c, {"live": live})
    assert rep.ok and rep.targets["dead"].delivered == 4 and rep.targets["dead"].breaker == \
        "closed"
    assert len(rx.processed) == 4 and len(live.sent) == 4


def test_slow_target_does_not_block_the_others(eng: Engine, clock: Clock) -> None:
    clock.live = True
    fill_outbox(eng.store, 3)
    fast = MemoryNotifier()
    with Receiver(delay=0.6) as slow:
        c = cfg(notifiers={"slow": {"kind": "webhook", "url": slow.url, "secret": SECRET},
                           "fast": {"kind": "file"}}, default=["slow", "fast"])
        start = time.monotonic()
        rep = eng.deliver(c, {"fast": fast})
        took = time.monotonic() - start
    assert rep.ok and rep.targets["slow"].delivered == 3 and rep.targets["fast"].delivered == 3
    assert took >= 1.8
    assert max(fast.sent_at) - start < 0.5  # all three went out while the slow one waited
    fast_done = max(r[4] for r in deliveries(eng, "fast"))
    slow_first = min(r[4] for r in deliveries(eng, "slow"))
    assert fast_done < slow_first  # recorded as they happened, not at the end of the pass


def test_rejected_notification_is_dead_and_does_not_block(eng: Engine) -> None:
    fill_outbox(eng.store, 3)
    with Receiver(secret=b"the receiver's secret") as rx:
        c = cfg(notifiers={"hook": {"kind": "webhook", "url": rx.url, "secret": "wrong"}},
                default=["hook"])
        rep = eng.deliver(c)
    t = rep.targets["hook"]
    assert (t.dead, t.attempts, t.retrying) == (3, 3, 0)  # 401 is terminal: no retries
    assert rx.bad_signatures == 3 and rx.processed == set()
    assert {r[1] for r in deliveries(eng, "hook")} == {"dead"}
    assert "HTTP 401" in (t.last_error or "")


# -- webhook: signature, retries with backoff, receiver dedup --------------------------------

def test_webhook_signed_retried_with_backoff_and_deduped(eng: Engine) -> None:
    [key] = fill_outbox(eng.store, 1)
    with Receiver(secret=SECRET.encode(), statuses=[500, 500]) as rx:
        c = cfg(notifiers={"hook": {"kind": "webhook", "url": rx.url, "secret": SECRET,
                                    "headers": {"X-Team": "shop"}}},
                default=["hook"],
                retry={"attempts": 4, "initial": "200ms", "jitter": "50ms"})
        rep = eng.deliver(c)
        # a second pass sends nothing: delivered is delivered
        assert eng.deliver(c).attempts == 0
    assert rep.ok and rep.targets["hook"].attempts == 3
    assert rx.keys() == [key, key, key] and rx.bad_signatures == 0
    gaps = [b[1] - a[1] for a, b in zip(rx.arrivals, rx.arrivals[1:], strict=False)]
    # waits of 200 ms × 2^(n−1) + U(0, 50 ms): at least 0.2 s, then at least 0.4 s
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4 and gaps[1] > gaps[0]
    assert rx.processed == {key} and rx.duplicates == 0
    body = rx.bodies[-1]
    assert body["schema"] == "sloengine.alert/v1" and body["idempotency_key"] == key
    assert body["status"] == "firing" and body["runbook"].startswith("https://")
    assert deliveries(eng, "hook")[0][1:3] == ("delivered", 3)


def test_kill_mid_delivery_then_restart_delivers_everything(tmp_path: Path,
                                                           db_path: Path) -> None:
    with Engine(load_settings(None, db=db_path)) as e:
        expected = fill_outbox(e.store, 8)
    script = ("import sys; from pathlib import Path; from sloengine.engine import Engine; "
              "from sloengine.settings import load_settings; "
              "e = Engine(load_settings(None, db=Path(sys.argv[1]))); "
              "r = e.deliver(Path(sys.argv[2])); e.close(); sys.exit(0 if r.ok else 1)")
    with Receiver(secret=SECRET.encode(), delay=0.5) as rx:
        notify = tmp_path / "notify.yaml"
        notify.write_text(yaml.safe_dump({
            "notifiers": {"hook": {"kind": "webhook", "url": rx.url, "secret": SECRET}},
            "default": ["hook"], "retry": {"attempts": 3, "initial": "100ms"}}))
        cmd = [sys.executable, "-c", script, str(db_path), str(notify)]
        proc = subprocess.Popen(cmd, cwd=tmp_path)
        deadline = time.monotonic() + 60
        while len(rx.keys()) < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)  # mid-delivery: the third request is in flight
        assert proc.wait(10) == -signal.SIGKILL
        seen_before = len(rx.keys())
        assert 3 <= seen_before < len(expected)
        rx.delay = 0.0
        done = subprocess.run(cmd, cwd=tmp_path, timeout=120, check=False)
        assert done.returncode == 0
    counts = Counter(rx.keys())
    assert set(counts) == set(expected)  # every notification arrived at least once
    assert rx.processed == set(expected)  # the receiver's dedup set is exactly the outbox
    assert rx.duplicates >= 1 and sum(counts.values()) > len(expected)  # the in-flight one
    assert rx.bad_signatures == 0
    with Engine(load_settings(None, db=db_path)) as e:
        assert {r[1] for r in deliveries(e, "hook")} == {"delivered"}


# -- file sink and CLI --------------------------------------------------------------------

def test_file_sink_writes_json_lines(eng: Engine, tmp_path: Path) -> None:
    keys = fill_outbox(eng.store, 2)
    out = tmp_path / "alerts.jsonl"
    rep = eng.deliver(cfg(notifiers={"log": {"kind": "file", "path": str(out)}},
                          default=["log"]))
    assert rep.ok
    lines = [orjson.loads(x) for x in out.read_text().splitlines()]
    assert [x["idempotency_key"] for x in lines] == keys
    assert [x["status"] for x in lines] == ["firing", "resolved"]
    assert lines[1]["ends_at"] == "2026-11-21T14:26:00Z"


def test_cli_alerts_and_deliver(eng: Engine, tmp_path: Path, db_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from sloengine import cli_alerts

    with eng.store.transaction():
        tr = transition("route=/a", 100, "inactive", "firing")
        _, trs = advance(eng.store, [tr.result], {})
        enqueue(eng.store, trs, slo(), None, now=T0)
    eng.close()
    app = typer.Typer()
    cli_alerts.register(app)
    notify = tmp_path / "notify.yaml"
    out = tmp_path / "alerts.jsonl"
    notify.write_text(yaml.safe_dump({"notifiers": {"log": {"kind": "file", "path": str(out)}},
                                      "default": ["log"]}))
    runner = CliRunner()
    res = runner.invoke(app, ["alerts", "--db", str(db_path)])
    assert res.exit_code == 0, res.output
    assert "ALERTS: 1 firing, 0 pending" in res.output
    assert "OUTBOX: 1 not routed yet" in res.output
    res = runner.invoke(app, ["deliver", "--notify", str(notify), "--db", str(db_path),
                              "--json"])
    assert res.exit_code == 0, res.output
    data = orjson.loads(res.output)
    assert data["schema"] == "sloengine.deliver/v1" and data["delivered"] == 1
    res = runner.invoke(app, ["alerts", "--db", str(db_path), "--json"])
    view = orjson.loads(res.output)
    assert view["schema"] == "sloengine.alerts/v1"
    assert [(t["target"], t["pending"], t["delivered"], t["breaker"])
            for t in view["targets"]] == [("log", 0, 1, "closed")]
    assert [a["dedup_key"] for a in view["alerts"]] == [
        "checkout-availability/99.9/route=/a/page-fast"]
    assert len(out.read_text().splitlines()) == 1
