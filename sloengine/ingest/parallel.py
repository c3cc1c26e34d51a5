"""Decoding on the other cores: big files are cut into slices that worker processes decode
(protobuf parse, field loop, Arrow, redaction) while the caller — the one DuckDB writer —
stores the chunks before them.

Why processes: the decode loop is pure Python over upb messages and holds the GIL; DuckDB's
insert is the only part that would overlap in a thread (benchmarks/README.md). Why slices
and not chunks: a slice is cut from the raw bytes without parsing (the top-level
``resource_*`` entries of a protobuf request, whole lines of JSON Lines), so the caller never
parses anything itself and never holds a whole big file.

What stays the same as decoding in-process (``reader.read_file``): the chunks the caller
stores are re-cut here to exactly ``chunk_records`` spans (logs, points) as the serial
decoder cuts them, in file order; dead-letter and warning locations name the same
``resourceSpans[i]`` / ``line N`` as the serial path; redaction runs in the workers with the
same rules. What is bounded: the slices in flight (``2 × workers``), so a 10M-span file needs
no more memory than a 1M-span one. Inputs below ``min_bytes``, one whole-document OTLP/JSON
file and protobuf that does not walk cleanly (truncated, unknown top-level fields — the
salvage path) are decoded in-process.

Decoded tables come back to the writer as files in shared memory, mapped rather than copied
(ingest/handoff.py). Worker processes come from the ``forkserver`` start method (forking the
writer, which runs DuckDB and in ``sloengine run`` web and scheduler threads, is not safe);
they ignore SIGINT (the caller stops them) and exit by themselves when the calling process is
gone (kill -9).
"""

from __future__ import annotations

import gc
import io
import multiprocessing
import os
import re
import signal as signals
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sloengine.ingest.context import DecodeState
from sloengine.ingest.handoff import Handoff, alive, discard, receive, ship
from sloengine.ingest.reader import (
    _REQUESTS,
    ReadOptions,
    _access_lines,
    _open,
    _otlp_lines,
    decode_proto,
    finish_chunk,
    read_file,
)
from sloengine.model import Chunk, DeadLetter, SourceInfo

#: Files smaller than this are decoded in-process: starting workers costs more than it saves.
MIN_BYTES = 16 << 20
#: Target bytes of one slice per chunk record (a chunk of 122,880 spans ≈ 12–24 MiB slices).
_BYTES_PER_RECORD = 100
_MIN_SLICE = 1 << 20
_LOCATION = re.compile(r"^(resource(?:Spans|Logs|Metrics))\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class _Slice:
    """One unit of work: bytes of a file (read by the worker from ``path`` at ``offset``, or
    carried in ``data``), and where it starts (first resource index or first line number)."""

    fmt: str
    signal: str
    path: str | None
    offset: int
    length: int
    data: bytes | None
    base: int
    #: where the worker leaves the decoded tables (ingest/handoff.py); None: in the pipe
    handoff: str | None = None


class DecodePool:
    """Worker processes that decode slices of big files; started on first need.

    ``workers`` ≤ 1 means no processes: every file is decoded in-process. Close it (or use
    it as a context manager) to stop the workers.
    """

    def __init__(self, options: ReadOptions, workers: int, *, min_bytes: int | None = None,
                 slice_bytes: int | None = None) -> None:
        self.options = options
        self.workers = workers
        self.min_bytes = MIN_BYTES if min_bytes is None else min_bytes
        self.slice_bytes = slice_bytes or max(
            _MIN_SLICE, options.decode.chunk_records * _BYTES_PER_RECORD)
        self._executor: ProcessPoolExecutor | None = None
        self._handoff: Handoff | None = None

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._handoff is not None:
            self._handoff.close()
            self._handoff = None

    def warm(self, size_bytes: int) -> None:
        """Start the workers now if a file of ``size_bytes`` will need them: their start
        (forkserver, imports) then overlaps the caller's sha256 of the file."""
        if self.workers > 1 and size_bytes >= self.min_bytes:
            pool = self._pool()
            for _ in range(self.workers):
                pool.submit(os.getpid)

    def read(self, path: Path, info: SourceInfo) -> Iterator[Chunk]:
        """The chunks of one file, as ``reader.read_file`` yields them (redacted)."""
        slices = None
        if self.workers > 1 and info.size_bytes >= self.min_bytes:
            slices = self._slices(path, info)
        if slices is None:
            yield from read_file(path, info, self.options)
            return
        yield from self._run(slices)

    # -- cutting -----------------------------------------------------------------------------
    def _slices(self, path: Path, info: SourceInfo) -> Iterator[_Slice] | None:
        if info.format == "otlp-proto" and info.signal in _REQUESTS:
            return _proto_slices(path, info.signal, self.slice_bytes)
        if info.format in ("otlp-jsonl", "jsonl-log"):
            return _line_slices(path, info.format, info.signal, self.slice_bytes)
        return None

    # -- running -----------------------------------------------------------------------------
    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = process_pool(self.options, self.workers)
            self._handoff = Handoff()
        return self._executor

    def _run(self, slices: Iterator[_Slice]) -> Iterator[Chunk]:
        pool = self._pool()
        out = self._handoff.dir if self._handoff is not None else None
        pending: deque[Future[list[Chunk]]] = deque()
        cut = Rechunker(self.options.decode.chunk_records)
        try:
            for s in slices:
                pending.append(pool.submit(_decode_slice, replace(s, handoff=out)))
                while len(pending) >= 2 * self.workers:
                    for chunk in receive(pending.popleft().result()):
                        yield from cut.add(chunk)
            while pending:
                for chunk in receive(pending.popleft().result()):
                    yield from cut.add(chunk)
            yield from cut.finish()
        finally:  # stopped early: what is decoded already leaves no file behind
            for f in pending:
                if not f.cancel():
                    f.add_done_callback(_discard)


# -- the cuts, without parsing -----------------------------------------------------------------

def _varint(read: Any) -> int | None:
    result: int = 0
    shift = 0
    while True:
        b = read(1)
        if not b:
            return None
        result |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            return None


def _top_fields(path: Path, size: int) -> list[tuple[int, int]] | None:
    """(offset, length incl. tag) of each top-level field 1 of a protobuf request file, or
    None when the file holds anything else or is cut short (the in-process salvage path
    then reports what is wrong, where)."""
    out = []
    with path.open("rb") as fh:
        pos = 0
        while pos < size:
            fh.seek(pos)
            tag = _varint(fh.read)
            if tag != (1 << 3 | 2):
                return None
            ln = _varint(fh.read)
            if ln is None:
                return None
            end = fh.tell() + ln
            if end > size:
                return None
            out.append((pos, end - pos))
            pos = end
    return out


def _mem_top_fields(data: bytes) -> list[tuple[int, int]] | None:
    """As ``_top_fields`` over bytes in memory (decompressed ``.gz``)."""
    out = []
    pos, n = 0, len(data)
    while pos < n:
        start = pos
        vals = []
        for _ in range(2):
            result = shift = 0
            while True:
                if pos >= n or shift > 63:
                    return None
                b = data[pos]
                pos += 1
                result |= (b & 0x7F) << shift
                if not b & 0x80:
                    break
                shift += 7
            vals.append(result)
        if vals[0] != (1 << 3 | 2) or pos + vals[1] > n:
            return None
        pos += vals[1]
        out.append((start, pos - start))
    return out


def _proto_slices(path: Path, signal: str, target: int) -> Iterator[_Slice] | None:
    with path.open("rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    data: bytes | None = None
    if gz:
        with _open(path) as fh:
            data = fh.read()
        fields = _mem_top_fields(data)
    else:
        fields = _top_fields(path, path.stat().st_size)
    if not fields:
        return None
    return _group(fields, target, signal, None if gz else str(path), data)


def _group(fields: list[tuple[int, int]], target: int, signal: str, path: str | None,
           data: bytes | None) -> Iterator[_Slice]:
    first = 0
    while first < len(fields):
        last = first
        start = fields[first][0]
        end = start + fields[first][1]
        while last + 1 < len(fields) and end - start < target:
            last += 1
            end = fields[last][0] + fields[last][1]
        yield _Slice("otlp-proto", signal, path, start, end - start,
                     None if data is None else data[start:end], first)
        first = last + 1


def _line_slices(path: Path, fmt: str, signal: str, target: int) -> Iterator[_Slice]:
    """Blocks of whole lines (the bytes travel: ``.gz`` cannot be read at an offset)."""
    with _open(path) as fh:
        line_no = 1
        while True:
            lines = fh.readlines(target)
            if not lines:
                return
            yield _Slice(fmt, signal, None, 0, 0, b"".join(lines), line_no)
            line_no += len(lines)


# -- the workers ----------------------------------------------------------------------------------

_OPTIONS: ReadOptions | None = None
#: imported once in the forkserver, so each worker starts with them (and pyarrow, upb) loaded
_PRELOAD = [__name__, "sloengine.ingest.bodies"]


def process_pool(options: ReadOptions, workers: int) -> ProcessPoolExecutor:
    """Decode workers (file slices here, OTLP/HTTP bodies in ingest/bodies.py): forkserver
    children that hold ``options`` (redaction rules and key: given once, never logged),
    ignore SIGINT and exit when the calling process is gone."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init,
                               initargs=(options, os.getpid()))


def worker_options() -> ReadOptions:
    """The options this worker process was started with (``process_pool``)."""
    assert _OPTIONS is not None, "not a decode worker"
    return _OPTIONS


def _init(options: ReadOptions, parent: int) -> None:
    global _OPTIONS
    _OPTIONS = options
    signals.signal(signals.SIGINT, signals.SIG_IGN)
    threading.Thread(target=_watch, args=(parent, os.getppid()), daemon=True).start()


def _watch(parent: int, ppid: int) -> None:
    """Exit when the writer is gone (killed: nobody would read our results)."""
    while True:
        time.sleep(0.25)
        if not alive(parent) or os.getppid() != ppid:
            os._exit(1)


def _discard(f: Future[list[Chunk]]) -> None:
    if not f.cancelled() and f.exception() is None:
        discard(f.result())


def _decode_slice(s: _Slice) -> list[Chunk]:
    with paused_gc():
        return ship(_decode_slice_now(s), s.handoff)


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a worker decodes: decoding makes millions of
    short-lived containers (a dict per span's attributes, link dicts, event tuples) and no
    cycles, so every collection the allocations trigger is wasted work: 8–12 % of the decode
    (benchmarks/README.md). Only in worker processes, which run nothing else meanwhile."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _decode_slice_now(s: _Slice) -> list[Chunk]:
    opts = _OPTIONS
    assert opts is not None, "worker not initialised"
    data = s.data
    if data is None:
        assert s.path is not None
        with open(s.path, "rb") as fh:
            fh.seek(s.offset)
            data = fh.read(s.length)
    state = DecodeState(opts.decode)
    if s.fmt == "otlp-proto":
        chunks = list(decode_proto(data, s.signal, state))
        if s.base:
            for c in chunks:
                _rebase(c, s.base)
    else:
        lines = io.BytesIO(data)  # iterates lines split at b"\n", as a file does
        if s.fmt == "otlp-jsonl":
            chunks = list(_otlp_lines(lines, s.signal, state, first_line=s.base))
        else:
            chunks = list(_access_lines(lines, opts.access_log, state, first_line=s.base))
    return [finish_chunk(c, opts.redactor) for c in chunks]


def _rebase(chunk: Chunk, base: int) -> None:
    """Locations relative to a slice → relative to the whole request."""
    def fix(text: str) -> str:
        return _LOCATION.sub(lambda m: f"{m.group(1)}[{int(m.group(2)) + base}]", text, 1)

    chunk.dead_letters = [replace(d, location=fix(d.location)) for d in chunk.dead_letters]
    chunk.warnings = [fix(w) for w in chunk.warnings]


# -- re-cutting in the writer ----------------------------------------------------------------------

class Rechunker:
    """Re-cuts decoded chunks into chunks of exactly ``limit`` rows per table (the last one
    smaller), in order: the chunks the writer stores (one transaction each) are the ones the
    in-process decoder yields, whatever the slices were. Span events follow their spans."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.tables: dict[str, list[Any]] = {"spans": [], "span_events": [], "resources": [],
                                              "logs": [], "metric_points": []}
        self.rows = {"spans": 0, "logs": 0, "metric_points": 0}
        self.dead: list[DeadLetter] = []
        self.warnings: list[str] = []

    def add(self, chunk: Chunk) -> Iterator[Chunk]:
        self.dead.extend(chunk.dead_letters)
        self.warnings.extend(chunk.warnings)
        for name in ("spans", "span_events", "resources", "logs", "metric_points"):
            tbl = getattr(chunk, name)
            if tbl is not None and tbl.num_rows:
                self.tables[name].append(tbl)
                if name in self.rows:
                    self.rows[name] += tbl.num_rows
        for name in ("spans", "logs", "metric_points"):
            while self.rows[name] >= self.limit:
                yield self._cut(name)

    def finish(self) -> Iterator[Chunk]:
        out = Chunk(dead_letters=self.dead, warnings=self.warnings)
        for name, parts in self.tables.items():
            if parts:
                setattr(out, name, _concat(parts))
        if out.tables() or out.dead_letters or out.warnings:
            yield out

    def _cut(self, name: str) -> Chunk:
        whole = _concat(self.tables[name])
        head, tail = whole.slice(0, self.limit), whole.slice(self.limit)
        self.tables[name] = [tail] if tail.num_rows else []
        self.rows[name] -= self.limit
        out = Chunk(dead_letters=self.dead, warnings=self.warnings)
        self.dead, self.warnings = [], []
        setattr(out, name, head)
        if self.tables["resources"]:
            # every resource decoded so far goes with the first chunk cut after it: before
            # or with the spans that point to it (the store adds each id once)
            out.resources = _concat(self.tables["resources"])
            self.tables["resources"] = []
        if name == "spans" and self.tables["span_events"]:
            events = _concat(self.tables["span_events"])
            n_ev = int(pc.sum(head.column("event_count")).as_py() or 0)
            out.span_events = events.slice(0, n_ev)
            rest = events.slice(n_ev)
            self.tables["span_events"] = [rest] if rest.num_rows else []
        return out


def _concat(parts: list[Any]) -> Any:
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts)
