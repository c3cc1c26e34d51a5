"""Wire formats of the notifiers, as golden JSON (regenerate with SLOENGINE_UPDATE_GOLDEN=1,
review the diff, commit), and PagerDuty / Slack against local fake servers (the real ones are
external)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from notify_helpers import Receiver

from sloengine.alerting import Notice, NotifyConfig, deliver_pass
from sloengine.alerting.notice import Exemplar, Offender, from_json
from sloengine.alerting.notifiers import signed_headers
from sloengine.alerting.payloads import alertmanager, notice_json, pagerduty, slack
from sloengine.store import Store

GOLDEN = ROOT / "tests" / "golden"
NOW = datetime(2026, 11, 21, 14, 26, 3, tzinfo=UTC)

FIRING = Notice(
    idempotency_key="89af6faae8e71f6a15a562892b73d2af",
    dedup_key="gateway-availability/99.9/-/page-fast", status="firing",
    from_state="inactive", eval_minute=29921185, at="2026-11-21T14:25:00Z",
    starts_at="2026-11-21T14:25:00Z", ends_at=None, slo="gateway-availability",
    slo_version="163a2cab09014a99", service="api-gateway", objective="99.9", target=0.999,
    group="", window="rolling 30d", tier="page-fast", severity="page", team="edge",
    owner="edge-oncall@example.com",
    runbook="https://runbooks.example.com/edge/gateway-availability",
    description="Requests answered without a server error (5xx) at the gateway.",
    labels={"layer": "gateway", "tier": "1", "slo": "gateway-availability",
            "service": "api-gateway", "objective": "99.9", "severity": "page",
            "alert_tier": "page-fast", "team": "edge"},
    threshold=14.4, long_window="1h", short_window="5m", long_burn_rate=42.6829268292683,
    short_burn_rate=210.52631578947367, sli=0.9982054733064154, good=4450.0, total=4458.0,
    budget_remaining_ratio=-0.794526693584567, time_to_exhaustion_seconds=0.0,
    top_offenders=(Offender("api-gateway", "POST /orders", 4),),
    trace_errors=(Offender("api-gateway", "POST /orders", 4),
                  Offender("orders-service", "POST /orders", 4),
                  Offender("payments-service", "POST /payments", 4)),
    exemplars=(Exemplar("26663aed-7b46-4838-b332-c3dc8b19636d",
                        "3ee3f24f890405590de360fa34e6acbe", "api-gateway", "POST /orders",
                        "2026-11-21T14:24:22.950619Z", 60.653,
                        "sloengine trace 26663aed-7b46-4838-b332-c3dc8b19636d"),),
)
RESOLVED = dataclasses.replace(
    FIRING, idempotency_key="0d4f1c6b1f3f3e7e9a7d3d2f3c1b0a99", status="resolved",
    from_state="firing", eval_minute=29921250, at="2026-11-21T15:30:00Z",
    ends_at="2026-11-21T15:30:00Z", long_burn_rate=3.1, short_burn_rate=0.0,
    time_to_exhaustion_seconds=None, top_offenders=(), trace_errors=(), exemplars=())


def golden(name: str, data: Any) -> None:
    path = GOLDEN / name
    data = json.loads(json.dumps(data))  # tuples → lists, as a receiver sees them
    if os.environ.get("SLOENGINE_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    assert data == json.loads(path.read_text())


def test_notice_round_trips_through_json() -> None:
    assert from_json(json.dumps(notice_json(FIRING))) == FIRING


def test_slack_golden() -> None:
    golden("notify-slack.json", {"firing": slack(FIRING), "resolved": slack(RESOLVED)})


def test_pagerduty_golden() -> None:
    sev = {"page": "critical", "ticket": "warning"}
    trigger, resolve = pagerduty(FIRING, "R0UT1NGKEY", sev), pagerduty(RESOLVED, "R0UT1NGKEY",
                                                                        sev)
    assert trigger["dedup_key"] == resolve["dedup_key"] == FIRING.dedup_key
    golden("notify-pagerduty.json", {"trigger": trigger, "resolve": resolve})


def test_alertmanager_golden() -> None:
    ttl = timedelta(hours=24)
    firing = alertmanager(FIRING, NOW, ttl, None)
    resolved = alertmanager(RESOLVED, NOW, ttl, "https://slo.example.com/slo/{slo}")
    assert firing["endsAt"] == "2026-11-22T14:26:03Z"  # send time + firingTtl
    assert resolved["endsAt"] == "2026-11-21T15:30:00Z"  # the resolving evaluation
    golden("notify-alertmanager.json", {"firing": firing, "resolved": resolved})


def test_webhook_body_and_signature_golden() -> None:
    body = json.dumps(notice_json(FIRING), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()
    headers = signed_headers(b"whsec", body, FIRING.idempotency_key)
    want = hmac.new(b"whsec", body, hashlib.sha256).hexdigest()
    assert headers == {"X-Sloengine-Signature": f"sha256={want}",
                       "Idempotency-Key": FIRING.idempotency_key}
    golden("notify-webhook.json", notice_json(FIRING))


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Store(tmp_path / "p.duckdb")
    yield s
    s.close()


def _enqueue_raw(store: Store, notices: list[Notice]) -> None:
    """Put ready-made notices in the outbox (as enqueue would, minus the alert state)."""
    for i, n in enumerate(notices, 1):
        store.exec_("INSERT INTO alert_notifications VALUES (?,?,?,?,?,?,?,?,?,?,?,NULL)",
                    [i, n.idempotency_key, n.dedup_key, n.eval_minute, n.from_state, n.status,
                     n.slo, n.severity, json.dumps(n.labels), json.dumps(notice_json(n)), NOW])


def test_pagerduty_and_slack_against_fake_servers(store: Store) -> None:
    _enqueue_raw(store, [FIRING, RESOLVED])
    with Receiver(ok=202) as pd, Receiver() as sl:
        cfg = NotifyConfig.model_validate({
            "notifiers": {"pd": {"kind": "pagerduty", "routing_key": "R0UT1NGKEY",
                                 "url": pd.url + "/v2/enqueue"},
                          "slack": {"kind": "slack", "url": sl.url + "/services/T/B/X"}},
            "routes": [{"match": {"severity": "page"}, "notifier": ["pd", "slack"]}]})
        rep = deliver_pass(store, cfg, clock=lambda: NOW)
    assert rep.ok and rep.delivered == 4
    assert [(b["event_action"], b["dedup_key"]) for b in pd.bodies] == [
        ("trigger", FIRING.dedup_key), ("resolve", FIRING.dedup_key)]
    assert pd.bodies[0]["payload"]["severity"] == "critical"
    assert pd.bodies == [pagerduty(FIRING, "R0UT1NGKEY", {"page": "critical"}),
                         pagerduty(RESOLVED, "R0UT1NGKEY", {"page": "critical"})]
    assert sl.bodies == [slack(FIRING), slack(RESOLVED)]
    assert sl.bodies[0]["text"].startswith(":rotating_light: FIRING page")
