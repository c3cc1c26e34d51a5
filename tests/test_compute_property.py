"""Property test (hypothesis): the DuckDB results equal a small, obviously correct
pure-Python reference (slo_helpers.ref_*) on random per-minute event streams, for every
budgeting method, and a replay agrees with step-by-step evaluation."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slo_helpers import budget, load_one, put_buckets, ref_burn, ref_slices, ref_sum

from sloengine.compute import evaluate_slo, replay_slo
from sloengine.store import Store

TIERS = [
    {"name": "fast", "severity": "page", "longWindow": "30m", "shortWindow": "5m",
     "burnRate": 4},
    {"name": "slow", "severity": "ticket", "longWindow": "1h", "shortWindow": "10m",
     "burnRate": 1.5},
]
T0 = 1_000_000
SPAN = 240  # minutes of history

streams = st.dictionaries(
    st.integers(min_value=T0 - SPAN, max_value=T0 - 1),
    st.integers(min_value=1, max_value=40).flatmap(
        lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))),
    max_size=120,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = Store(tmp_path_factory.mktemp("prop") / "p.duckdb")
    yield s
    s.close()


def _slo(tmp: Path, method: str, target: float, slice_target: float):  # type: ignore[no-untyped-def]
    budgeting = {"method": method}
    if method != "Occurrences":
        budgeting["timeSliceWindow"] = "5m"
    return load_one(tmp, {
        "indicator": {"kind": "ratio", "total": {"source": "spans"}, "bad": {"error": True}},
        "objectives": [{"target": target, "timeSliceTarget": slice_target}],
        "window": {"rolling": "2h"}, "budgeting": budgeting,
        "alerting": {"tiers": TIERS, "minEvents": 5}})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams,
       method=st.sampled_from(["Occurrences", "Timeslices", "RatioTimeslices"]),
       target=st.sampled_from([0.9, 0.95, 0.99, 0.999]),
       slice_target=st.sampled_from([0.8, 0.9, 0.99]),
       t=st.integers(min_value=T0 - 60, max_value=T0))
def test_evaluate_matches_reference(store: Store, stream: dict[int, tuple[int, int]],
                                    method: str, target: float, slice_target: float,
                                    t: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        store.exec_("DELETE FROM slo_buckets")
        slo = _slo(tmp, method, target, slice_target)
        b = {m: (float(g), float(n)) for m, (g, n) in stream.items()}
        put_buckets(store, slo, [("", m, g, n) for m, (g, n) in b.items()])
        [r] = evaluate_slo(store, slo, t)
        B = budget(target)
        if method == "Occurrences":
            g, n = ref_sum(b, t - 120, t)
            assert (r.good, r.total) == (g, n)
            assert r.sli == (g / n if n else None)
            for w in (5, 10, 30, 60):
                label = {5: "5m", 10: "10m", 30: "30m", 60: "1h"}[w]
                exp = ref_burn(b, t, w, target)
                assert r.burn_rates[label] == pytest.approx(exp) if exp is not None else (
                    r.burn_rates[label] is None)
        else:
            data, bad, rsum = ref_slices(b, t, 120, 5, slice_target)
            if method == "Timeslices":
                assert (r.total, r.error_budget.consumed) == (data, bad)
                assert r.error_budget.allowed == pytest.approx(B * 24)
            else:
                assert r.total == data
                assert r.sli == (pytest.approx(rsum / data) if data else None)
        # the tier decisions follow the reference rule
        for d_, (lw, sw, f) in zip(r.alerts, ((30, 5, 4.0), (60, 10, 1.5)), strict=True):
            _, n_long = ref_sum(b, t - lw, t)
            g_s, n_s = ref_sum(b, t - sw, t)
            if method == "Occurrences":
                lb, sb = ref_burn(b, t, lw, target), ref_burn(b, t, sw, target)
            elif method == "Timeslices":
                dl, bl, _ = ref_slices(b, t, lw, 5, slice_target)
                ds, bs, _ = ref_slices(b, t, sw, 5, slice_target)
                lb = bl / dl / B if dl else None
                sb = bs / ds / B if ds else None
            else:
                dl, _, rl = ref_slices(b, t, lw, 5, slice_target)
                ds, _, rs = ref_slices(b, t, sw, 5, slice_target)
                lb = (dl - rl) / dl / B if dl else None
                sb = (ds - rs) / ds / B if ds else None
            expected = (n_long >= 5 and n_s - g_s >= 1 and lb is not None and sb is not None
                        and lb > f and sb > f)
            assert d_.condition == expected


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams, method=st.sampled_from(["Occurrences", "Timeslices"]))
def test_replay_agrees_with_step_by_step_evaluation(
        store: Store, stream: dict[int, tuple[int, int]], method: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        store.exec_("DELETE FROM slo_buckets")
        slo = _slo(tmp, method, 0.95, 0.9)
        put_buckets(store, slo, [("", m, float(g), float(n)) for m, (g, n) in stream.items()])
        lo, hi = T0 - 60, T0
        intervals = replay_slo(store, slo, lo, hi, 1)
        # the set of minutes each tier's condition held, from replay and from evaluation
        from_replay: dict[str, set[int]] = {"fast": set(), "slow": set()}
        for a in intervals:
            end = a.resolved if a.resolved is not None else hi + 1
            from_replay[a.tier].update(range(a.pending, end))
        from_eval: dict[str, set[int]] = {"fast": set(), "slow": set()}
        for t in range(lo, hi + 1):
            [r] = evaluate_slo(store, slo, t)
            for dec in r.alerts:
                if dec.condition:
                    from_eval[dec.tier].add(t)
        assert from_replay == from_eval
