"""SLIs, budgets, burn rates and MWMB decisions, against hand-computed numbers
(SLO-MATH.md), and the SRE Workbook's detection times."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from slo_helpers import load_one, put_buckets

from sloengine.compute import evaluate_slo, replay_slo
from sloengine.store import Store

RATIO = {"kind": "ratio", "total": {"source": "spans"}, "bad": {"error": True}}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "c.duckdb")


def test_occurrences_hand_computed(tmp_path: Path, store: Store) -> None:
    slo = load_one(tmp_path, {"indicator": RATIO, "objectives": [{"target": 0.99}],
                              "window": {"rolling": "1d"}})
    # 100 events/min for 1440 minutes; 20 bad per minute in the last 10 minutes
    t = 10_000_000
    rows = [("", m, 100.0 if m < t - 10 else 80.0, 100.0) for m in range(t - 1440, t)]
    put_buckets(store, slo, rows)
    [r] = evaluate_slo(store, slo, t)
    assert (r.good, r.total) == (143_800.0, 144_000.0)
    assert r.sli == 143_800 / 144_000
    assert r.error_budget.unit == "events"
    assert r.error_budget.allowed == pytest.approx(1440.0)  # 1 % of 144,000
    assert r.error_budget.consumed == 200.0
    assert r.error_budget.consumed_ratio == pytest.approx(200 / 1440)
    assert r.error_budget.remaining_ratio == pytest.approx(1 - 200 / 1440)
    # burn rates: e(5m) = 100/500 = 0.2 → 20; e(1h) = 200/6000 → 3.333...
    assert r.burn_rates["5m"] == pytest.approx(20.0)
    assert r.burn_rates["1h"] == pytest.approx(200 / 6000 / 0.01)
    assert r.burn_rates["1d"] == pytest.approx(200 / 144_000 / 0.01)
    # time to exhaustion at the 1h burn: remaining × P / BR
    assert r.time_to_exhaustion_seconds == pytest.approx(
        (1 - 200 / 1440) * 86_400 / (200 / 6000 / 0.01))
    assert r.status == "ok"


def test_no_data_and_insufficient_data(tmp_path: Path, store: Store) -> None:
    slo = load_one(tmp_path, {"indicator": RATIO, "objectives": [{"target": 0.99}],
                              "window": {"rolling": "1d"}, "alerting": {"minEvents": 50}})
    [r] = evaluate_slo(store, slo, 5_000_000)
    assert (r.status, r.sli, r.error_budget.consumed_ratio, r.burn_rates["1h"]) == (
        "no_data", None, None, None)
    put_buckets(store, slo, [("", 5_000_000 - 3, 10.0, 10.0)])
    [r] = evaluate_slo(store, slo, 5_000_000)
    assert (r.status, r.sli) == ("insufficient_data", 1.0)


def test_overspent_budget_goes_negative_not_clamped(tmp_path: Path, store: Store) -> None:
    slo = load_one(tmp_path, {"indicator": RATIO, "objectives": [{"target": 0.999}],
                              "window": {"rolling": "1h"}})
    put_buckets(store, slo, [("", 100 + m, 50.0, 100.0) for m in range(60)])
    [r] = evaluate_slo(store, slo, 160)
    assert r.error_budget.consumed_ratio == pytest.approx(500.0)
    assert r.error_budget.remaining_ratio == pytest.approx(-499.0)
    assert r.time_to_exhaustion_seconds == 0.0


def test_timeslices_two_weeks_budget(tmp_path: Path, store: Store) -> None:
    """SLO-MATH.md: 2 weeks of 1-minute slices = 20,160; at 95 % the budget is 1,008 slices."""
    slo = load_one(tmp_path, {
        "indicator": RATIO, "objectives": [{"target": 0.95, "timeSliceTarget": 0.9}],
        "window": {"rolling": "14d"},
        "budgeting": {"method": "Timeslices", "timeSliceWindow": "1m"}})
    t = 20_160 * 3
    # one bad slice (ratio 0.8 < 0.9), one good (0.95), one empty minute: no data, not good
    put_buckets(store, slo, [("", t - 3, 8.0, 10.0), ("", t - 2, 19.0, 20.0)])
    [r] = evaluate_slo(store, slo, t)
    assert r.error_budget.unit == "slices"
    assert r.error_budget.allowed == pytest.approx(1008.0)
    assert (r.good, r.total, r.error_budget.consumed) == (1.0, 2.0, 1.0)
    assert r.sli == 0.5
    # 5m window: 2 slices with data, 1 bad → e = 0.5 → burn 10
    assert r.burn_rates["5m"] == pytest.approx(10.0)


def test_ratio_timeslices_mean_of_slice_ratios(tmp_path: Path, store: Store) -> None:
    slo = load_one(tmp_path, {
        "indicator": RATIO, "objectives": [{"target": 0.9}], "window": {"rolling": "1h"},
        "budgeting": {"method": "RatioTimeslices", "timeSliceWindow": "5m"}})
    t = 12_000
    # slice A: 1 event, good; slice B: 99 good of 100 -> mean(1, 0.99) = 0.995
    put_buckets(store, slo, [("", t - 10, 1.0, 1.0), ("", t - 5, 99.0, 100.0)])
    [r] = evaluate_slo(store, slo, t)
    assert r.sli == pytest.approx(0.995)
    assert r.error_budget.consumed == pytest.approx(0.01)
    assert r.error_budget.allowed == pytest.approx(0.2)  # 10 % of 2 slices


def test_grouping_and_objective_tiers(tmp_path: Path, store: Store) -> None:
    slo = load_one(tmp_path, {"indicator": RATIO, "groupBy": ["route"],
                              "objectives": [{"target": 0.999, "name": "gold"},
                                             {"target": 0.99, "name": "silver"}],
                              "window": {"rolling": "1d"}})
    put_buckets(store, slo, [("route=/a", 100, 995.0, 1000.0), ("route=/b", 100, 10.0, 10.0)])
    res = {(r.group, r.objective): r for r in evaluate_slo(store, slo, 101)}
    assert set(res) == {("route=/a", "gold"), ("route=/a", "silver"), ("route=/b", "gold"),
                        ("route=/b", "silver")}
    assert res["route=/a", "gold"].error_budget.consumed_ratio == pytest.approx(5.0)
    assert res["route=/a", "silver"].error_budget.consumed_ratio == pytest.approx(0.5)
    assert res["route=/b", "gold"].sli == 1.0


def test_calendar_month_window_in_time_zone(tmp_path: Path, store: Store) -> None:
    """Calendar month in Europe/Berlin: 2026-11-01T00:00+01:00 = 2026-10-31T23:00Z."""
    slo = load_one(tmp_path, {"indicator": RATIO, "objectives": [{"target": 0.99}],
                              "window": {"calendar": "month", "timeZone": "Europe/Berlin"}})
    nov1 = 1793487600 // 60
    put_buckets(store, slo, [("", nov1 - 1, 0.0, 100.0),   # October in Berlin: excluded
                             ("", nov1, 90.0, 100.0),     # first minute of November
                             ("", nov1 + 60, 100.0, 100.0)])
    [r] = evaluate_slo(store, slo, nov1 + 1000)
    assert (r.good, r.total) == (190.0, 200.0)
    assert r.window == "calendar month (Europe/Berlin)"


def test_corrections_are_excluded(tmp_path: Path, store: Store) -> None:
    start = 29_000_000
    iso = datetime.fromtimestamp(start * 60, UTC).isoformat()
    slo = load_one(tmp_path, {"indicator": RATIO, "objectives": [{"target": 0.99}],
                              "window": {"rolling": "1d"},
                              "corrections": [{"start": iso, "duration": "10m",
                                               "reason": "planned DB failover",
                                               "author": "jane"}]})
    put_buckets(store, slo, [("", start + m, 0.0 if m < 10 else 100.0, 100.0)
                             for m in range(30)])
    [r] = evaluate_slo(store, slo, start + 30)
    assert (r.good, r.total) == (2000.0, 2000.0)


@pytest.mark.parametrize("error_ratio", [1.0, 0.5, 0.1, 0.05, 0.02])
def test_workbook_detection_times_30d_999(tmp_path: Path, store: Store,
                                          error_ratio: float) -> None:
    """SLO-MATH.md: detection time for a constant error ratio e from a clean history is
    f·B·W / e (100 % errors, f = 14.4, W = 1 h, B = 0.001 → 51.8 s). Evaluating every minute,
    the page tier must fire at the first minute boundary after that time, and not before."""
    slo = load_one(tmp_path, {"indicator": RATIO, "objectives": [{"target": 0.999}],
                              "window": {"rolling": "30d"}})
    t0 = 40_000_000
    rate = 1000.0
    history = [("", m, rate, rate) for m in range(t0 - 3 * 1440, t0)]
    incident = [("", m, rate * (1 - error_ratio), rate) for m in range(t0, t0 + 240)]
    put_buckets(store, slo, history + incident)
    alerts = replay_slo(store, slo, t0, t0 + 240, 1)
    first = {a.tier: a.firing for a in alerts if a.firing is not None and a.pending >= t0}
    for tier, f, w_min, short_min in (("page-fast", 14.4, 60, 5), ("page-slow", 6.0, 360, 30)):
        # continuous detection time (minutes) for the long window, and for the short one
        need_long = f * 0.001 * w_min / error_ratio
        need_short = f * 0.001 * short_min / error_ratio
        expected = t0 + max(math.floor(need_long) + 1, math.floor(need_short) + 1)
        if error_ratio <= f * 0.001:
            assert tier not in first
        else:
            assert first.get(tier) == expected, (tier, need_long)
    if error_ratio == 1.0:
        assert pytest.approx(51.84) == 14.4 * 0.001 * 3600 / 1.0  # seconds, as published
        assert first["page-fast"] == t0 + 1
