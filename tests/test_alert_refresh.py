"""Firing alerts are sent to Alertmanager again every ``resend_every`` (alerting/refresh.py):
a real Alertmanager restarted on the same port knows no alerts until the next refresh, then
holds exactly the ones still firing; resolved alerts are not refreshed; a refresh that fails
is reported and changes no delivery."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from conftest import ROOT
from servers import alertmanager

from sloengine.alerting import NotifyConfig
from sloengine.engine import Engine
from sloengine.settings import load_settings

PEAK = datetime(2026, 11, 21, 14, 25, tzinfo=UTC)
LATER = datetime(2026, 11, 21, 15, 30, tzinfo=UTC)
PAGE = "gateway-availability/99.9/-/page-fast"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(tmp_path: Path, clock: Clock) -> Iterator[Engine]:
    settings = load_settings(None, db=tmp_path / "r.duckdb", slo_dir=ROOT / "slo_definitions")
    eng = Engine(settings, clock=clock)
    eng.ingest([ROOT / "sample_data"])
    eng.evaluate(PEAK)
    yield eng
    eng.close()


def _held(url: str) -> set[str]:
    alerts = httpx.get(f"{url}/api/v2/alerts", params={"active": "true"}, timeout=5).json()
    return {a["annotations"]["dedup_key"] for a in alerts}


def _firing(engine: Engine) -> set[str]:
    return {r[0] for r in engine.store.rows("SELECT dedup_key FROM alerts "
                                            "WHERE state = 'firing'")}


def test_restarted_alertmanager_gets_the_firing_alerts_again(engine: Engine, clock: Clock,
                                                             tmp_path: Path) -> None:
    with alertmanager(tmp_path) as url:
        port = int(url.rsplit(":", 1)[1])
        cfg = NotifyConfig.model_validate({
            "notifiers": {"am": {"kind": "alertmanager", "url": url}}, "default": ["am"]})
        firing = _firing(engine)
        assert PAGE in firing
        rep = engine.deliver(cfg)
        assert rep.ok and rep.delivered == len(firing)
        # the first pass already refreshed (never done before): the same alerts, once more
        assert [(r.target, r.alerts, r.error) for r in rep.refreshed] == [
            ("am", len(firing), None)]
        assert _held(url) == firing
    with alertmanager(tmp_path, port=port) as url:  # restarted: alerts live in memory only
        assert _held(url) == set()
        clock.now += timedelta(seconds=30)  # resend_every (1m) not yet passed
        rep = engine.deliver(cfg)
        assert rep.ok and rep.refreshed == [] and _held(url) == set()
        clock.now += timedelta(seconds=31)
        rep = engine.deliver(cfg)
        assert rep.ok and rep.delivered == 0
        assert [(r.target, r.alerts) for r in rep.refreshed] == [("am", len(firing))]
        assert _held(url) == firing

        # an hour later page-fast resolves: its resolve is delivered, and it is refreshed
        # no more while the alerts still burning are
        before = engine.store.one("SELECT count(*) FROM alert_notifications")
        engine.evaluate(LATER)
        still = _firing(engine)
        assert PAGE not in still and still
        made = engine.store.one("SELECT count(*) FROM alert_notifications") - before
        assert made >= len(firing - still)  # resolves, and alerts that fired since
        clock.now += timedelta(minutes=1)
        rep = engine.deliver(cfg)
        assert rep.ok and rep.delivered == made
        assert [r.alerts for r in rep.refreshed] == [len(still)]
        assert _held(url) == still


def test_failed_refresh_is_reported_and_retried(engine: Engine, clock: Clock,
                                                tmp_path: Path) -> None:
    with alertmanager(tmp_path) as url:
        port = int(url.rsplit(":", 1)[1])
        cfg = NotifyConfig.model_validate({
            "notifiers": {"am": {"kind": "alertmanager", "url": url}}, "default": ["am"]})
        assert engine.deliver(cfg).ok
    clock.now += timedelta(minutes=2)  # Alertmanager is down now
    rep = engine.deliver(cfg)
    [r] = rep.refreshed
    assert not rep.ok and r.error is not None and "ConnectError" in r.error
    assert engine.store.rows("SELECT count(*) FILTER (status = 'delivered'), count(*) "
                             "FROM alert_deliveries")[0] == (len(_firing(engine)),) * 2
    (err,) = engine.store.rows("SELECT last_error FROM alert_refresh")[0]
    assert err == r.error
    with alertmanager(tmp_path, port=port) as url:  # back: the next pass refreshes it
        rep = engine.deliver(cfg)
        assert rep.ok and [r.error for r in rep.refreshed] == [None]
        assert _held(url) == _firing(engine)
    assert engine.store.rows("SELECT last_error FROM alert_refresh")[0] == (None,)


def test_resend_every_zero_turns_it_off(engine: Engine, tmp_path: Path) -> None:
    with alertmanager(tmp_path) as url:
        cfg = NotifyConfig.model_validate({
            "notifiers": {"am": {"kind": "alertmanager", "url": url, "resend_every": "0s"}},
            "default": ["am"]})
        rep = engine.deliver(cfg)
        assert rep.ok and rep.refreshed == [] and rep.delivered == len(_firing(engine))
