"""The OTLP/HTTP receiver in process (FastAPI's TestClient in front of a real Engine on a
temporary DuckDB file): the answers of the OTLP/HTTP specification — 200 with an
Export*ServiceResponse in the request's encoding, partial success, 400, 413, 415, 429 with
Retry-After — and the spool between the 200 and the store (dedup makes a re-drain harmless).
"""

from __future__ import annotations

import gzip
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from otlp_factory import span, trace_request
from pydantic import SecretStr

from sloengine.api import Receiver, Spool, SpoolCorrupt, build_app
from sloengine.api.otlp import decompress
from sloengine.engine import Engine
from sloengine.settings import HttpSettings, RedactionSettings

with warnings.catch_warnings():  # Starlette's note that its TestClient will move off httpx
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

PB = {"content-type": "application/x-protobuf"}
JS = {"content-type": "application/json"}


def _receiver(engine: Engine, tmp_path: Path, decoders: dict[str, Any] | None = None,
              **http: Any) -> Receiver:
    settings = HttpSettings(**{"auth": False, **http})  # keys: tests/test_api_*.py
    spool = Spool(tmp_path / "spool", max_bytes=settings.spool_max_bytes,
                  max_batches=settings.spool_max_batches)
    return Receiver(engine, spool, threading.RLock(), settings, **(decoders or {}))


@pytest.fixture
def rx(engine: Engine, tmp_path: Path) -> Iterator[Receiver]:
    receiver = _receiver(engine, tmp_path)
    yield receiver
    receiver.close()


@pytest.fixture
def client(rx: Receiver) -> TestClient:
    return TestClient(build_app(rx))


def _spans(trace: int, n: int) -> bytes:
    return trace_request([span(trace, i + 1) for i in range(n)]).SerializeToString()


def _json_spans(trace: int, ids: list[int]) -> bytes:
    return orjson.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": format(trace, "032x"), "spanId": format(i, "016x"), "name": "GET /",
            "kind": 2, "startTimeUnixNano": "1764000000000000000",
            "endTimeUnixNano": "1764000000010000000"} for i in ids]}]}]})


def _count(engine: Engine, sql: str) -> Any:
    return engine.store.one(sql)


def test_protobuf_export_is_acknowledged_spooled_then_stored(
        rx: Receiver, client: TestClient, engine: Engine) -> None:
    r = client.post("/v1/traces", content=_spans(1, 3), headers=PB)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-protobuf"
    resp = ExportTraceServiceResponse()
    resp.ParseFromString(r.content)
    assert not resp.HasField("partial_success")
    # acknowledged = on disk, not yet in the database
    assert rx.spool.batches == 1
    assert _count(engine, "SELECT count(*) FROM spans") == 0
    [result] = rx.drain()
    assert result.counts.accepted == {"spans": 3}
    assert rx.spool.batches == 0 and rx.spool.ready() == []
    assert _count(engine, "SELECT count(*) FROM spans") == 3
    batch = engine.store.rows("SELECT source, format, signal, status, accepted_spans "
                              "FROM ingest_batches")
    assert batch == [("http:testclient:50000", "otlp-proto", "traces", "complete", 3)]


def test_json_export_answers_json(rx: Receiver, client: TestClient, engine: Engine) -> None:
    r = client.post("/v1/traces", content=_json_spans(2, [1, 2]),
                    headers={"content-type": "application/json; charset=utf-8"})
    assert (r.status_code, r.headers["content-type"], r.json()) == (
        200, "application/json", {})
    rx.drain()
    assert _count(engine, "SELECT count(*) FROM spans WHERE service_name = 'web'") == 2
    # an empty request is a valid one
    assert client.post("/v1/traces", content=b"{}", headers=JS).status_code == 200
    assert rx.spool.batches == 0


def test_gzip_bodies(rx: Receiver, client: TestClient, engine: Engine) -> None:
    r = client.post("/v1/traces", content=gzip.compress(_spans(3, 4)),
                    headers={**PB, "content-encoding": "gzip"})
    assert r.status_code == 200
    r = client.post("/v1/traces", content=gzip.compress(_json_spans(4, [1])),
                    headers={**JS, "content-encoding": "gzip"})
    assert r.status_code == 200
    rx.drain()
    assert _count(engine, "SELECT count(*) FROM spans") == 5
    # the spool keeps the decompressed body: its sha256 is the body's, whatever the encoding
    r = client.post("/v1/traces", content=b"\x1f\x8b not gzip at all",
                    headers={**PB, "content-encoding": "gzip"})
    assert r.status_code == 400
    cut = gzip.compress(_spans(5, 50))[:-30]
    r = client.post("/v1/traces", content=cut, headers={**JS, "content-encoding": "gzip"})
    assert r.status_code == 400 and "cut off" in r.json()["message"]


def test_undecodable_bodies_answer_400_in_the_request_encoding(client: TestClient,
                                                               rx: Receiver) -> None:
    r = client.post("/v1/traces", content=b"not a protobuf \xff\xff", headers=PB)
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/x-protobuf"
    # a google.rpc.Status: code 3 (INVALID_ARGUMENT) and a message
    assert r.content[:2] == b"\x08\x03" and b"invalid protobuf" in r.content
    r = client.post("/v1/traces", content=b'{"resourceSpans": [', headers=JS)
    assert r.status_code == 400 and r.json()["code"] == 3
    assert "invalid JSON" in r.json()["message"]
    r = client.post("/v1/traces", content=b"[1, 2]", headers=JS)
    assert r.status_code == 400
    # logs posted to the traces endpoint
    r = client.post("/v1/traces", content=b'{"resourceLogs": [{"scopeLogs": [{"logRecords": '
                    b'[{"timeUnixNano": "1764000000000000000", "body": {"stringValue": "x"}}]}'
                    b']}]}', headers=JS)
    assert r.status_code == 400 and "not an OTLP traces request" in r.json()["message"]
    assert rx.spool.batches == 0


def test_other_media_types_and_encodings_answer_415(client: TestClient) -> None:
    for headers in ({"content-type": "text/plain"}, {},
                    {"content-type": "application/x-protobuf", "content-encoding": "br"}):
        r = client.post("/v1/logs", content=b"x", headers=headers)
        assert r.status_code == 415, headers
    assert client.get("/v1/traces").status_code == 405


def test_bodies_above_the_limit_answer_413(engine: Engine, tmp_path: Path) -> None:
    rx = _receiver(engine, tmp_path, max_body_bytes=4096)
    client = TestClient(build_app(rx))
    small = _spans(6, 2)
    assert client.post("/v1/traces", content=small, headers=PB).status_code == 200
    big = _spans(7, 200)
    assert len(big) > 4096
    r = client.post("/v1/traces", content=big, headers=PB)
    assert r.status_code == 413 and r.content[:2] == b"\x08\x08"
    # small on the wire, too big once inflated
    bomb = gzip.compress(b"\0" * 100_000)
    r = client.post("/v1/traces", content=bomb, headers={**JS, "content-encoding": "gzip"})
    assert r.status_code == 413
    with pytest.raises(Exception, match="inflates"):
        decompress(bomb, "gzip", 4096)


def test_partial_success_rejects_bad_records_into_dead_letters(
        rx: Receiver, client: TestClient, engine: Engine) -> None:
    bad = span(8, 2)
    bad.span_id = bytes(8)  # all-zero span id: invalid (OTLP-NOTES.md §2)
    body = trace_request([span(8, 1), bad, span(8, 3)]).SerializeToString()
    r = client.post("/v1/traces", content=body, headers=PB)
    assert r.status_code == 200
    resp = ExportTraceServiceResponse()
    resp.ParseFromString(r.content)
    assert resp.partial_success.rejected_spans == 1
    assert "resourceSpans[0].scopeSpans[0].spans[1]: span id is all zeros" in (
        resp.partial_success.error_message)
    r = client.post("/v1/traces", content=_json_spans(9, [1, 0, 2]), headers=JS)
    assert r.status_code == 200
    ps = r.json()["partialSuccess"]
    assert ps["rejectedSpans"] == "1" and "span id" in ps["errorMessage"]
    rx.drain()
    assert _count(engine, "SELECT count(*) FROM spans") == 4
    dead = engine.store.rows("SELECT source, location, reason FROM dead_letters "
                             "ORDER BY location")
    assert len(dead) == 2
    assert all(d[0] == "http:testclient:50000" for d in dead)
    assert engine.store.rows("SELECT rejected FROM ingest_batches ORDER BY batch_id") == [
        (1,), (1,)]


def test_logs_endpoint_answers_log_record_counts(rx: Receiver, client: TestClient,
                                                 engine: Engine) -> None:
    req = ExportLogsServiceRequest()
    lr = req.resource_logs.add().scope_logs.add().log_records.add()
    lr.time_unix_nano = 1_764_000_000_000_000_000
    lr.body.string_value = "hello"
    r = client.post("/v1/logs", content=req.SerializeToString(), headers=PB)
    assert r.status_code == 200
    r = client.post("/v1/metrics", content=b"{}", headers=JS)
    assert r.status_code == 200 and r.json() == {}
    rx.drain()
    assert _count(engine, "SELECT count(*) FROM logs") == 1


def test_full_spool_answers_429_with_retry_after(engine: Engine, tmp_path: Path) -> None:
    rx = _receiver(engine, tmp_path, spool_max_batches=2, retry_after_seconds=3)
    client = TestClient(build_app(rx))
    for t in (10, 11):
        assert client.post("/v1/traces", content=_spans(t, 1), headers=PB).status_code == 200
    r = client.post("/v1/traces", content=_spans(12, 1), headers=PB)
    assert (r.status_code, r.headers["retry-after"]) == (429, "3")
    r = client.post("/v1/traces", content=_json_spans(12, [1]), headers=JS)
    assert r.status_code == 429 and r.json()["code"] == 8
    assert len(rx.drain()) == 2
    assert client.post("/v1/traces", content=_spans(12, 1), headers=PB).status_code == 200
    # byte limit too: one batch always fits, the next must fit in what is left
    rx2 = _receiver(engine, tmp_path / "b", spool_max_bytes=100)
    c2 = TestClient(build_app(rx2))
    assert c2.post("/v1/traces", content=_spans(13, 5), headers=PB).status_code == 200
    assert c2.post("/v1/traces", content=_spans(14, 5), headers=PB).status_code == 429


def test_closing_receiver_answers_503(rx: Receiver, client: TestClient) -> None:
    rx.closing.set()
    r = client.post("/v1/traces", content=_spans(15, 1), headers=PB)
    assert r.status_code == 503 and "retry-after" in r.headers


def test_a_retried_body_is_stored_once(rx: Receiver, client: TestClient,
                                       engine: Engine) -> None:
    body = _spans(16, 3)
    for _ in range(2):
        assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    results = rx.drain()
    assert [r.duplicate_of is not None for r in results] == [False, True]
    assert _count(engine, "SELECT count(*) FROM spans") == 3
    # the same spans in other bytes (an exporter that re-batched): skipped record by record
    again = trace_request([span(16, 3), span(16, 2)], "svc").SerializeToString()
    assert client.post("/v1/traces", content=again, headers=PB).status_code == 200
    [r] = rx.drain()
    assert r.counts.accepted == {"spans": 0} and r.counts.duplicates == {"spans": 2}
    assert _count(engine, "SELECT count(*) FROM spans") == 3


def test_drain_again_after_a_crash_is_harmless(rx: Receiver, client: TestClient,
                                               engine: Engine, tmp_path: Path) -> None:
    body = _spans(17, 4)
    assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    [entry] = rx.spool.ready()
    kept = entry.path.read_bytes()
    rx.drain()
    # a crash between the commit and the unlink: the file is back after the restart
    entry.path.write_bytes(kept)
    rx2 = _receiver(engine, tmp_path)
    assert rx2.spool.batches == 1
    [r] = rx2.drain()
    assert r.duplicate_of is not None
    assert _count(engine, "SELECT count(*) FROM spans") == 4
    statuses = engine.store.rows("SELECT status FROM ingest_batches ORDER BY batch_id")
    assert statuses == [("complete",), ("duplicate",)]


def test_spool_files_survive_restarts_and_bad_ones_are_set_aside(engine: Engine,
                                                                 tmp_path: Path) -> None:
    root = tmp_path / "spool"
    spool = Spool(root, max_bytes=1 << 20, max_batches=10)
    a = spool.put(_spans(18, 2), signal="traces", fmt="otlp-proto", sender="1.2.3.4:5")
    b = spool.put(b"{}", signal="logs", fmt="otlp-json", sender="1.2.3.4:6")
    (root / "tmp" / "000000000099.otlp").write_bytes(b"half written")  # never acknowledged
    again = Spool(root, max_bytes=1 << 20, max_batches=10)
    assert [e.name for e in again.ready()] == [a.name, b.name]
    assert (again.batches, again.size_bytes) == (2, a.size + b.size)
    assert list((root / "tmp").iterdir()) == []
    body, meta = again.read(a)
    assert (meta.signal, meta.format, meta.sender, len(body)) == (
        "traces", "otlp-proto", "1.2.3.4:5", meta.size)
    # new names continue after the old ones
    c = again.put(b"{}", signal="logs", fmt="otlp-json", sender="x")
    assert c.name > b.name
    # a damaged file is moved to failed/, the others are stored
    raw = b.path.read_bytes()
    b.path.write_bytes(raw[:-1] + b"!")
    with pytest.raises(SpoolCorrupt):
        again.read(b)
    rx = Receiver(engine, again, threading.RLock(), HttpSettings())
    stored = rx.drain()
    assert [r.info.source for r in stored] == ["http:1.2.3.4:5", "http:x"]
    assert (root / "failed" / b.name).exists()
    assert again.batches == 0 and again.size_bytes == 0
    # after a restart, new names do not reuse the name of the file set aside
    d = Spool(root, max_bytes=1 << 20, max_batches=10).put(
        b"{}", signal="logs", fmt="otlp-json", sender="x")
    assert d.name > b.name


def test_ingest_bytes_records_lineage_like_a_file(engine: Engine) -> None:
    body = _spans(19, 2)
    r = engine.ingest_bytes(body, "traces", "otlp-proto", "10.0.0.7:4242")
    assert r.info.source == "http:10.0.0.7:4242" and r.counts.accepted == {"spans": 2}
    audit = engine.store.rows("SELECT action, object, outcome FROM audit_log "
                              "WHERE action = 'ingest'")
    assert audit == [("ingest", "http:10.0.0.7:4242", "ok")]
    decoded = engine.decode_request(b"\x00garbage", "traces", "otlp-proto")
    assert decoded.problem is not None and decoded.accepted == 0
    req = ExportTraceServiceRequest()
    assert engine.decode_request(req.SerializeToString(), "traces", "otlp-proto").problem is None


def _with_event(sp: Any, name: str) -> Any:
    ev = sp.events.add()
    ev.name = name
    ev.time_unix_nano = sp.start_time_unix_nano + 1
    return sp


def _group_bodies() -> list[bytes]:
    """Requests that exercise every rule of a drained group: overlapping span ids across
    requests (first wins), a byte-identical retry, a bad record, events, and logs."""
    a = trace_request([_with_event(span(30, 1), "a1"), span(30, 2), span(30, 3)])
    b = trace_request([_with_event(span(30, 3), "b3"), _with_event(span(30, 4), "b4"),
                       span(30, 5)])
    bad = span(31, 2)
    bad.span_id = bytes(8)
    d = trace_request([span(31, 1), bad])
    logs = ExportLogsServiceRequest()
    lr = logs.resource_logs.add().scope_logs.add().log_records.add()
    lr.time_unix_nano = 1_764_000_000_000_000_000
    lr.body.string_value = "grouped"
    return [a.SerializeToString(), b.SerializeToString(), a.SerializeToString(),
            d.SerializeToString(), logs.SerializeToString()]


_SIGNAL = ["traces", "traces", "traces", "traces", "logs"]


def _tables(engine: Engine) -> dict[str, Any]:
    q = engine.store.rows
    return {
        "spans": q("SELECT batch_id, trace_id, span_id FROM spans ORDER BY ALL"),
        "events": q("SELECT batch_id, span_id, name FROM span_events ORDER BY ALL"),
        "logs": q("SELECT batch_id, body FROM logs ORDER BY ALL"),
        "dead": q("SELECT batch_id, location, reason FROM dead_letters ORDER BY ALL"),
        "batches": q("SELECT batch_id, source, status, duplicate_of, accepted_spans, "
                     "accepted_span_events, accepted_logs, duplicate_records, rejected "
                     "FROM ingest_batches ORDER BY batch_id"),
        "audit": [(a, o, out, orjson.loads(d)) for a, o, out, d in q(
            "SELECT action, object, outcome, detail FROM audit_log "
            "WHERE action = 'ingest' ORDER BY seq")],
    }


def test_a_drained_group_is_one_transaction_with_per_request_lineage(
        rx: Receiver, engine: Engine, tmp_path: Path) -> None:
    """The drain stores spooled requests together; what it leaves is exactly what storing
    them one by one (Engine.ingest_bytes) leaves: rows, lineage rows, dead letters, audit."""
    bodies = _group_bodies()
    for body, signal in zip(bodies, _SIGNAL, strict=True):
        assert rx.accept(body, signal, "otlp-proto", "testclient:50000").status == 200
    results = rx.drain()
    assert [(r.batch_id, r.duplicate_of, r.counts.accepted, r.counts.duplicates,
             r.counts.rejected) for r in results] == [
        (1, None, {"spans": 3, "span_events": 1}, {"spans": 0}, 0),
        (2, None, {"spans": 2, "span_events": 1}, {"spans": 1}, 0),
        (3, 1, {}, {}, 0),
        (4, None, {"spans": 1}, {"spans": 0}, 1),
        (5, None, {"logs": 1}, {"logs": 0}, 0),
    ]
    got = _tables(engine)
    # every row points at its own request's batch; span 3 stays with the first request
    assert [(b, s[-1]) for b, _t, s in got["spans"]] == [
        (1, "1"), (1, "2"), (1, "3"), (2, "4"), (2, "5"), (4, "1")]
    assert [(b, n) for b, _s, n in got["events"]] == [(1, "a1"), (2, "b4")]
    one_by_one = Engine(engine.settings.model_copy(update={"db": tmp_path / "one.duckdb"}))
    try:
        for body, signal in zip(bodies, _SIGNAL, strict=True):
            one_by_one.ingest_bytes(body, signal, "otlp-proto", "testclient:50000")
        assert got == _tables(one_by_one)
    finally:
        one_by_one.close()
    assert engine.audit_verify().ok


def _alive(pid: int) -> bool:
    """A process that exists and is not a zombie (/proc: Linux)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _worker_pids(rx: Receiver) -> list[int]:
    executor = rx.decoders._executor
    assert executor is not None, "no worker processes were started"
    return [p.pid for p in executor._processes.values() if p.pid is not None]


def test_worker_decode_stores_exactly_what_in_process_decode_stores(
        engine: Engine, tmp_path: Path) -> None:
    """Bodies decoded in worker processes (every body, however small) leave the same
    answers (partial success, 400), rows, lineage, dead letters, audit entries and redacted
    values as bodies decoded in the server process; so does a drain after a restart, which
    decodes the spooled bodies again in the workers. Closing leaves no worker process."""
    secret = {"password": "hunter2"}
    redacted = trace_request([span(40, 1, attrs={"http.request.header.authorization": "Bearer x",
                                                 **secret})]).SerializeToString()
    bodies = [(b, sig, "otlp-proto") for b, sig in zip(_group_bodies(), _SIGNAL, strict=True)]
    bodies += [(_json_spans(41, [1, 0, 2]), "traces", "otlp-json"),
               (redacted, "traces", "otlp-proto"),
               (b"not a protobuf \xff\xff", "traces", "otlp-proto"),  # 400, not spooled
               (b"{}", "traces", "otlp-json")]

    def run(name: str, workers: int, restart: bool) -> tuple[list[Any], dict[str, Any]]:
        redaction = RedactionSettings(key=SecretStr("same-key-for-both"), keys=["password"])
        eng = Engine(engine.settings.model_copy(update={
            "db": tmp_path / f"{name}.duckdb", "redaction": redaction}))
        rx = _receiver(eng, tmp_path / name, {"inline_bytes": 0}, decode_workers=workers)
        try:
            replies = [(r.status, r.body) for r in (
                rx.accept(b, sig, fmt, "testclient:50000")  # type: ignore[arg-type]
                for b, sig, fmt in bodies)]
            if workers:
                pids = _worker_pids(rx)
                assert pids and all(pid != os.getpid() and _alive(pid) for pid in pids)
            else:
                assert rx.decoders._executor is None  # decoded in this process
            if restart:  # a new receiver over the same spool: nothing decoded in memory
                again = _receiver(eng, tmp_path / name, {"inline_bytes": 0},
                                  decode_workers=workers)
                assert again.spool.batches == 7
                again.drain()
                again.close()
            else:
                rx.drain()
            tables = _tables(eng)
            tables["attrs"] = eng.store.rows(
                "SELECT span_id, attr_str FROM spans WHERE trace_id = ? ORDER BY 1",
                [format(40, "032x")])
            return replies, tables
        finally:
            rx.close()
            if workers:
                assert not any(_alive(pid) for pid in pids)
            eng.close()

    in_process = run("in-process", 0, restart=False)
    assert [code for code, _ in in_process[0]] == [200] * 7 + [400, 200]
    assert [d[1:] for d in in_process[1]["dead"]] == [
        ("resourceSpans[0].scopeSpans[0].spans[1]", "span id is all zeros")] * 2
    [(_sid, attrs)] = in_process[1]["attrs"]
    assert sorted(attrs) == ["http.request.header.authorization", "password"]
    assert all(v.startswith(f"[redacted:{k}:") for k, v in attrs.items())
    assert run("workers", 2, restart=False) == in_process
    assert run("restarted", 2, restart=True) == in_process


def test_busy_decoders_answer_503_with_retry_after(engine: Engine, tmp_path: Path) -> None:
    """Backpressure, not an unbounded queue: with every in-flight slot taken, a body waits
    ``wait`` seconds for one, then gets 503 + Retry-After (OTLP exporters retry it)."""
    rx = _receiver(engine, tmp_path, {"inline_bytes": 0, "max_in_flight": 1, "wait": 0.05},
                   decode_workers=1, retry_after_seconds=2)
    try:
        body = _spans(60, 2)
        assert rx.decoders._slots.acquire(timeout=1)  # one body in flight, still decoding
        reply = rx.accept(body, "traces", "otlp-proto", "testclient:50000")
        assert (reply.status, reply.headers.get("Retry-After")) == (503, "2")
        assert rx.spool.batches == 0
        rx.decoders._slots.release()
        assert rx.accept(body, "traces", "otlp-proto", "testclient:50000").status == 200
        assert [r.counts.accepted for r in rx.drain()] == [{"spans": 2}]
    finally:
        rx.close()
