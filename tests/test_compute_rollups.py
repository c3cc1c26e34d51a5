"""Hourly rollups (compute/rollups.py) and the batched materialise / evaluate of a tick:
rollups always equal the sums of their minutes, late data inside the lateness window
rewrites exactly the touched buckets and hours, and evaluating through the rollups gives
the same results as reading every minute."""

from __future__ import annotations

import math
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import pytest
from slo_helpers import load_one

from sloengine.compute import evaluate_slo, evaluate_slos, materialize, materialize_many, rollups
from sloengine.compute.buckets import bucket_query, events_sql
from sloengine.compute.pulled import write_pulled
from sloengine.spec import LoadedSLO
from sloengine.store import Store

NS = 60_000_000_000
H0 = 480_000  # an hour number (2024-10-04T00:00Z): minute H0 * 60 starts an hour
M0 = H0 * 60
RATIO = {"kind": "ratio", "total": {"source": "spans"}, "bad": {"error": True}}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "r.duckdb")


def add_batch(store: Store, batch: int, events: list[tuple[int, bool, str]]) -> None:
    """One ingest batch of spans: (minute, is_error, route), each ending 1 s into its
    minute, 10 ms long."""
    store.exec_(
        "INSERT INTO spans (batch_id, trace_id, span_id, name, kind, service_name,"
        " start_time_unix_nano, end_time_unix_nano, duration_ns, status_code, is_error,"
        " http_route, http_method, http_status_code, event_count)"
        " SELECT ?, lpad(to_hex(? * 100000 + i), 32, '0'), lpad(to_hex(i), 16, '0'), 'GET',"
        " 'SERVER', 'svc', (m * ? + 990000000)::UBIGINT, (m * ? + 1000000000)::UBIGINT,"
        " 10000000, CASE WHEN e THEN 'ERROR' ELSE 'UNSET' END, e, r, 'GET',"
        " CASE WHEN e THEN 500 ELSE 200 END, 0"
        " FROM (SELECT unnest(?::BIGINT[]) AS m, unnest(?::BOOLEAN[]) AS e,"
        "  unnest(?::VARCHAR[]) AS r, generate_subscripts(?::BIGINT[], 1) AS i)",
        [batch, batch, NS, NS, [m for m, _, _ in events], [e for _, e, _ in events],
         [r for _, _, r in events], [m for m, _, _ in events]])
    store.exec_(
        "INSERT INTO ingest_batches (batch_id, source, format, signal, sha256, size_bytes,"
        " received_at, finished_at, status, accepted_spans) VALUES"
        " (?, 'test', 'otlp-proto', 'traces', ?, 0, now(), now(), 'complete', ?)",
        [batch, f"t-{batch}", len(events)])


def history(minutes: int, every: int = 1) -> list[tuple[int, bool, str]]:
    """Events over [M0, M0 + minutes): 1–3 per minute on two routes, every 7th an error."""
    out = []
    for k in range(0, minutes, every):
        for j in range(1 + k % 3):
            out.append((M0 + k, (k + j) % 7 == 0, "/a" if j % 2 else "/b"))
    return out


def ref_hours(events: list[tuple[int, bool, str]]) -> list[tuple[Any, ...]]:
    """The reference: (grp '', hour − H0, good, total) summed from the raw events."""
    sums: dict[int, list[float]] = {}
    for m, err, _ in events:
        g_n = sums.setdefault(m // 60 - H0, [0.0, 0.0])
        g_n[0] += not err
        g_n[1] += 1
    return [("", h, g, n) for h, (g, n) in sorted(sums.items())]


def close(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-12 relative."""
    if is_dataclass(a) and is_dataclass(b):
        return all(close(getattr(a, f.name), getattr(b, f.name)) for f in fields(a))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)
    return bool(a == b)


def hourly(store: Store, name: str) -> list[tuple[Any, ...]]:
    return store.rows("SELECT grp, hour - ?, good, total FROM slo_buckets_hourly "
                      "WHERE slo_name = ? ORDER BY grp, hour", [H0, name])


def minutes_of(store: Store, name: str) -> list[tuple[Any, ...]]:
    return store.rows("SELECT grp, minute - ?, good, total FROM slo_buckets "
                      "WHERE slo_name = ? ORDER BY grp, minute", [M0, name])


def slos(tmp: Path) -> list[LoadedSLO]:
    base = {"indicator": RATIO, "objectives": [{"target": 0.99}], "window": {"rolling": "1d"}}
    return [
        load_one(tmp, base, "plain"),
        load_one(tmp, {**base, "groupBy": ["route"]}, "by-route"),
        load_one(tmp, {**base, "window": {"rolling": "7d"}, "corrections": [
            {"start": "2024-10-11T03:07:00Z", "end": "2024-10-11T05:31:00Z",
             "reason": "maintenance", "author": "ops"},
            {"start": "2024-10-04T00:20:00Z", "duration": "30m", "repeat": "daily",
             "reason": "nightly batch", "author": "ops"}]}, "corrected"),
        load_one(tmp, {**base, "window": {"calendar": "week", "timeZone": "Europe/Berlin"}},
                 "calendar"),
        load_one(tmp, {**base, "budgeting": {"method": "Timeslices", "timeSliceWindow": "5m"},
                       "groupBy": ["route"], "objectives": [
                           {"target": 0.99, "timeSliceTarget": 0.9},
                           {"target": 0.95, "timeSliceTarget": 0.7}]}, "slices"),
        load_one(tmp, {**base, "budgeting": {"method": "RatioTimeslices",
                                             "timeSliceWindow": "1m"}}, "ratio-slices"),
        load_one(tmp, {**base, "budgeting": {"method": "Timeslices", "timeSliceWindow": "7m"},
                       "objectives": [{"target": 0.99, "timeSliceTarget": 0.9}],
                       "window": {"rolling": "7d"}, "corrections": [
            {"start": "2024-10-11T03:07:00Z", "end": "2024-10-11T05:31:00Z",
             "reason": "maintenance", "author": "ops"}]}, "odd-slices"),
        load_one(tmp, {**base, "budgeting": {"method": "Timeslices", "timeSliceWindow": "1m"},
                       "objectives": [{"target": 0.99, "timeSliceTarget": 0.8}],
                       "window": {"calendar": "week", "timeZone": "America/New_York"},
                       "corrections": [
            {"start": "2024-10-11T03:07:00Z", "end": "2024-10-11T05:31:00Z",
             "reason": "maintenance", "author": "ops"}]}, "minute-slices"),
    ]

ALL = {"plain": None, "by-route": None, "corrected": None, "calendar": None,
       "slices": "5:0.9,0.7", "ratio-slices": None, "odd-slices": None,
       "minute-slices": "1:0.8"}


def test_split_reads_whole_hours_from_rollups() -> None:
    # [lo, hi) = [10:17, 15:42) in minutes of hour 0; cuts at 12:30 and at 14:00 (a boundary)
    lo, hi = 10 * 60 + 17, 15 * 60 + 42
    minutes, hours = rollups.split(lo, hi, [12 * 60 + 30, 14 * 60, lo, hi])
    assert hours == [(11, 12), (13, 15)]
    assert minutes == [(lo, 11 * 60), (12 * 60, 13 * 60), (15 * 60, hi)]
    assert rollups.split(5, 50, [20]) == ([(5, 50)], [])  # no whole hour inside
    assert rollups.split(60, 180, []) == ([], [(1, 3)])


def test_rollups_sum_minutes_and_late_data_rewrites_touched_hours(
        tmp_path: Path, store: Store) -> None:
    loaded = slos(tmp_path)
    events = history(5 * 60)  # five hours
    add_batch(store, 1, events)
    materialize_many(store, [x.slo for x in loaded])
    assert rollups.mismatches(store, [x.slo for x in loaded]) == []
    assert rollups.rolled_up(store, [x.slo.metadata.name for x in loaded]) == ALL
    before = minutes_of(store, "plain")
    assert hourly(store, "plain") == ref_hours(events)
    assert [n for *_, n in hourly(store, "plain")] == [120.0] * 5
    # a tick: one new minute, and late events for minutes 61 (hour 1) and 250 (hour 4)
    late = [(M0 + 300, False, "/a"), (M0 + 61, True, "/a"), (M0 + 61, True, "/b"),
            (M0 + 250, False, "/a")]
    add_batch(store, 2, late)
    reports = materialize_many(store, [x.slo for x in loaded], lateness_minutes=240)
    assert [r["minutes"] for r in reports] == [301 - 61] * len(loaded)
    assert [r["late_minutes_skipped"] for r in reports] == [0] * len(loaded)
    after = dict(((g, m), (gd, n)) for g, m, gd, n in minutes_of(store, "plain"))
    old = dict(((g, m), (gd, n)) for g, m, gd, n in before)
    changed = {k: (old.get(k), v) for k, v in after.items() if old.get(k) != v}
    # minute 61 held 2 good events (61 % 3 = 1; 61, 62 not multiples of 7), 250 likewise
    assert changed == {("", 61): ((2.0, 2.0), (2.0, 4.0)), ("", 250): ((2.0, 2.0), (3.0, 3.0)),
                       ("", 300): (None, (1.0, 1.0))}
    assert hourly(store, "plain") == ref_hours(events + late)
    assert rollups.mismatches(store, [x.slo for x in loaded]) == []
    # later than the lateness window: those minutes stay as they were, rollups too
    add_batch(store, 3, [(M0 + 301, False, "/a"), (M0 + 2, True, "/a")])
    [r] = materialize_many(store, [loaded[0].slo], lateness_minutes=240)
    assert (r["minutes"], r["late_minutes_skipped"]) == (302 - 60, 58)
    assert ("", 2, 3.0, 3.0) in minutes_of(store, "plain")  # not (3, 4)
    assert hourly(store, "plain") == ref_hours(events + late + [(M0 + 301, False, "/a")])
    assert rollups.mismatches(store, [x.slo for x in loaded]) == []


def test_batched_materialize_equals_one_by_one(tmp_path: Path) -> None:
    loaded = slos(tmp_path)
    a, b = Store(tmp_path / "a.duckdb"), Store(tmp_path / "b.duckdb")
    for s in (a, b):
        add_batch(s, 1, history(3 * 60, every=2))
        add_batch(s, 2, [(M0 + 3 * 60 + 5, True, "/a"), (M0 + 10, False, "/b")])
    materialize_many(a, [x.slo for x in loaded])
    for x in loaded:
        materialize(b, x.slo)
    for s in (a, b):
        add_batch(s, 3, [(M0 + 3 * 60 + 6, False, "/a"), (M0 + 100, True, "/b")])
    reports_a = materialize_many(a, [x.slo for x in loaded])
    reports_b = [materialize(b, x.slo) for x in loaded]
    assert reports_a == reports_b
    q = ("SELECT slo_name, indicator_hash, grp, minute, good, total FROM slo_buckets "
         "ORDER BY ALL")
    assert a.rows(q) == b.rows(q)
    q = ("SELECT slo_name, indicator_hash, last_batch_id, max_minute FROM slo_materialized "
         "ORDER BY 1")
    assert a.rows(q) == b.rows(q) and len(a.rows(q)) == len(loaded)
    for table in ("slo_buckets_hourly", "slo_rollup_state"):
        q = f"SELECT * FROM {table} ORDER BY ALL"
        assert a.rows(q) == b.rows(q)
    # counts exactly; the sum of slice ratios (not read for Timeslices) to rounding
    q = ("SELECT * EXCLUDE (ratio_sum), round(ratio_sum, 9) FROM slo_slices_hourly "
         "ORDER BY ALL")
    assert a.rows(q) == b.rows(q)
    assert a.one("SELECT count(*) FROM slo_slices_hourly") > 0


def test_evaluate_through_rollups_equals_every_minute(tmp_path: Path, store: Store) -> None:
    loaded = slos(tmp_path)
    add_batch(store, 1, history(9 * 24 * 60, every=7))  # nine days, a bucket every 7 min
    materialize_many(store, [x.slo for x in loaded])
    points = [M0 + 60 * 24 * 8 + k for k in (0, 1, 17, 59, 60, 61, 600, 1439, 1441)]
    points += [M0 + 60 * 24 * 9 + 3, M0 + 30, M0 - 5]
    for t in points:
        fast = evaluate_slos(store, loaded, t)
        slow = evaluate_slos(store, loaded, t, rollups_=False)
        one_by_one = [evaluate_slo(store, x, t) for x in loaded]
        # RatioTimeslices sums fractional slice ratios: equal to the last bits, in any order
        # (DuckDB sums in parallel); everything else exactly
        for i in (5,):
            assert loaded[i].slo.metadata.name == "ratio-slices"
            assert close(fast[i], slow[i]) and close(fast[i], one_by_one[i])
            fast[i] = slow[i] = one_by_one[i] = []
        assert fast == slow, t
        assert fast == one_by_one


def test_buckets_written_elsewhere_are_read_by_minute(tmp_path: Path, store: Store) -> None:
    """A pulled source writes buckets itself: its SLO loses its rollups and evaluates from
    minutes; an SLO materialised before rollups existed gets them on its next run."""
    loaded = slos(tmp_path)[:2]  # plain, by-route
    add_batch(store, 1, history(3 * 60))
    materialize_many(store, [x.slo for x in loaded])
    t = M0 + 3 * 60
    before = evaluate_slo(store, loaded[0], t)
    write_pulled(store, loaded[0].slo, M0 + 100, M0 + 101, [("", M0 + 100, 0.0, 50.0)])
    assert rollups.rolled_up(store, ["plain", "by-route"]) == {"by-route": None}
    [r] = evaluate_slo(store, loaded[0], t)
    assert r.total == before[0].total - 2.0 + 50.0
    # as a database from before migration 010: buckets, no rollups
    store.exec_("DELETE FROM slo_buckets_hourly")
    store.exec_("DELETE FROM slo_rollup_state")
    materialize_many(store, [x.slo for x in loaded])  # nothing new ingested
    assert rollups.rolled_up(store, ["plain", "by-route"]) == {"plain": None, "by-route": None}
    assert rollups.mismatches(store) == []
    assert evaluate_slo(store, loaded[1], t) == evaluate_slos(
        store, [loaded[1]], t, rollups_=False)[0]


def test_changed_slicing_rebuilds_slice_rollups(tmp_path: Path, store: Store) -> None:
    """Slice rollups depend on the slice length and targets, not only on the indicator: a
    new timeSliceTarget under the same indicator rolls the slices up again."""
    [*_, sliced] = [x for x in slos(tmp_path) if x.slo.metadata.name == "slices"]
    add_batch(store, 1, history(4 * 60))
    materialize_many(store, [sliced.slo])
    changed = load_one(tmp_path, {
        "indicator": RATIO, "window": {"rolling": "1d"}, "groupBy": ["route"],
        "budgeting": {"method": "Timeslices", "timeSliceWindow": "5m"},
        "objectives": [{"target": 0.99, "timeSliceTarget": 0.8}]}, "slices")
    t = M0 + 4 * 60 - 7
    stale = evaluate_slo(store, changed, t)  # state says 5:0.9,0.7: slices read by minute
    assert stale == evaluate_slos(store, [changed], t, rollups_=False)[0]
    [r] = materialize_many(store, [changed.slo])
    assert (r["minutes"], r["rebuild"]) == (0, False)
    assert rollups.rolled_up(store, ["slices"]) == {"slices": "5:0.8"}
    assert rollups.mismatches(store, [changed.slo]) == []
    assert evaluate_slo(store, changed, t) == stale


def test_one_scan_bucket_query_equals_per_slo_queries(tmp_path: Path, store: Store) -> None:
    """``events_sql`` (all SLOs of a table from one scan, what a tick runs) yields exactly
    the rows of each SLO's own bucket query (what a rebuild runs)."""
    loaded = [*slos(tmp_path), load_one(tmp_path, {
        "indicator": {"kind": "latency", "threshold": "5ms",
                      "total": {"source": "spans", "where": {"route": "/a"}}},
        "groupBy": ["route"], "objectives": [{"target": 0.99}],
        "window": {"rolling": "1d"}}, "latency")]
    add_batch(store, 1, history(3 * 60, every=2))
    lo, hi = M0 + 7, M0 + 150
    sql, params = events_sql("spans", [(x.slo.metadata.name, "h", x.slo, lo, hi)
                                       for x in loaded])
    one_scan = sorted(store.rows(sql, params))
    each = []
    for x in loaded:
        q = bucket_query(x.slo)
        each += [(x.slo.metadata.name, "h", *r) for r in store.rows(
            q.sql, [*q.params, lo * NS, hi * NS])]
    assert one_scan == sorted(each)
    assert {r[0] for r in one_scan} == {x.slo.metadata.name for x in loaded}
    # the latency SLO: /a events only, all slower than 5 ms (10 ms spans) → none good
    assert {(r[2], r[4]) for r in one_scan if r[0] == "latency"} == {("route=/a", 0.0)}
