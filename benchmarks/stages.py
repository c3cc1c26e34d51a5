"""Where the ingest time goes: one OTLP protobuf file through each stage, timed in-process.

    python benchmarks/stages.py benchmarks/out/traces-1000000-s42-v1.pb

Stages: read + sha256, ParseFromString, decode (fields → Python lists), Arrow tables,
redaction, Store.append (dedup + insert + commit). Uses the same functions as
``sloengine ingest`` (Engine.ingest_file) but times them separately; see README.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file", type=Path)
    ap.add_argument("--db", type=Path, help="DuckDB file (default: a fresh temporary one)")
    args = ap.parse_args()

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from sloengine.engine import Engine
    from sloengine.ingest import reader
    from sloengine.ingest import traces as tr
    from sloengine.ingest.context import DecodeState
    from sloengine.settings import Settings

    t: dict[str, float] = defaultdict(float)
    cpu: dict[str, float] = defaultdict(float)
    tmp = tempfile.TemporaryDirectory()
    db = args.db or Path(tmp.name) / "stages.duckdb"
    engine = Engine(Settings(db=db))
    opts = engine.read_options()

    c0, p0 = time.perf_counter(), time.process_time()
    info = reader.source_info(args.file)
    data = args.file.read_bytes()
    c1, p1 = time.perf_counter(), time.process_time()
    t["read + sha256 + detect"] = c1 - c0
    cpu["read + sha256 + detect"] = p1 - p0
    req = ExportTraceServiceRequest()
    req.ParseFromString(data)
    c2, p2 = time.perf_counter(), time.process_time()
    t["ParseFromString"] = c2 - c1
    cpu["ParseFromString"] = p2 - p1
    bid = engine.store.begin_batch(info)

    # Time the decoder's Python loop and its Arrow table building separately by wrapping
    # _finish (called once per chunk inside the loop).
    finish = tr._finish

    def timed_finish(out: Any, state: Any) -> Any:
        a, pa_ = time.perf_counter(), time.process_time()
        chunk = finish(out, state)
        t["Arrow tables (_finish)"] += time.perf_counter() - a
        cpu["Arrow tables (_finish)"] += time.process_time() - pa_
        return chunk

    tr._finish = timed_finish
    spans = 0
    state = DecodeState(opts.decode)
    it = tr.decode_trace_request(req, state)
    c_prev, p_prev = time.perf_counter(), time.process_time()
    for chunk in it:
        c_dec, p_dec = time.perf_counter(), time.process_time()
        t["decode loop + Arrow"] += c_dec - c_prev
        cpu["decode loop + Arrow"] += p_dec - p_prev
        chunk = reader.finish_chunk(chunk, opts.redactor)
        c_red, p_red = time.perf_counter(), time.process_time()
        t["redaction"] += c_red - c_dec
        cpu["redaction"] += p_red - p_dec
        counts = engine.store.append(bid, info, chunk)
        spans += counts.accepted.get("spans", 0)
        c_prev, p_prev = time.perf_counter(), time.process_time()
        t["Store.append"] += c_prev - c_red
        cpu["Store.append"] += p_prev - p_red
    tr._finish = finish
    for d in (t, cpu):
        d["decode loop (fields → lists)"] = (d.pop("decode loop + Arrow")
                                            - d["Arrow tables (_finish)"])
    engine.close()
    total = sum(t.values())
    print(f"{spans:,} spans stored{'':<17}wall     share    CPU (all threads)")
    for k, v in t.items():
        print(f"  {k:<32}{v:8.2f} s {v / total:6.1%} {cpu[k]:8.2f} s")
    print(f"  {'total':<32}{total:8.2f} s {'':<6} {sum(cpu.values()):8.2f} s"
          f"  → {spans / total:,.0f} spans/s (wall, no process start)")


if __name__ == "__main__":
    main()
