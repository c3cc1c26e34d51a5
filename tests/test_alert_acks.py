"""Acknowledging alerts, end to end on the sample data (page-fast of gateway-availability
fires at 2026-11-21T14:25Z): through the Engine, the CLI and the API (an oncall key may, an
auditor may not), in the listing and on the status page, in the audit trail; an ack holds for
one episode only; PagerDuty gets ``acknowledge`` after its trigger, in order, and nobody else
gets anything."""

from __future__ import annotations

import dataclasses
import shutil
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from api_helpers import settings_for
from conftest import ROOT
from notify_helpers import M0, T0, Receiver, slo, transition
from test_alert_payloads import FIRING, golden
from typer.testing import CliRunner

from sloengine.alerting import MemoryNotifier, NotifyConfig, advance, enqueue, refresh
from sloengine.alerting.acks import AlertNotFound
from sloengine.alerting.payloads import pagerduty
from sloengine.api import Receiver as OtlpReceiver
from sloengine.api import Spool, build_app
from sloengine.api.app import StandIn
from sloengine.engine import Engine, default_actor
from sloengine.errors import ConfigError
from sloengine.settings import load_settings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

PEAK = datetime(2026, 11, 21, 14, 25, tzinfo=UTC)
ACK_AT = PEAK + timedelta(minutes=1)
PAGE = "gateway-availability/99.9/-/page-fast"
ROUTE_PAGE = "gateway-route-availability/0.995/route=/orders/page-fast"  # five slashes
FIRING_AT_PEAK = 15


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("acks") / "sample.duckdb"
    with Engine(_settings(db), clock=lambda: PEAK) as engine:
        engine.ingest([ROOT / "sample_data"])
        engine.evaluate(PEAK)
    return db


def _settings(db: Path) -> Any:
    return load_settings(None, db=db, slo_dir=ROOT / "slo_definitions",
                         incidents_file=ROOT / "sample_data" / "incidents.json")


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(template, tmp_path / "sample.duckdb"))


def _audit(engine: Engine, action: str) -> list[tuple[Any, ...]]:
    return engine.store.rows("SELECT actor, object, outcome, detail FROM audit_log "
                             "WHERE action = ? ORDER BY seq", [action])


def test_ack_through_the_engine(db: Path) -> None:
    clock = Clock(ACK_AT)
    with Engine(_settings(db), clock=clock, actor="alice") as e:
        doc = e.ack_alert(PAGE, "payments provider outage", ACK_AT + timedelta(hours=2))
        want = {"by": "alice", "at": "2026-11-21T14:26:00Z", "note": "payments provider outage",
                "until": "2026-11-21T16:26:00Z"}
        assert doc == {"schema": "sloengine.alert-ack/v1", "dedup_key": PAGE,
                       "state": "firing", "acknowledged": want, "already_acknowledged": False}
        # acking again keeps the first ack (who, when, note)
        e.actor = "bob"
        again = e.ack_alert(PAGE, "me too")
        assert again["acknowledged"] == want and again["already_acknowledged"] is True
        view = e.alerts_view()
        acked = {a["dedup_key"]: a["acknowledged"] for a in view["alerts"]}
        assert len(acked) == FIRING_AT_PEAK and acked.pop(PAGE) == want
        assert set(acked.values()) == {None}
        assert [a["dedup_key"] for a in e.alerts_view(acknowledged=True)["alerts"]] == [PAGE]
        assert len(e.alerts_view(acknowledged=False)["alerts"]) == FIRING_AT_PEAK - 1
        assert [a["acknowledged"] for a in e.alerts_view()["alerts"]
                if a["dedup_key"] == PAGE] == [want]
        # one acknowledge notification, after the trigger, whatever the number of acks
        assert e.store.rows("SELECT to_state FROM alert_notifications WHERE dedup_key = ? "
                            "ORDER BY notification_id", [PAGE]) == [("firing",),
                                                                    ("acknowledged",)]
        # bad input and unknown alerts: clear errors, audited
        with pytest.raises(AlertNotFound, match="no firing alert with the key 'x/1/-/y'"):
            e.ack_alert("x/1/-/y")
        with pytest.raises(ConfigError, match="note: at most 500 characters"):
            e.ack_alert(PAGE, "n" * 501)
        with pytest.raises(ConfigError, match="is not in the future"):
            e.ack_alert(PAGE, None, ACK_AT)
        # the ack lapses at `until`
        clock.t = ACK_AT + timedelta(hours=2)
        assert e.alerts_view(acknowledged=True)["alerts"] == []
        clock.t = ACK_AT + timedelta(minutes=5)
        assert e.unack_alert(PAGE) == {"schema": "sloengine.alert-ack/v1", "dedup_key": PAGE,
                                       "state": "firing", "acknowledged": None,
                                       "removed": True}
        assert e.unack_alert(PAGE)["removed"] is False
        assert e.alerts_view(acknowledged=True)["alerts"] == []
        with pytest.raises(AlertNotFound):
            e.unack_alert("x/1/-/y")
        acks = _audit(e, "alert.ack")
        assert [(a[0], a[1], a[2]) for a in acks] == [
            ("alice", PAGE, "ok"), ("bob", PAGE, "ok"), ("bob", "x/1/-/y", "error"),
            ("bob", PAGE, "error"), ("bob", PAGE, "error")]
        assert orjson.loads(acks[1][3])["already_acknowledged"] is True
        assert [(a[0], a[1], orjson.loads(a[3])["removed"]) for a in _audit(e, "alert.unack")
                if a[2] == "ok"] == [("bob", PAGE, True), ("bob", PAGE, False)]
        assert e.audit_verify().ok


def test_ack_holds_for_one_episode_only(tmp_path: Path) -> None:
    """Fire, ack, resolve, fire again: the new episode is not acknowledged. An alert acked
    while pending gets its acknowledge queued right behind its trigger."""
    clock = Clock(T0)
    with Engine(load_settings(None, db=tmp_path / "e.duckdb"), clock=clock) as e:
        key = "checkout-availability/99.9/route=/a/page-fast"

        def step(minute: int, to: str, fors: int = 0) -> None:
            tr = transition("route=/a", minute, "-", to)
            with e.store.transaction():
                _, trs = advance(e.store, [tr.result], {("checkout-availability",
                                                         "page-fast"): fors})
                enqueue(e.store, trs, slo(), None, now=clock())

        step(M0, "firing")
        e.ack_alert(key, "on it")
        assert e.alerts_view()["alerts"][0]["acknowledged"]["note"] == "on it"
        step(M0 + 5, "resolved")
        with pytest.raises(AlertNotFound):
            e.ack_alert(key)
        assert e.alerts_view(states=("resolved",))["alerts"][0]["acknowledged"] is None
        step(M0 + 10, "firing")
        [a] = e.alerts_view()["alerts"]
        assert (a["state"], a["acknowledged"]) == ("firing", None)
        assert e.alerts_view(acknowledged=True)["alerts"] == []
        # pending at M0+20 (for: 5m), acked, firing at M0+25: trigger then acknowledge
        step(M0 + 15, "resolved")
        step(M0 + 20, "firing", fors=5)
        assert e.alerts_view()["alerts"][0]["state"] == "pending"
        assert e.ack_alert(key)["state"] == "pending"
        step(M0 + 25, "firing", fors=5)
        assert e.alerts_view(acknowledged=True)["alerts"][0]["state"] == "firing"
        assert e.store.rows("SELECT to_state, eval_minute FROM alert_notifications "
                            "ORDER BY notification_id") == [
            ("firing", M0), ("acknowledged", int(T0.timestamp()) // 60),
            ("resolved", M0 + 5), ("firing", M0 + 10), ("resolved", M0 + 15),
            ("firing", M0 + 25), ("acknowledged", int(T0.timestamp()) // 60)]


def test_pagerduty_acknowledge_golden() -> None:
    ack = dataclasses.replace(FIRING, status="acknowledged", from_state="firing",
                              idempotency_key="5b0c2f8e3a1d4e6f9a7b8c0d1e2f3a4b",
                              at="2026-11-21T14:26:00Z")
    body = pagerduty(ack, "R0UT1NGKEY", {"page": "critical"})
    assert body["dedup_key"] == pagerduty(FIRING, "R0UT1NGKEY", {})["dedup_key"]
    golden("notify-pagerduty-acknowledge.json", body)


def test_pagerduty_gets_acknowledge_after_its_trigger(db: Path) -> None:
    """The trigger fails first: the ack waits behind it (FIFO per target), then both go, in
    order. The webhook on the same route gets the triggers and no ack."""
    clock = Clock(ACK_AT)
    with Engine(_settings(db), clock=clock) as e, Receiver(ok=202, statuses=[500]) as pd:
        e.ack_alert(PAGE, "on it")
        hook = MemoryNotifier()
        cfg = NotifyConfig.model_validate({
            "notifiers": {"pd": {"kind": "pagerduty", "routing_key": "R0UT1NGKEY",
                                 "url": pd.url + "/v2/enqueue"},
                          "hook": {"kind": "webhook", "url": "http://127.0.0.1:9/x",
                                   "secret": "s"},
                          "am": {"kind": "alertmanager", "url": "http://127.0.0.1:9"}},
            "retry": {"attempts": 1},
            "routes": [{"match": {"slo": "gateway-availability"},
                        "notifier": ["pd", "hook", "am"]}]})
        am = MemoryNotifier()
        first = e.deliver(cfg, notifiers={"hook": hook, "am": am})
        assert first.targets["pd"].retrying == 1 and first.targets["pd"].delivered == 0
        assert [(b["event_action"], b["dedup_key"]) for b in pd.bodies] == [
            ("trigger", "gateway-availability/99.9/-/page-fast")]  # failed; nothing after it
        clock.t = ACK_AT + timedelta(minutes=10)
        second = e.deliver(cfg, notifiers={"hook": hook, "am": am})
        assert second.ok
        gw = [k for (k,) in e.store.rows(
            "SELECT dedup_key FROM alert_notifications WHERE slo_name = "
            "'gateway-availability' AND to_state = 'firing' ORDER BY notification_id")]
        sent = [(b["event_action"], b["dedup_key"]) for b in pd.bodies]
        assert sent == [("trigger", PAGE), *[("trigger", k) for k in gw],
                        ("acknowledge", PAGE)]
        assert pd.bodies[-1] == {"routing_key": "R0UT1NGKEY", "event_action": "acknowledge",
                                 "dedup_key": PAGE}
        assert [n.dedup_key for n in hook.sent] == gw
        assert {n.status for n in hook.sent} == {"firing"}
        # Alertmanager got no ack, and its refresh still re-sends the acked alert
        assert {n.status for n in am.sent} == {"firing"}
        assert PAGE in [n.dedup_key for n in refresh.firing_notices(e.store, "am")]
        # the ack (routed to pd only) is not counted as "matched no route"; the other SLOs'
        # triggers are (the route names only gateway-availability)
        view = e.alerts_view()
        assert view["not_routed"] == 0 and view["no_route"] == e.store.one(
            "SELECT count(*) FROM alert_notifications WHERE slo_name <> "
            "'gateway-availability'") > 0


def test_cli_ack_unack(db: Path) -> None:
    from sloengine.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["alerts", "ack", PAGE, "--note", "failing over", "--until",
                              "2h", "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    doc = orjson.loads(res.output)
    assert doc["acknowledged"]["by"] == default_actor()
    assert doc["acknowledged"]["note"] == "failing over"
    until = datetime.fromisoformat(doc["acknowledged"]["until"])
    at = datetime.fromisoformat(doc["acknowledged"]["at"])
    assert until - at == timedelta(hours=2)
    res = runner.invoke(app, ["alerts", "--db", str(db)])
    assert res.exit_code == 0
    lines = res.output.splitlines()
    i = next(n for n, line in enumerate(lines) if line.endswith(PAGE))
    assert lines[i + 1] == (f"    acknowledged by {default_actor()} at {doc['acknowledged']['at']}"
                            f" until {doc['acknowledged']['until']}: failing over")
    res = runner.invoke(app, ["alerts", "--db", str(db), "--json"])
    [mine] = [a for a in orjson.loads(res.output)["alerts"] if a["acknowledged"]]
    assert mine["dedup_key"] == PAGE and mine["acknowledged"] == doc["acknowledged"]
    res = runner.invoke(app, ["alerts", "unack", PAGE, "--db", str(db)])
    assert res.exit_code == 0 and res.output == f"{PAGE} (firing) is no longer acknowledged\n"
    res = runner.invoke(app, ["alerts", "ack", "nope/1/-/x", "--db", str(db)])
    assert res.exit_code != 0
    with Engine(_settings(db), clock=lambda: ACK_AT) as e:
        assert [(r[0], r[2]) for r in _audit(e, "alert.ack")] == [
            (default_actor(), "ok"), (default_actor(), "error")]
        assert e.audit_verify().ok


@contextmanager
def _app(db: Path, work: Path) -> Iterator[tuple[TestClient, Engine, dict[str, str],
                                                   dict[str, str]]]:
    settings = settings_for(db, work)
    engine = Engine(settings, clock=lambda: ACK_AT)
    keys, ids = {}, {}
    for role in ("oncall", "auditor", "ingest"):
        row, keys[role] = engine.create_key(role, f"{role} key")
        ids[role] = row.key_id
    lock = threading.RLock()
    receiver = OtlpReceiver(engine, Spool(work / "spool", max_bytes=1 << 20, max_batches=10),
                            lock, settings.http)
    app = build_app(receiver, service=StandIn(engine, lock, settings))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client, engine, keys, ids
    finally:
        engine.close()


def test_api_ack_with_oncall_key(db: Path, tmp_path: Path) -> None:
    with _app(db, tmp_path) as (c, e, keys, ids):
        def h(role: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {keys[role]}"}

        url = f"/api/v1/alerts/{ROUTE_PAGE}/ack"
        assert c.post(url, json={"note": "x"}, headers=h("auditor")).status_code == 403
        assert c.post(url, headers=h("ingest")).status_code == 403
        assert c.post(url, headers={}).status_code == 401
        r = c.post(url, json={"note": "on it", "id": 1}, headers=h("oncall"))
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.id"
        r = c.post(url, json={"note": "n" * 501}, headers=h("oncall"))
        assert r.status_code == 422
        r = c.post(url, json={"until": "soon"}, headers=h("oncall"))
        assert r.status_code == 422 and "until" in r.json()["detail"]
        r = c.post(url, json={"note": "<b>on it</b>", "until": "2h"}, headers=h("oncall"))
        assert r.status_code == 200, r.text
        who = f"apikey:{ids['oncall']}"
        want = {"by": who, "at": "2026-11-21T14:26:00Z", "note": "<b>on it</b>",
                "until": "2026-11-21T16:26:00Z"}
        assert r.json() == {"schema": "sloengine.alert-ack/v1", "dedup_key": ROUTE_PAGE,
                            "state": "firing", "acknowledged": want,
                            "already_acknowledged": False}
        # the same key percent-encoded, and an ISO until
        enc = f"/api/v1/alerts/{PAGE.replace('/', '%2F')}/ack"
        r = c.post(enc, json={"until": "2026-11-21T18:00:00Z"}, headers=h("oncall"))
        assert r.status_code == 200 and r.json()["dedup_key"] == PAGE
        assert r.json()["acknowledged"]["until"] == "2026-11-21T18:00:00Z"
        r = c.post("/api/v1/alerts/no/such/-/alert/ack", headers=h("oncall"))
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["detail"] == "no firing alert with the key 'no/such/-/alert'"
        # the listing, filtered
        r = c.get("/api/v1/alerts?acknowledged=true", headers=h("auditor"))
        assert [(a["dedup_key"], a["acknowledged"]["by"]) for a in r.json()["alerts"]] == [
            (PAGE, who), (ROUTE_PAGE, who)]
        r = c.get("/api/v1/alerts?acknowledged=false&limit=500", headers=h("auditor"))
        assert len(r.json()["alerts"]) == FIRING_AT_PEAK - 2
        # the status page: acknowledged by whom, the note escaped
        page = c.get("/", headers={**h("oncall"), "accept": "text/html"}).text
        assert f"acknowledged by {who}" in page
        assert 'title="&lt;b&gt;on it&lt;/b&gt; · until 2026-11-21T16:26:00Z"' in page
        assert "<b>on it</b>" not in page
        # unack
        assert c.delete(url, headers=h("auditor")).status_code == 403
        r = c.delete(url, headers=h("oncall"))
        assert r.status_code == 200 and r.json()["removed"] is True
        r = c.get("/api/v1/alerts?acknowledged=true", headers=h("oncall"))
        assert [a["dedup_key"] for a in r.json()["alerts"]] == [PAGE]
        rows = e.store.rows("SELECT actor, action, object, outcome FROM audit_log WHERE "
                            "action LIKE 'alert.%ack' ORDER BY seq")
        assert rows == [(who, "alert.ack", ROUTE_PAGE, "ok"), (who, "alert.ack", PAGE, "ok"),
                        (who, "alert.ack", "no/such/-/alert", "error"),
                        (who, "alert.unack", ROUTE_PAGE, "ok")]
        assert e.audit_verify().ok


def test_status_page_escapes_who_acked(db: Path) -> None:
    with Engine(_settings(db), clock=lambda: ACK_AT, actor="<img src=x onerror=alert(1)>") as e:
        e.ack_alert(PAGE)
        html = e.page_html("overview", results=e.status(), alerts=e.live_alerts(), now=ACK_AT)
    assert "acknowledged by &lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img src=x" not in html
