"""Receiver benchmark (issue 6): spans/s through the OTLP/HTTP receiver of a running
``sloengine run`` vs file ingest of the same data, in one run.

``python benchmarks/receiver_bench.py`` (``--quick`` for a smoke size):

1. generates (deterministically, cached under ``benchmarks/out/``) the export requests of
   ``--spans`` spans with ingest_bench's generator — Collector-style batches of ~500 spans —
   and the same data as one protobuf file (the requests concatenated: protobuf merges them);
2. **file**: a child process times ``Engine.ingest([file])`` into a fresh database;
3. **receiver**: starts ``sloengine run`` (fresh database, free port, no SLOs, no file inputs,
   an ``ingest`` and an ``oncall`` API key made first), then ``--senders`` concurrent
   keep-alive connections POST the requests as an exporter does (``application/x-protobuf``,
   bearer key, honouring 429 + Retry-After). *Acknowledged* = all 200s received (each batch
   fsync'd in the spool); *stored* = the spool is empty again, i.e. every batch is in DuckDB.
   The spans table must then hold exactly the generated spans;
4. **reads under load**: meanwhile one more connection GETs ``/api/v1/slos`` (the SLO state,
   with the oncall key; on the store's reader connection, no engine lock) back to back, from
   the first POST until everything is stored; p50/p99/max of those;
5. prints spans/s of each and ``stored / file`` (PASS at >= 0.7), writes
   ``receiver-result.json``.

The senders run in this process and share the machine with the service: on a small machine
they take CPU from it, so the ratio is a lower bound.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import queue
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))  # the package from this checkout, installed or not
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(HERE.parent), os.environ.get("PYTHONPATH")) if p)  # and in the children

from ingest_bench import (  # noqa: E402
    GENERATOR_VERSION,
    Generator,
    _add_batch,
    count_spans,
    sloengine_cmd,
)

TARGET_RATIO = 0.7
#: the read timed under load: every SLO's current state
READ_PATH = "/api/v1/slos"


def bodies_cached(out: Path, spans: int, seed: int) -> tuple[list[bytes], Path]:
    """The export request bodies (length-prefixed in one cache file) and the same data as
    one protobuf file."""
    stem = out / f"receiver-{spans}-s{seed}-v{GENERATOR_VERSION}"
    packed, pb = stem.with_suffix(".bodies"), stem.with_suffix(".pb")
    if not packed.exists() or not pb.exists():
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        gen = Generator(seed)
        bodies = []
        for batch in gen.requests(spans):
            req = ExportTraceServiceRequest()
            _add_batch(req, gen, batch)
            bodies.append(req.SerializeToString())
        packed.write_bytes(b"".join(struct.pack("<I", len(b)) + b for b in bodies))
        pb.write_bytes(b"".join(bodies))
    data = packed.read_bytes()
    out_bodies, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack_from("<I", data, pos)
        out_bodies.append(data[pos + 4: pos + 4 + n])
        pos += 4 + n
    return out_bodies, pb


def _fresh(db: Path) -> None:
    for p in (db, db.with_name(db.name + ".wal")):
        p.unlink(missing_ok=True)


def file_child(pb: Path, db: Path) -> dict[str, Any]:
    """Child mode: time Engine.ingest of the file (no interpreter start, no CLI)."""
    from sloengine.engine import Engine
    from sloengine.settings import load_settings

    settings = load_settings(None, db=db)
    with Engine(settings) as engine:
        t0 = time.perf_counter()
        results = engine.ingest([pb])
        wall = time.perf_counter() - t0
    return {"wall_s": wall, "accepted": sum(r.counts.accepted.get("spans", 0) for r in results)}


def run_file(pb: Path, db: Path) -> dict[str, Any]:
    _fresh(db)
    out = subprocess.run([sys.executable, __file__, "--_file", str(pb), "--_db", str(db)],
                         capture_output=True, text=True, check=True)
    res: dict[str, Any] = json.loads(out.stdout)
    res["stored_spans"] = count_spans(db)
    return res


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def _make_key(db: Path, role: str) -> str:
    out = subprocess.run([*sloengine_cmd(), "keys", "create", "--role", role, "--json",
                          "--db", str(db)], capture_output=True, text=True, check=True)
    return str(json.loads(out.stdout)["key"])


def _reader(port: int, key: str, stop: threading.Event, out: list[float],
            errors: list[str]) -> None:
    """GET the SLO state back to back until ``stop``; each latency in seconds."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {key}"}
    while not stop.is_set():
        t = time.perf_counter()
        conn.request("GET", READ_PATH, headers=headers)
        r = conn.getresponse()
        r.read()
        out.append(time.perf_counter() - t)
        if r.status != 200:
            errors.append(f"GET {READ_PATH}: HTTP {r.status}")
            return
    conn.close()


class _after(threading.Event):
    """An Event that is set once ``xs`` holds ``n`` items (stops _reader after n reads)."""

    def __init__(self, n: int, xs: list[float]) -> None:
        super().__init__()
        self.n, self.xs = n, xs

    def is_set(self) -> bool:
        return len(self.xs) >= self.n


def _pct(xs: list[float], q: float) -> float:
    ys = sorted(xs)
    return ys[min(len(ys) - 1, int(q * len(ys)))] if ys else float("nan")


def run_receiver(bodies: list[bytes], work: Path, senders: int,
                 decode_workers: int | None = None) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    db = work / "receiver.duckdb"
    _fresh(db)
    spool = work / "receiver.duckdb.spool"
    for f in spool.glob("*.otlp") if spool.exists() else []:
        f.unlink()
    (work / "empty").mkdir(exist_ok=True)
    ingest_key, read_key = _make_key(db, "ingest"), _make_key(db, "oncall")
    port = _free_port()
    cfg = work / "receiver-bench.yaml"
    cfg.write_text(
        f"db: {db}\ninputs: [{work / 'empty'}]\nslo_dir: {work / 'empty'}\nmetrics_port: 0\n"
        f"log_format: json\nhttp: {{port: {port}"
        + ("" if decode_workers is None else f", decode_workers: {decode_workers}") + "}\n"
        "schedule: {ingest_seconds: 3600, evaluate_seconds: 3600, deliver_seconds: 3600}\n")
    log = (work / "receiver-bench.log").open("w")
    proc = subprocess.Popen([*sloengine_cmd(), "run", "--config", str(cfg)], cwd=work,
                            stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(port, "/healthz")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("the service did not start; see receiver-bench.log") from None
                time.sleep(0.05)
        todo: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        for b in bodies:
            todo.put(b)
        throttled = [0] * senders
        errors: list[str] = []

        def send(i: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            headers = {"Content-Type": "application/x-protobuf",
                       "Authorization": f"Bearer {ingest_key}"}
            while True:
                try:
                    body = todo.get_nowait()
                except queue.Empty:
                    break
                while True:
                    conn.request("POST", "/v1/traces", body, headers)
                    r = conn.getresponse()
                    r.read()
                    if r.status == 200:
                        break
                    if r.status in (429, 503):
                        throttled[i] += 1
                        time.sleep(float(r.getheader("Retry-After") or 1))
                        continue
                    errors.append(f"HTTP {r.status}")
                    return
            conn.close()

        idle = list[float]()  # the same read without load, for scale
        _reader(port, read_key, _after(20, idle), idle, errors)
        threads = [threading.Thread(target=send, args=(i,)) for i in range(senders)]
        stop, reads = threading.Event(), list[float]()
        reader = threading.Thread(target=_reader, args=(port, read_key, stop, reads, errors))
        t0 = time.perf_counter()
        reader.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        acked = time.perf_counter() - t0
        while _get(port, "/healthz")["spool_batches"]:
            time.sleep(0.01)
        stored = time.perf_counter() - t0
        stop.set()
        reader.join()
        load_after = os.getloadavg()
        if errors:
            raise SystemExit(f"senders failed: {errors[:3]}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
        log.close()
    return {"acked_s": acked, "stored_s": stored, "throttled": sum(throttled),
            "stored_spans": count_spans(db), "reads": len(reads),
            "read_p50_ms": _pct(reads, 0.5) * 1000, "read_p99_ms": _pct(reads, 0.99) * 1000,
            "read_max_ms": max(reads, default=float("nan")) * 1000, "load_after": load_after,
            "idle_read_p50_ms": _pct(idle, 0.5) * 1000}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spans", type=int, default=200_000)
    ap.add_argument("--senders", type=int, default=4, help="concurrent exporter connections")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--decode-workers", type=int, default=None,
                    help="http.decode_workers of the service (default: one per CPU)")
    ap.add_argument("--out", type=Path, default=HERE / "out")
    ap.add_argument("--quick", action="store_true", help="smoke size: 20k spans")
    ap.add_argument("--_file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--_db", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._file is not None:
        print(json.dumps(file_child(args._file, args._db)))
        return 0
    if args.quick:
        args.spans = 20_000
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    workers = "auto" if args.decode_workers is None else args.decode_workers
    print(f"python {platform.python_version()}, {os.cpu_count()} cpu(s); spans={args.spans:,},"
          f" senders={args.senders}, decode_workers={workers}", flush=True)
    bodies, pb = bodies_cached(out, args.spans, args.seed)
    n = args.spans
    print(f"{len(bodies)} requests, {sum(map(len, bodies)) / 2**20:.1f} MiB", flush=True)
    load = os.getloadavg()
    f = run_file(pb, out / "receiver-file.duckdb")
    r = run_receiver(bodies, out, args.senders, args.decode_workers)
    for name, res in (("file", f), ("receiver", r)):
        if res["stored_spans"] != n:
            raise SystemExit(f"{name}: stored {res['stored_spans']} spans, expected {n}")
    file_rate = n / f["wall_s"]
    acked_rate, stored_rate = n / r["acked_s"], n / r["stored_s"]
    ratio = stored_rate / file_rate
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    print(f"{'file ingest':<28}{file_rate:>12,.0f} spans/s  ({f['wall_s']:.2f} s)")
    print(f"{'receiver, acknowledged':<28}{acked_rate:>12,.0f} spans/s  ({r['acked_s']:.2f} s,"
          f" {r['throttled']} x 429)")
    print(f"{'receiver, stored':<28}{stored_rate:>12,.0f} spans/s  ({r['stored_s']:.2f} s)")
    print(f"GET {READ_PATH} under load: {r['reads']} reads, p50 {r['read_p50_ms']:.0f} ms,"
          f" p99 {r['read_p99_ms']:.0f} ms, max {r['read_max_ms']:.0f} ms"
          f" (idle: p50 {r['idle_read_p50_ms']:.0f} ms)")
    print(f"stored / file = {ratio:.2f}  (target >= {TARGET_RATIO}: {verdict}); "
          f"load average before {load[0]:.1f}, after {r['load_after'][0]:.1f}")
    result = {"spans": n, "requests": len(bodies), "senders": args.senders,
              "file": f, "receiver": r, "file_spans_per_s": file_rate,
              "acked_spans_per_s": acked_rate, "stored_spans_per_s": stored_rate,
              "ratio": ratio, "target": TARGET_RATIO, "verdict": verdict,
              "cpus": os.cpu_count(), "load_before": load}
    (out / "receiver-result.json").write_text(json.dumps(result, indent=2))
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
