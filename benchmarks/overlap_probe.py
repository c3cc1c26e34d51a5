"""What a second core could give: the same ingest with decoding one chunk ahead in a thread.

    python benchmarks/overlap_probe.py benchmarks/out/traces-1000000-s42-v1.pb

Runs ``read_file`` → ``Store.append`` (what ``Engine.ingest_file`` does) twice into fresh
databases: serially, then with ``read_file`` in a background thread one chunk ahead of the
writer. DuckDB and most pyarrow kernels release the GIL, so decoding chunk N+1 (pure Python)
overlaps with inserting chunk N. Stored rows are the same; it is a probe for a possible
option, not something ``sloengine ingest`` does today.
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


def ingest(path: Path, overlap: bool) -> tuple[int, float]:
    from sloengine.engine import Engine
    from sloengine.ingest import reader
    from sloengine.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        engine = Engine(Settings(db=Path(tmp) / "probe.duckdb"))
        info = reader.source_info(path)
        batch = engine.store.begin_batch(info)
        chunks = reader.read_file(path, info, engine.read_options())
        if overlap:
            chunks = prefetch(chunks)
        n = 0
        for chunk in chunks:
            n += engine.store.append(batch, info, chunk).accepted.get("spans", 0)
        engine.close()
        return n, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file", type=Path)
    args = ap.parse_args()
    for overlap in (False, True):
        n, s = ingest(args.file, overlap)
        label = "decode one chunk ahead (thread)" if overlap else "serial (as sloengine ingest)"
        print(f"{label:<34}{n:>10,} spans {s:7.2f} s {n / s:>9,.0f} spans/s")


if __name__ == "__main__":
    main()
