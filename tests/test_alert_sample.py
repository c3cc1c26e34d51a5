"""Alerts from the sample data, end to end: the 14:25 page of the fast-burn incident carries
what on-call needs, and a real Alertmanager on 127.0.0.1 holds it with the expected labels
and annotations; the resolve at 15:30 reaches it with endsAt."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from conftest import ROOT
from servers import alertmanager

from sloengine.alerting import NotifyConfig
from sloengine.alerting.notice import from_json
from sloengine.engine import Engine
from sloengine.settings import load_settings

PEAK = datetime(2026, 11, 21, 14, 25, tzinfo=UTC)
LATER = datetime(2026, 11, 21, 15, 30, tzinfo=UTC)
PAGE = "gateway-availability/99.9/-/page-fast"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    db = tmp_path_factory.mktemp("alerts") / "sample.duckdb"
    settings = load_settings(None, db=db, slo_dir=ROOT / "slo_definitions",
                             incidents_file=ROOT / "sample_data" / "incidents.json")
    engine = Engine(settings)
    engine.ingest([ROOT / "sample_data"])
    engine.evaluate(PEAK)
    yield engine
    engine.close()


def _notice(engine: Engine, key: str, to_state: str) -> dict[str, object]:
    [(raw,)] = engine.store.rows("SELECT notice FROM alert_notifications WHERE dedup_key = ? "
                                 "AND to_state = ?", [key, to_state])
    return dict(orjson.loads(raw))


def test_page_tells_oncall_what_they_need(sample: Engine) -> None:
    n = from_json(orjson.dumps(_notice(sample, PAGE, "firing")))
    assert (n.slo, n.objective, n.severity, n.tier, n.status) == (
        "gateway-availability", "99.9", "page", "page-fast", "firing")
    # the burn rates that fired, with windows and threshold (golden evaluate output)
    assert (n.long_window, n.short_window, n.threshold) == ("1h", "5m", 14.4)
    assert n.long_burn_rate is not None and n.long_burn_rate > 14.4
    assert n.short_burn_rate is not None and n.short_burn_rate > 14.4
    assert n.budget_remaining_ratio is not None and n.budget_remaining_ratio < 0
    assert n.time_to_exhaustion_seconds == 0.0
    assert n.runbook == "https://runbooks.example.com/edge/gateway-availability"
    # the failing route, and the payment provider outage behind it (incidents.json)
    assert n.top_offenders[0].service == "api-gateway"
    assert n.top_offenders[0].route == "POST /orders"
    assert {o.service for o in n.trace_errors} >= {"orders-service", "payments-service"}
    # three exemplars of bad events in the short window, each with its trace command
    assert len(n.exemplars) == 3
    lo, hi = "2026-11-21T14:20:00Z", "2026-11-21T14:25:00Z"
    for e in n.exemplars:
        assert lo <= e.time < hi and e.route == "POST /orders"
        assert e.command == f"sloengine trace {e.id}"
        assert re.fullmatch(r"[0-9a-f-]{36}", e.id)  # a correlation id
        [(is_error,)] = sample.store.rows(
            "SELECT bool_or(is_error) FROM spans WHERE correlation_id = ? "
            "AND service_name = 'api-gateway' AND kind = 'SERVER'", [e.id])
        assert is_error


def test_alertmanager_fire_and_resolve(sample: Engine, tmp_path: Path) -> None:
    with alertmanager(tmp_path) as url:
        cfg = NotifyConfig.model_validate({
            "notifiers": {"am": {"kind": "alertmanager", "url": url}}, "default": ["am"]})
        rep = sample.deliver(cfg)
        fired = sample.store.one("SELECT count(*) FROM alert_notifications")
        assert rep.ok and rep.delivered == fired
        alerts = httpx.get(f"{url}/api/v2/alerts", timeout=5).json()
        assert len(alerts) == fired
        [page] = [a for a in alerts if a["labels"]["slo"] == "gateway-availability"
                  and a["labels"]["alert_tier"] == "page-fast"]
        assert page["labels"] == {
            "alertname": "SLOErrorBudgetBurn", "slo": "gateway-availability",
            "objective": "99.9", "service": "api-gateway", "severity": "page",
            "alert_tier": "page-fast", "team": "edge", "layer": "gateway", "tier": "1"}
        ann = page["annotations"]
        assert ann["runbook_url"] == "https://runbooks.example.com/edge/gateway-availability"
        assert ann["summary"].startswith("FIRING page: gateway-availability 99.9 (page-fast)")
        assert "42.7× over 1h and 210.5× over 5m > 14.4×" in ann["summary"]
        assert ann["dedup_key"] == PAGE and ann["time_to_exhaustion"] == "exhausted"
        assert "api-gateway POST /orders" in ann["top_offenders"]
        assert len(ann["exemplars"].splitlines()) == 3
        assert all(x.startswith("sloengine trace ") for x in ann["exemplars"].splitlines())
        assert "payments-service POST /payments" in ann["description"]
        assert page["startsAt"] == "2026-11-21T14:25:00.000Z"
        assert page["generatorURL"] == ann["runbook_url"]
        assert page["status"]["state"] == "active"

        # an hour later the fast burn is over: page-fast resolves and is sent with endsAt
        sample.evaluate(LATER)
        resolved = sample.store.one("SELECT count(*) FROM alert_notifications "
                                    "WHERE to_state = 'resolved'")
        assert _notice(sample, PAGE, "resolved")["ends_at"] == "2026-11-21T15:30:00Z"
        rep = sample.deliver(cfg)
        assert rep.ok
        alerts = httpx.get(f"{url}/api/v2/alerts", timeout=5).json()
        keys = {a["annotations"]["dedup_key"] for a in alerts}
        assert PAGE not in keys  # endsAt (15:30) is past: Alertmanager lists it no more
        assert "gateway-availability/99.9/-/ticket-slow" in keys  # still burning
        metrics = httpx.get(f"{url}/metrics", timeout=5).text
        m = re.search(r'alertmanager_alerts_received_total\{status="resolved",version="v2"\} '
                      r"(\d+)", metrics)
        assert m is not None and int(m.group(1)) == resolved > 0
