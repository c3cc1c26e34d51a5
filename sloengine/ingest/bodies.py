"""OTLP/HTTP request bodies → decoded, redacted chunks, in worker processes.

Why: the receiver must decode a body before it answers (OTLP/HTTP partial success carries
the rejected count, an undecodable body is a 400), and decoding is pure Python that holds
the GIL. In the server process it shared one GIL with uvicorn, the spool's fsyncs and the
DuckDB writer: the receiver benchmark spent ~70 % of the GIL-holding samples of
``sloengine run`` in ``decode_request`` (benchmarks/README.md, "Receiver benchmark").
Here the bytes go to worker processes (ingest/parallel.py's: forkserver, SIGINT ignored,
gone with their parent) and the decoded Arrow chunks come back pickled.

What stays the same: ``decode_body`` is the one decode, used in-process (small bodies,
``workers == 0``, a broken pool) and in the workers, with the same ``ReadOptions`` — so the
chunks, counts, dead letters and redaction are identical whichever path ran. What is
bounded: the bodies in flight (``max_in_flight``); a caller that finds no slot within
``wait`` seconds gets ``None`` and answers 503 + Retry-After instead of queueing unboundedly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Literal

from sloengine.errors import ConfigError
from sloengine.ingest.context import DecodeState
from sloengine.ingest.parallel import paused_gc, process_pool, worker_options
from sloengine.ingest.reader import ReadOptions, decode_json, decode_proto, finish_chunk
from sloengine.model import Chunk, DeadLetter

log = logging.getLogger("sloengine.ingest")

BodyFormat = Literal["otlp-proto", "otlp-json"]
#: The tables each OTLP signal fills (the first one counts the signal's records).
SIGNAL_TABLES = {"traces": ("spans", "span_events", "resources"), "logs": ("logs",),
                 "metrics": ("metric_points",)}
#: Bodies smaller than this are decoded in the caller: the round trip to a worker (pickling
#: both ways, two context switches) costs more than decoding a few dozen records.
INLINE_BYTES = 16 << 10


@dataclass(slots=True)
class DecodedRequest:
    """One OTLP/HTTP request body, decoded and redacted but not stored. ``problem`` says why
    the body cannot be read at all (the receiver answers 400); otherwise ``rejected`` are
    the records that go to dead letters (a partial success)."""

    chunks: list[Chunk]
    accepted: int
    rejected: list[DeadLetter]
    problem: str | None = None


def decode_body(data: bytes, signal: str, fmt: BodyFormat, opts: ReadOptions
                ) -> DecodedRequest:
    """Decode and redact one request body of ``signal`` (no database, no shared state)."""
    if signal not in SIGNAL_TABLES:
        raise ConfigError(f"unknown OTLP signal {signal!r}")
    if fmt == "otlp-json" and data.strip() == b"{}":
        return DecodedRequest([], 0, [])  # an empty request is valid OTLP/JSON
    state = DecodeState(opts.decode)
    decoded = (decode_proto(data, signal, state) if fmt == "otlp-proto"
               else decode_json(data, signal, state))
    chunks = [finish_chunk(c, opts.redactor) for c in decoded]
    rejected = [d for c in chunks for d in c.dead_letters]
    tables = {t for c in chunks for t in c.tables()}
    main = SIGNAL_TABLES[signal][0]
    accepted = sum(c.tables()[main].num_rows for c in chunks if main in c.tables())
    problem = None
    if tables - set(SIGNAL_TABLES[signal]):
        problem = f"the body is not an OTLP {signal} request"
    elif not accepted and any(d.location in ("message", "document") for d in rejected):
        problem = next(d.reason for d in rejected if d.location in ("message", "document"))
    return DecodedRequest(chunks, accepted, rejected, problem)


def _decode_in_worker(data: bytes, signal: str, fmt: BodyFormat) -> DecodedRequest:
    with paused_gc():
        return decode_body(data, signal, fmt, worker_options())


class BodyDecoders:
    """A pool of worker processes that decode request bodies for the receiver's handlers.

    ``workers == 0``: everything is decoded in the caller. Thread-safe: each handler thread
    calls ``decode`` and waits (without the GIL) for its body's result. ``close`` stops the
    workers; afterwards bodies are decoded in the caller.
    """

    def __init__(self, options: ReadOptions, workers: int, *, inline_bytes: int = INLINE_BYTES,
                 max_in_flight: int | None = None, wait: float = 1.0) -> None:
        self.options = options
        self.workers = workers
        self.inline_bytes = inline_bytes
        self.max_in_flight = max_in_flight or 4 * max(workers, 1)
        self.wait = wait
        self._slots = threading.BoundedSemaphore(self.max_in_flight)
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._closed = False

    def __enter__(self) -> BodyDecoders:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the workers now (the service does, so the first request does not wait for
        the forkserver and the imports)."""
        pool = self._pool()
        if pool is not None:
            pool.submit(int).add_done_callback(lambda _f: None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def decode(self, data: bytes, signal: str, fmt: BodyFormat) -> DecodedRequest | None:
        """The decode of one body, or ``None`` when every slot stayed busy for ``wait``
        seconds (the caller answers 503 with Retry-After)."""
        if len(data) < self.inline_bytes or self._pool() is None:
            return decode_body(data, signal, fmt, self.options)
        if not self._slots.acquire(timeout=self.wait):
            return None
        try:
            return self._result(self._submit(data, signal, fmt), data, signal, fmt)
        finally:
            self._slots.release()

    def decode_many(self, bodies: Sequence[tuple[bytes, str, BodyFormat]]
                    ) -> list[DecodedRequest | None]:
        """Decode bodies side by side (the drain's spooled bodies whose decode is no longer
        in memory, e.g. after a restart); ``None`` for one that fails to decode (the caller
        decodes it again, where its error is handled)."""
        futures = [self._submit(*b) if self._pool() is not None else None for b in bodies]
        out: list[DecodedRequest | None] = []
        for fut, (data, signal, fmt) in zip(futures, bodies, strict=True):
            try:
                out.append(self._result(fut, data, signal, fmt))
            except Exception as exc:  # the caller decodes it again and reports it
                log.debug("decode in a worker failed: %s", exc)
                out.append(None)
        return out

    # -- the pool ------------------------------------------------------------------------
    def _pool(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._executor is None and self.workers > 0 and not self._closed:
                self._executor = process_pool(self.options, self.workers)
            return self._executor

    def _submit(self, data: bytes, signal: str, fmt: BodyFormat
                ) -> Future[DecodedRequest] | None:
        pool = self._pool()
        if pool is None:
            return None
        try:
            return pool.submit(_decode_in_worker, data, signal, fmt)
        except (BrokenProcessPool, RuntimeError):  # broken, or shut down meanwhile
            self._broken(pool)
            return None

    def _result(self, fut: Future[DecodedRequest] | None, data: bytes, signal: str,
                fmt: BodyFormat) -> DecodedRequest:
        if fut is not None:
            try:
                return fut.result()
            except BrokenProcessPool:
                log.warning("a body decode worker died; starting new workers")
                self._broken(None)
        return decode_body(data, signal, fmt, self.options)

    def _broken(self, pool: ProcessPoolExecutor | None) -> None:
        """Forget a broken pool (a worker was killed): the next body starts a new one."""
        with self._lock:
            old = self._executor
            if old is not None and (pool is None or old is pool):
                self._executor = None
        if old is not None and (pool is None or old is pool):
            old.shutdown(wait=False, cancel_futures=True)
