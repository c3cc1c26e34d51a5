"""What a second core gives: the same ingest serially, with decoding one chunk ahead in a
thread, and with ``DecodePool`` (worker processes, what ``sloengine ingest`` does now).

    python benchmarks/overlap_probe.py benchmarks/out/traces-1000000-s42-v1.pb

Runs ``read_file`` → ``Store.append`` (what ``Engine.ingest_file`` does) twice into fresh
databases: serially, then with ``read_file`` in a background thread one chunk ahead of the
writer (DuckDB and most pyarrow kernels release the GIL, so decoding chunk N+1 — pure Python —
overlaps with inserting chunk N), then with two decode worker processes
(sloengine/ingest/parallel.py). Stored rows are the same.
"""

from __future__ import annotations

import argparse
import queue
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def prefetch(items: Iterator[Any], depth: int = 1) -> Iterator[Any]:
    """Yield from ``items`` while a thread produces up to ``depth`` items ahead."""
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)

    def run() -> None:
        try:
            for x in items:
                q.put(("item", x))
            q.put(("done", None))
        except BaseException as exc:  # handed to the consumer
            q.put(("error", exc))

    threading.Thread(target=run, daemon=True).start()
    while True:
        kind, x = q.get()
        if kind == "done":
            return
        if kind == "error":
            raise x
        yield x


def ingest(path: Path, mode: str) -> tuple[int, float]:
    from sloengine.engine import Engine
    from sloengine.ingest import DecodePool, reader
    from sloengine.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        engine = Engine(Settings(db=Path(tmp) / "probe.duckdb"))
        info = reader.source_info(path)
        batch = engine.store.begin_batch(info)
        pool = DecodePool(engine.read_options(), 2 if mode == "processes" else 1)
        chunks = pool.read(path, info)
        if mode == "thread":
            chunks = prefetch(chunks)
        n = 0
        for chunk in chunks:
            n += engine.store.append(batch, info, chunk).accepted.get("spans", 0)
        pool.close()
        engine.close()
        return n, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file", type=Path)
    args = ap.parse_args()
    labels = {"serial": "serial (ingest_workers=1)", "thread": "decode one chunk ahead (thread)",
              "processes": "2 decode workers (DecodePool)"}
    for mode, label in labels.items():
        n, s = ingest(args.file, mode)
        print(f"{label:<34}{n:>10,} spans {s:7.2f} s {n / s:>9,.0f} spans/s")


if __name__ == "__main__":
    main()
