"""The id index of forensics (store/layout.py, forensics/locate.py): gather() through the index
must return exactly what a scan returns — after optimize_layout(), for data ingested after the
last run (the tail), after a merge run and a rebuild, with a batch left 'ingesting', for ids
that are not plain hex, under truncation, and over a synthetic store of the benchmark's shape.
"""

from __future__ import annotations

import importlib.util
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from otlp_factory import T0, span, trace_request
from test_forensics import A, B, C, _log, _logs_request, h, queue_story_files

from sloengine.engine import Engine
from sloengine.forensics import TraceNotFound, TraceOptions, reconstruct
from sloengine.forensics import gather as gather_mod
from sloengine.forensics.gather import gather
from sloengine.store import Store, key_hash
from sloengine.store.layout import span_key, trace_key

ROOT = Path(__file__).resolve().parents[1]
MS = 1_000_000


def ids_of(store: Store) -> list[str]:
    """Every id a person could type: trace, span and correlation ids of spans and logs, link
    targets, upper-case and padded variants, and ids nobody has."""
    ids = {str(r[0]) for r in store.rows(
        "SELECT trace_id FROM spans UNION SELECT span_id FROM spans "
        "UNION SELECT correlation_id FROM spans UNION SELECT trace_id FROM logs "
        "UNION SELECT span_id FROM logs UNION SELECT correlation_id FROM logs "
        "UNION SELECT unnest([l.span_id FOR l IN links]) FROM spans") if r[0] is not None}
    some = sorted(ids)[:3]
    return sorted(ids) + [i.upper() for i in some] + [f" {i} " for i in some] + [
        "nope", h(0xEE, 16), h(0xEE)]


def story(store: Store, ident: str, *, indexed: bool, max_traces: int = 50) -> Any:
    try:
        return asdict(gather(store, ident, indexed=indexed, max_traces=max_traces))
    except TraceNotFound as exc:
        return f"not found: {exc}"


def assert_same(store: Store, ids: list[str] | None = None, max_traces: int = 50) -> int:
    """The index answers like a scan for every id; returns how many ids were found."""
    assert store.layout_state() is not None
    found = 0
    for ident in ids if ids is not None else ids_of(store):
        want = story(store, ident, indexed=False, max_traces=max_traces)
        got = story(store, ident, indexed=True, max_traces=max_traces)
        assert got == want, ident
        found += isinstance(want, dict)
    return found


class _NoScan:
    def __init__(self, store: Store) -> None:
        raise AssertionError("an indexed gather scanned")


def test_same_stories_before_and_after_optimize(engine: Engine, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    engine.ingest(queue_story_files(tmp_path))
    store = engine.store
    ids = ids_of(store)
    before = {i: story(store, i, indexed=True) for i in ids}  # no index yet: scans
    assert store.layout_state() is None
    rep = store.optimize_layout()
    assert rep.kind == "rebuild" and rep.index_rows > 0 and rep.runs == 1
    assert store.layout_state() is not None
    monkeypatch.setattr(gather_mod, "ScanFinder", _NoScan)
    after = {i: story(store, i, indexed=True) for i in ids}
    assert after == before
    assert sum(isinstance(v, dict) for v in after.values()) > 20
    # the whole analysis on top agrees too
    assert reconstruct(store, "req-1").trace_ids == [h(A, 16), h(B, 16)]


def test_data_after_the_last_optimize_is_found(engine: Engine, tmp_path: Path) -> None:
    traces, logs, access = queue_story_files(tmp_path)
    engine.ingest([traces])
    store = engine.store
    store.optimize_layout()
    # after the run: the logs, the access log, a late span of trace C, and a new trace D
    # whose consumer links to A's producer and shares req-1
    late = tmp_path / "late.binpb"
    d_cons = span(0xD1, 0x51, name="process order-events", kind=5, start_ms=400, dur_ms=20,
                  attrs={"correlation.id": "req-1"})
    lk = d_cons.links.add()
    lk.trace_id, lk.span_id = A.to_bytes(16, "big"), (0x15).to_bytes(8, "big")
    late.write_bytes(trace_request([d_cons, span(C, 0x38, 0x32, start_ms=1030, dur_ms=5),
                                    span(0xD1, 0x52, 0x51, start_ms=405, dur_ms=5)],
                                   "late-service").SerializeToString())
    more_logs = tmp_path / "more-logs.binpb"
    more_logs.write_bytes(_logs_request("late-service", [
        _log(0xD1, 0x52, 410, "late log", corr="req-9"),
        _log(None, None, 420, "no trace, req-9", corr="req-9"),
        _log(A, 0x13, 15, "late log of A", corr="req-1")]).SerializeToString())
    engine.ingest([logs, access, late, more_logs])
    state = store.layout_state()
    assert state is not None and int(store.one(
        f"SELECT count(*) FROM spans WHERE {state.tail_sql()}")) == 3
    found = assert_same(store)
    assert found > 20
    g = gather(store, "req-1")
    assert h(0xD1, 16) in g.trace_ids and "req-9" in g.correlation_ids
    assert any(lg["body"] == "no trace, req-9" for lg in g.logs)
    rep = store.optimize_layout()
    assert rep.kind == "append" and rep.batch_lo == state.watermark
    assert store.optimize_layout().kind == "none"  # nothing new since
    assert assert_same(store) == found
    assert store.optimize_layout(rebuild=True).kind == "rebuild"
    assert assert_same(store) == found


def test_retention_forgets_the_index_and_optimize_rebuilds_it(engine: Engine,
                                                              tmp_path: Path) -> None:
    """Retention deletes rows the index names: the index is dropped in the same transaction
    (lookups scan meanwhile), and the next optimize rebuilds it from what is left."""
    engine.ingest(queue_story_files(tmp_path))
    store = engine.store
    store.optimize_layout()
    ids = ids_of(store)
    assert store.delete_older("spans", T0 + 500 * MS) == 7  # the spans of traces A and B
    assert store.layout_state() is None
    scanned = {i: story(store, i, indexed=False) for i in ids}
    assert {i: story(store, i, indexed=True) for i in ids} == scanned
    assert store.optimize_layout().kind == "rebuild"
    assert assert_same(store, ids) > 10
    g = gather(store, h(A, 16))  # A is left in its log records only
    assert g.spans == [] and g.logs and g.matched_as == ["trace_id"]


def test_batch_left_ingesting_stays_in_the_tail(engine: Engine, tmp_path: Path) -> None:
    engine.ingest(queue_story_files(tmp_path))
    store = engine.store
    # a batch that began but never finished (a crash mid-file): its rows are read as tail
    bid = int(store.one("SELECT max(batch_id) FROM ingest_batches")) + 1
    store.exec_("INSERT INTO ingest_batches (batch_id, source, format, signal, sha256, "
                "size_bytes, received_at, status) VALUES (?, 'x', 'otlp-proto', 'traces', "
                "'x', 0, now(), 'ingesting')", [bid])
    _insert_span(store, bid, h(0xF1, 16), h(0x61), corr="req-1", start=10)
    done = bid + 1
    store.exec_("INSERT INTO ingest_batches (batch_id, source, format, signal, sha256, "
                "size_bytes, received_at, status) VALUES (?, 'y', 'otlp-proto', 'traces', "
                "'y', 0, now(), 'complete')", [done])
    _insert_span(store, done, h(0xF2, 16), h(0x62), corr="req-2", start=20)
    store.optimize_layout()
    state = store.layout_state()
    assert state is not None and state.open_batches == (bid,) and state.watermark == done
    assert assert_same(store) > 20
    assert h(0xF1, 16) in gather(store, "req-1").trace_ids
    store.exec_("UPDATE ingest_batches SET status = 'complete' WHERE batch_id = ?", [bid])
    rep = store.optimize_layout()
    assert rep.kind == "append" and rep.open_batches == ()
    assert assert_same(store) > 20


def _insert_span(store: Store, batch: int, trace_id: str, span_id: str, *, corr: str | None,
                 start: int, parent: str | None = None,
                 links: list[tuple[str, str]] | None = None) -> None:
    t0 = 1_764_000_000_000_000_000 + start * 1_000_000
    store.exec_(
        "INSERT INTO spans (batch_id, trace_id, span_id, parent_span_id, name, kind, "
        "start_time_unix_nano, end_time_unix_nano, duration_ns, status_code, is_error, "
        "correlation_id, links, event_count) VALUES (?, ?, ?, ?, 'op', 'INTERNAL', ?, ?, "
        "1000000, 'UNSET', false, ?, ?, 0)",
        [batch, trace_id, span_id, parent, t0, t0 + 1_000_000, corr,
         [{"trace_id": t, "span_id": s, "trace_state": None, "attributes": None}
          for t, s in links or []] or None])


def test_ids_that_are_not_plain_hex(engine: Engine) -> None:
    """Ingest writes lower-case hex ids; rows written otherwise are still found exactly."""
    store = engine.store
    _insert_span(store, 1, "ODD-TRACE", "span-x", corr="Req-Mixed", start=0)
    _insert_span(store, 1, "ODD-TRACE", "SPAN-Y", corr=None, start=1, parent="span-x")
    _insert_span(store, 1, h(0xA7, 16), "ABCDEF0123456789", corr="Req-Mixed", start=2,
                 links=[("ODD-TRACE", "span-x")])
    _insert_span(store, 1, h(0xA8, 16), h(0x71), corr="req-other", start=3,
                 links=[(h(0xA7, 16), "ABCDEF0123456789")])
    store.exec_("INSERT INTO logs (batch_id, record_id, time_unix_nano, trace_id, span_id, "
                "correlation_id, source_kind) VALUES (1, 'r1', 1, 'ODD-TRACE', 'odd-span', "
                "NULL, 'otlp'), (1, 'r2', 2, NULL, 'f00dfeedf00dfeed', 'req-log', 'otlp')")
    store.optimize_layout()
    ids = [*ids_of(store), "odd-trace", "abcdef0123456789", "ODD-SPAN", "f00dfeedf00dfeed"]
    assert assert_same(store, ids) > 8
    assert gather(store, "Req-Mixed").trace_ids == sorted(["ODD-TRACE", h(0xA7, 16),
                                                          h(0xA8, 16)])


def test_truncation_picks_the_same_traces(engine: Engine) -> None:
    """A chain of 8 consumer traces sharing one correlation id, cut at 3 traces."""
    store = engine.store
    prev: tuple[str, str] | None = None
    for i in range(8):
        t, s = h(0xB00 + i, 16), h(0xB00 + i)
        _insert_span(store, 1 + i // 3, t, s, corr="chain", start=(7 - i) * 10,
                     links=[prev] if prev else None)
        prev = (t, s)
    store.optimize_layout()
    _insert_span(store, 9, h(0xB99, 16), h(0xB99), corr="chain", start=0,
                 links=[prev] if prev else None)  # in the tail, and the earliest
    ids = ["chain", h(0xB00, 16), h(0xB03, 16), h(0xB99, 16), h(0xB05)]
    for cap in (1, 3, 50):
        assert_same(store, ids, max_traces=cap)
    g = gather(store, "chain", max_traces=3)
    assert g.truncated and len(g.trace_ids) == 3 and h(0xB99, 16) in g.trace_ids
    assert reconstruct(store, h(0xB00, 16), TraceOptions(max_traces=2)).truncated


def test_keys_match_what_duckdb_computes() -> None:
    import duckdb

    con = duckdb.connect()
    for key in ["", "req-1", "ÄÖ-ü €", h(0xA1, 16), h(0xA1), "x" * 300]:
        got = con.execute("SELECT md5_number(?)", [key]).fetchone()
        assert got is not None and got[0] == key_hash(key)
    assert trace_key(h(0xA1, 16)) == (0, 0xA1, None)
    assert trace_key("0" * 15 + "1" + "0" * 16) == (1, 0, None)
    assert trace_key("ODD") == (key_hash("ODD") >> 64, key_hash("ODD") & (2**64 - 1), "ODD")
    assert span_key(h(0xFF)) == (0xFF, None)
    assert span_key("ABCDEF0123456789") == (key_hash("ABCDEF0123456789") & (2**64 - 1),
                                            "ABCDEF0123456789")


def _bench_module() -> Any:
    spec = importlib.util.spec_from_file_location("trace_bench",
                                                  ROOT / "benchmarks" / "trace_bench.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_synthetic_store_of_the_benchmarks_shape(db_path: Path) -> None:
    """The benchmark's generator at small size: optimize, append more (the tail), compare
    random ids of every kind; then a merge run, compare again."""
    bench = _bench_module()
    store = Store(db_path)
    step = 50_000_000
    bench.build(store, 0, 3000, 6, 1, step, 10)
    store.optimize_layout()
    bench.build(store, 3000, 3300, 2, 7, step, 10)  # crosses the watermark: 2999 → 3000
    rng = random.Random(7)
    picks = [*rng.sample(range(3300), 40), 2998, 2999, 3000, 3001, 3299]
    ids = [x for t in picks for x in (bench.trace_hex(t), bench.corr_id(t))]
    ids += [str(r[0]) for r in store.rows(
        "SELECT span_id FROM spans ORDER BY hash(span_id) LIMIT 20")]
    assert assert_same(store, ids) == len(ids)
    store.optimize_layout()
    assert assert_same(store, ids) == len(ids)
    # the benchmark's baseline scan reads the columns gather() reads: it must bind
    assert store.rows(bench._SCAN_SQL, {"x": "no-such-id"}) == [(0,)]
    for k in range(4):  # small appends, each indexed: runs are merged as they grow
        bench.build(store, 3300 + 50 * k, 3350 + 50 * k, 1, 9 + k, step, 10)
        rep = store.optimize_layout()
        assert rep.kind == "append" and rep.runs <= 4
    picks = [3000, 3299, 3300, 3349, 3350, 3449, 3499, 17]
    ids = [x for t in picks for x in (bench.trace_hex(t), bench.corr_id(t))]
    assert assert_same(store, ids) == len(ids)
    store.close()


def test_runs_merge_as_they_grow() -> None:
    """Newest runs are merged once together they reach half the run before them: few runs
    to look into, each row copied a few times."""
    from sloengine.store.layout import _to_merge

    assert _to_merge({}, 10) == []
    assert _to_merge({1: 1000}, 10) == []
    assert _to_merge({1: 1000, 2: 10}, 10) == [2]
    assert _to_merge({1: 1000, 2: 20, 3: 10}, 10) == [2, 3]
    assert _to_merge({1: 1000, 2: 30}, 10) == []
    sizes, copied, most = {1: 1000}, 0, 0
    for run in range(2, 258):  # 256 appends of 10 rows after a first run of 1000
        merged = _to_merge(sizes, 10)
        moved = sum(sizes.pop(r) for r in merged)
        copied += moved
        sizes[run] = 10 + moved
        most = max(most, len(sizes))
    assert most <= 8  # O(log n) runs to look into
    assert copied <= 2560 * 8  # each row copied O(log n) times


def test_rows_each_runs_reads_side_by_side(db_path: Path) -> None:
    """Store.rows_each: the rows of each query, in order; inside a transaction of the store
    (whose writes other connections cannot see yet) they run on it, one after the other."""
    store = Store(db_path)
    _insert_span(store, 1, h(0xC1, 16), h(0x81), corr="c-1", start=0)
    queries: list[tuple[str, Any]] = [
        ("SELECT span_id FROM spans", None), ("SELECT count(*) FROM spans WHERE batch_id = ?",
                                              [1]), ("SELECT 42", None)]
    assert store.rows_each(queries) == [[(h(0x81),)], [(1,)], [(42,)]]
    with store.transaction():
        _insert_span(store, 2, h(0xC2, 16), h(0x82), corr=None, start=1)
        assert store.rows_each(queries)[1:] == [[(1,)], [(42,)]]
        assert store.rows_each([("SELECT count(*) FROM spans", None)] * 2) == [[(2,)]] * 2
    assert store.rows_each([("SELECT count(*) FROM spans", None)] * 3) == [[(2,)]] * 3
    store.close()
