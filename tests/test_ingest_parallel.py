"""Decoding in worker processes (sloengine/ingest/parallel.py) stores exactly what decoding
in-process stores: the same rows, chunk by chunk, the same dead letters at the same
locations, the same warnings; and no worker outlives a killed writer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from otlp_factory import T0, kv, span

from sloengine.engine import Engine
from sloengine.ingest import DecodePool, handoff, parallel
from sloengine.model import SourceInfo
from sloengine.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]


def _request(resources: int, per: int) -> ExportTraceServiceRequest:
    """``resources`` ResourceSpans of ``per`` spans: events, links, duplicates (a retried
    span), an invalid span id and an invalid HTTP status in later resources."""
    req = ExportTraceServiceRequest()
    n = 0
    for r in range(resources):
        rs = req.resource_spans.add()
        rs.resource.attributes.append(kv("service.name", f"svc{r % 3}"))
        rs.resource.attributes.append(kv("host.name", f"h{r}"))
        ss = rs.scope_spans.add()
        ss.scope.name = "tests"
        for _ in range(per):
            n += 1
            sp = span(n // 7 + 1, n, parent=n - 1 if n % 7 else None, start_ms=n,
                      attrs={"http.route": f"/r{n % 5}", "http.response.status_code":
                             500 if n % 11 == 0 else 200, "correlation.id": f"c{n // 7}",
                             "n": n, "user.email": "a@b.io", "tags": ["x", "y"]})
            if n % 13 == 0:
                ev = sp.events.add()
                ev.time_unix_nano, ev.name = T0 + n, "exception"
                ev.attributes.append(kv("exception.message", f"boom {n}"))
            if n % 17 == 0:
                lk = sp.links.add()
                lk.trace_id, lk.span_id = (1).to_bytes(16, "big"), (1).to_bytes(8, "big")
            ss.spans.append(sp)
        if r == resources - 3:
            ss.spans.append(span(1, 0))  # all-zero span id: a dead letter
            ss.spans.append(span(2, 10**6, attrs={"http.response.status_code": "teapot"}))
        if r == resources - 2:
            ss.spans.append(span(1, 5))  # the same span again (a retry): stored once
    return req


def _stored(e: Engine) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for table, order in (("spans", "trace_id, span_id"),
                         ("span_events", "trace_id, span_id, seq"),
                         ("resources", "resource_id")):
        cols = [c for c in e.store.columns(table) if c != "batch_id"]
        out[table] = e.store.rows(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {order}")
    out["dead_letters"] = e.store.rows(
        "SELECT location, reason, raw FROM dead_letters ORDER BY location")
    out["batches"] = e.store.rows(
        "SELECT accepted_spans, accepted_span_events, duplicate_records, rejected, status "
        "FROM ingest_batches ORDER BY batch_id")
    return out


def _ingest(tmp_path: Path, name: str, files: list[Path], workers: int
            ) -> tuple[dict[str, Any], list[Any]]:
    s = load_settings(None, db=tmp_path / f"{name}.duckdb", chunk_records=1000,
                      ingest_workers=workers, redaction={"key": "k"})
    with Engine(s) as e:
        results = e.ingest(files)
        return _stored(e), results


def _warnings(warnings: list[str]) -> tuple[list[str], int]:
    redacted = [w for w in warnings if w.startswith("redacted ")]
    return ([w for w in warnings if w not in redacted],
            sum(int(w.split()[1]) for w in redacted))


@pytest.fixture
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers for any file size, and slices of ~64 KiB: many slices per test file."""
    monkeypatch.setattr(parallel, "MIN_BYTES", 0)
    monkeypatch.setattr(parallel, "_MIN_SLICE", 64 << 10)
    monkeypatch.setattr(parallel, "_BYTES_PER_RECORD", 1)


def test_parallel_protobuf_stores_what_serial_stores(tmp_path: Path, small_slices: None
                                                     ) -> None:
    f = tmp_path / "big.traces.pb"
    f.write_bytes(_request(60, 90).SerializeToString())
    serial, rs = _ingest(tmp_path, "serial", [f], 1)
    par, rp = _ingest(tmp_path, "parallel", [f], 2)
    assert par == serial
    # 5,400 generated + the teapot span − the first (its parent id is all zeros); the retry
    # is stored once
    assert len(serial["spans"]) == 60 * 90
    assert [d[0] for d in par["dead_letters"]] == [
        "resourceSpans[0].scopeSpans[0].spans[0]", "resourceSpans[57].scopeSpans[0].spans[90]"]
    # the same warnings; redaction is counted per decoded slice, so the same total
    assert _warnings(rp[0].warnings) == _warnings(rs[0].warnings)
    assert _warnings(rs[0].warnings)[1] == 5399  # user.email of each accepted span
    assert any("resourceSpans[57].scopeSpans[0].spans[91]: http status code 'teapot'" in w
               for w in rp[0].warnings)
    # the same commit units: chunk_records spans per chunk, in file order
    assert rp[0].counts == rs[0].counts


def test_parallel_json_lines_keep_line_numbers(tmp_path: Path, small_slices: None) -> None:
    lines = []
    for i in range(400):
        sp = {"traceId": f"{i + 1:032x}", "spanId": f"{i + 1:016x}", "name": "op",
              "kind": 2, "startTimeUnixNano": str(T0 + i), "endTimeUnixNano": str(T0 + i + 9),
              "attributes": [{"key": "http.route", "value": {"stringValue": f"/r{i % 4}"}},
                             {"key": "pad", "value": {"stringValue": "x" * 300}}]}
        doc = {"resourceSpans": [{"resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "svc"}}]},
            "scopeSpans": [{"spans": [sp]}]}]}
        lines.append(orjson.dumps(doc))
    lines[250] = b'{"resourceSpans": [ broken'
    f = tmp_path / "t.jsonl"
    f.write_bytes(b"\n".join(lines) + b"\n")
    serial, _ = _ingest(tmp_path, "serial", [f], 1)
    par, _ = _ingest(tmp_path, "parallel", [f], 2)
    assert par == serial
    assert [d[0] for d in par["dead_letters"]] == ["line 251"]
    assert len(par["spans"]) == 399


def test_salvage_and_small_files_stay_in_process(tmp_path: Path, small_slices: None) -> None:
    """A truncated protobuf does not walk cleanly: the in-process salvage path reports it."""
    data = _request(5, 10).SerializeToString()
    f = tmp_path / "cut.traces.pb"
    f.write_bytes(data[: len(data) - 30])
    serial, _ = _ingest(tmp_path, "serial", [f], 1)
    par, _ = _ingest(tmp_path, "parallel", [f], 2)
    assert par == serial and serial["dead_letters"]


def test_rechunker_cuts_spans_and_their_events(tmp_path: Path, small_slices: None) -> None:
    f = tmp_path / "big.traces.pb"
    f.write_bytes(_request(20, 90).SerializeToString())
    s = load_settings(None, db=tmp_path / "x.duckdb", chunk_records=500, redaction={"key": "k"})
    with Engine(s) as e:
        info = SourceInfo(str(f), "otlp-proto", "traces", "x", f.stat().st_size)
        with DecodePool(e.read_options(), 2) as pool:
            chunks = list(pool.read(f, info))
    sizes = [c.spans.num_rows for c in chunks if c.spans is not None]
    assert sizes == [500, 500, 500, 301]  # 1,800 + 2 − 1 spans decoded, in order
    for c in chunks:
        if c.spans is not None:
            assert c.span_events.num_rows == sum(c.spans.column("event_count").to_pylist())
            ev_ids = set(zip(c.span_events.column("trace_id").to_pylist(),
                             c.span_events.column("span_id").to_pylist(), strict=True))
            span_ids = set(zip(c.spans.column("trace_id").to_pylist(),
                               c.spans.column("span_id").to_pylist(), strict=True))
            assert ev_ids <= span_ids


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_the_writer_leaves_no_workers(tmp_path: Path) -> None:
    f = tmp_path / "big.traces.pb"
    f.write_bytes(_request(400, 100).SerializeToString())  # 40k spans, repeated in each file
    files = []
    for i in range(4):  # distinct files (a copy would be a duplicate batch, not decoded)
        g = tmp_path / f"big{i}.traces.pb"
        g.write_bytes(f.read_bytes() * (parallel.MIN_BYTES // f.stat().st_size + 1)
                      + _request(1, 1 + i).SerializeToString())
        files.append(g)
    env = {**os.environ, "SLOENGINE_INGEST_WORKERS": "2", "SLOENGINE_CHUNK_RECORDS": "5000",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sloengine", "ingest", *map(str, files), "--db",
         str(tmp_path / "k.duckdb")], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        workers: set[int] = set()
        deadline = time.monotonic() + 60
        while len(workers) < 3 and time.monotonic() < deadline:  # forkserver + 2 workers
            time.sleep(0.1)
            workers = _descendants(proc.pid)
        assert len(workers) >= 3, "the workers never started"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in workers if _alive(p)]
    finally:
        if proc.poll() is None:
            proc.kill()
    # and the store is consistent: ingesting again completes without duplicates; the next
    # pool removes the handoff directory the killed writer left in shared memory
    s = load_settings(None, db=tmp_path / "k.duckdb", chunk_records=5000, ingest_workers=2)
    with Engine(s) as e:
        e.ingest(files)
        n = e.store.one("SELECT count(*) FROM spans")
        distinct = e.store.one("SELECT count(DISTINCT (trace_id, span_id)) FROM spans")
    assert n == distinct == 400 * 100  # + teapot − the span with the zero parent id
    assert not list(handoff.base_dir().glob(f"sloengine-handoff-{proc.pid}-*"))


def test_warm_starts_the_workers_only_for_files_that_need_them(engine: Engine) -> None:
    """ingest_file starts the workers before it hashes a big file (DecodePool.warm)."""
    before = _descendants(os.getpid())
    with DecodePool(engine.read_options(), 2) as pool:
        pool.warm(parallel.MIN_BYTES - 1)
        time.sleep(0.5)
        assert _descendants(os.getpid()) == before
        pool.warm(parallel.MIN_BYTES)
        deadline = time.monotonic() + 30
        # the two workers (and the forkserver, unless an earlier pool in this process
        # started it: multiprocessing keeps one per process)
        while len(_descendants(os.getpid()) - before) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_descendants(os.getpid()) - before) >= 2
