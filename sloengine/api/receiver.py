"""The OTLP/HTTP receiver's two halves around the spool.

``accept`` runs in the request handlers, outside the writer's lock: it decodes the body
(in a worker process of ``decoders``, made by the Engine, which owns decoding: off the
server's GIL) to answer 400 or a partial success honestly, writes the body to the durable
spool, and only then says 200; with every decoder busy it answers 503 + Retry-After.
``drain`` runs as the single writer: under the EngineService lock it stores runs of
spooled requests, each run in one transaction (``Engine.ingest_requests``: a lineage batch,
dedup and dead letters per request, one commit for all), and forgets them only once they
are committed.

The decoded chunks of a request are kept in memory for the drain (bounded), so a batch is
decoded once; after a restart the drain decodes the spooled bytes again (in the workers,
before it takes the lock).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import replace
from typing import Any, cast

from prometheus_client import Counter, Gauge

from sloengine import telemetry
from sloengine.api.otlp import Fmt, Reply, failure, success
from sloengine.api.spool import Spool, SpoolCorrupt, SpoolEntry, SpoolFull
from sloengine.engine import DecodedRequest, Engine, ReceivedRequest
from sloengine.errors import TransientError
from sloengine.model import IngestResult
from sloengine.settings import HttpSettings

log = logging.getLogger("sloengine.api")

REQUESTS = Counter("sloengine_receiver_requests", "OTLP/HTTP export requests by answer.",
                   ["signal", "code"], registry=telemetry.REGISTRY)
SPOOL_BATCHES = Gauge("sloengine_spool_batches", "Received batches waiting in the spool.",
                      registry=telemetry.REGISTRY)
SPOOL_BYTES = Gauge("sloengine_spool_bytes", "Bytes waiting in the spool.",
                    registry=telemetry.REGISTRY)

#: decoded requests kept for the drain, by the size of their bodies
_CACHE_BYTES = 64 << 20
#: a drain stores up to this many spooled requests in one transaction, and as many bytes as
#: it stored in _HOLD_SECONDS the last times, within _GROUP_BYTES (min, max)
_GROUP_REQUESTS = 256
_HOLD_SECONDS = 1.0
_GROUP_BYTES = (1 << 20, 64 << 20)
#: while requests keep arriving, the drain waits up to this long for a full group (each
#: transaction has a fixed cost: 396 requests of ~500 spans stored in groups of 4, 16, 64,
#: 200 took 8.4, 5.0, 3.5, 2.3 s), checking every _LINGER_STEP whether more came
_LINGER_SECONDS = 0.3
_LINGER_STEP = 0.05
#: a batch that fails to store this many times (not transiently) moves to spool/failed/
_MAX_ATTEMPTS = 3
_NOUNS = {"traces": "span", "logs": "log record", "metrics": "metric"}


class Receiver:
    """Accepts OTLP/HTTP request bodies into the spool and drains the spool into the store."""

    def __init__(self, engine: Engine, spool: Spool, lock: threading.RLock,
                 settings: HttpSettings, **decoders: Any) -> None:
        """``decoders``: keyword arguments of the body decoders (``inline_bytes``,
        ``max_in_flight``, ``wait``); their workers start on first need or ``start()``
        and stop on ``close()``."""
        self.engine = engine
        self.spool = spool
        self.lock = lock
        self.settings = settings
        #: set when the service stops: new requests get 503, the drain job yields
        self.closing = threading.Event()
        #: set when a batch is spooled: wakes the drain job
        self.wake = threading.Event()
        self._cache: dict[str, tuple[DecodedRequest, int]] = {}
        self._cache_bytes = 0
        self._cache_lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._attempts: dict[str, int] = {}
        #: how long storing took per spooled byte, lately (sizes the drain's groups)
        self._seconds_per_byte = 0.0
        workers = settings.decode_workers
        with lock:  # the options are made by the writer, so decoding never needs the store
            self.decoders = engine.body_decoders(
                (os.cpu_count() or 1) if workers is None else workers, **decoders)
        SPOOL_BATCHES.set_function(lambda: spool.batches)
        SPOOL_BYTES.set_function(lambda: spool.size_bytes)

    def start(self) -> None:
        """Start the decode workers now, not on the first request."""
        self.decoders.start()

    def close(self) -> None:
        """Stop the decode workers (after the last request and the final drain)."""
        self.decoders.close()

    # -- the request side ----------------------------------------------------------------
    def accept(self, body: bytes, signal: str, fmt: Fmt, peer: str) -> Reply:
        """Decode, spool, answer (OTLP/HTTP "Full Success", "Partial Success", "Failures")."""
        reply = self._accept(body, signal, fmt, peer)
        REQUESTS.labels(signal, str(reply.status)).inc()
        return reply

    def _accept(self, body: bytes, signal: str, fmt: Fmt, peer: str) -> Reply:
        retry = self.settings.retry_after_seconds
        if self.closing.is_set():
            return failure(503, "the receiver is shutting down", fmt, retry)
        if not self.spool.has_room(len(body)):
            return self._full(fmt)
        decoded = self.decoders.decode(body, signal, fmt)
        if decoded is None:
            return failure(503, "every body decoder is busy: retry later", fmt, retry)
        if decoded.problem is not None:
            return failure(400, decoded.problem, fmt)
        if not decoded.accepted and not decoded.rejected:
            return success(signal, fmt)  # an empty request: nothing to keep
        try:
            entry = self.spool.put(body, signal=signal, fmt=fmt, sender=peer)
        except SpoolFull:
            return self._full(fmt)
        except OSError as exc:
            log.error("cannot write to the spool %s: %s", self.spool.root, exc)
            return failure(503, "the spool cannot be written", fmt, retry)
        self._keep(entry, decoded, len(body))
        self.wake.set()
        return success(signal, fmt, len(decoded.rejected), _partial_message(signal, decoded))

    def _full(self, fmt: Fmt) -> Reply:
        return failure(429, "the spool is full: retry after the writer catches up", fmt,
                       self.settings.retry_after_seconds)

    def _keep(self, entry: SpoolEntry, decoded: DecodedRequest, size: int) -> None:
        with self._cache_lock:
            if self._cache_bytes + size <= _CACHE_BYTES:
                self._cache[entry.name] = (decoded, size)
                self._cache_bytes += size

    def _take(self, name: str) -> DecodedRequest | None:
        with self._cache_lock:
            item = self._cache.pop(name, None)
            if item is None:
                return None
            self._cache_bytes -= item[1]
            return item[0]

    # -- the writer side -----------------------------------------------------------------
    def drain(self, deadline: float | None = None, *, final: bool = False
              ) -> list[IngestResult]:
        """Store every spooled batch, oldest first, each under the writer's lock. Stops at
        ``deadline`` (time.monotonic), when the service is closing (unless ``final``), or at
        a transient store error (the batch stays spooled for the next run)."""
        results: list[IngestResult] = []
        with self._drain_lock:
            self._drain_into(results, deadline, final)
        if results:
            rows: dict[str, int] = {}
            for r in results:
                for table, n in r.counts.accepted.items():
                    rows[table] = rows.get(table, 0) + n
            log.info("stored %d received batch(es): %s, %d rejected", len(results), rows,
                     sum(r.counts.rejected for r in results))
        return results

    def _drain_into(self, results: list[IngestResult], deadline: float | None,
                    final: bool) -> None:
        while True:
            if not final:
                self._linger(deadline)
            entries = self.spool.ready()
            if not entries:
                return
            pos = 0
            while pos < len(entries):
                if (deadline is not None and time.monotonic() > deadline) or (
                        self.closing.is_set() and not final):
                    return
                if pos and not final and (
                        sum(e.size for e in entries[pos:]) < self._group_bytes()):
                    break  # a partial group: linger, it may fill up
                group = _next_group(entries, pos, self._group_bytes())
                pos += len(group)
                started = time.monotonic()
                try:
                    results.extend(self._store_group(group))
                except (TransientError, OSError) as exc:
                    log.warning("spooled batches %s.. not stored yet: %s", group[0].name, exc)
                    return
                self._learn(sum(e.size for e in group), time.monotonic() - started)

    def _linger(self, deadline: float | None) -> None:
        """Wait a little for a bigger group while bodies are still arriving (not when the
        spool is empty, has a full group, or stopped growing: then store what is there)."""
        seen = self.spool.size_bytes
        until = time.monotonic() + _LINGER_SECONDS
        if deadline is not None:
            until = min(until, deadline)
        while 0 < seen < self._group_bytes() and time.monotonic() < until and (
                not self.closing.is_set()):
            time.sleep(_LINGER_STEP)
            now = self.spool.size_bytes
            if now == seen:
                return
            seen = now

    def _group_bytes(self) -> int:
        """How many spooled bytes the next group may take: as many as the last groups
        stored in _HOLD_SECONDS (the writer's lock is held that long: jobs and API calls
        that write wait behind it; GET /api/v1/slos reads on the store's reader connection
        and does not), within _GROUP_BYTES. 1 s, not 0.25 s: fewer, bigger transactions
        (the benchmark's drain lagged the acknowledgements by ~3 s with 0.25 s)."""
        if self._seconds_per_byte <= 0:
            return _GROUP_BYTES[0]
        return max(_GROUP_BYTES[0], min(_GROUP_BYTES[1],
                                        int(_HOLD_SECONDS / self._seconds_per_byte)))

    def _learn(self, size: int, seconds: float) -> None:
        rate = seconds / max(size, 1)
        old = self._seconds_per_byte
        self._seconds_per_byte = rate if old <= 0 else (old + rate) / 2

    def _store_group(self, group: list[SpoolEntry]) -> list[IngestResult]:
        """Store spooled requests in one transaction; each is removed from the spool only
        after the commit (kill -9 safe: a crash before it leaves them all spooled, and the
        store's dedup makes a second drain of a committed one harmless). If the group fails
        for a reason other than a transient one, its requests go one by one, so only the bad
        one is retried and set aside."""
        kept: list[SpoolEntry] = []
        requests: list[ReceivedRequest] = []
        missing: list[int] = []
        for entry in group:
            try:
                body, meta = self.spool.read(entry)
                if meta.format not in ("otlp-proto", "otlp-json"):
                    raise SpoolCorrupt(f"unknown format {meta.format!r}", where=str(entry.path))
            except SpoolCorrupt as exc:
                self._take(entry.name)
                log.error("%s; moved to %s", exc, self.spool.quarantine(entry))
                continue
            kept.append(entry)
            requests.append(ReceivedRequest(body, meta.signal, cast(Fmt, meta.format),
                                            meta.sender, self._take(entry.name)))
            if requests[-1].decoded is None:
                missing.append(len(requests) - 1)
        if missing:  # decoded by the workers, side by side, before the writer's lock
            again = self.decoders.decode_many([
                (requests[i].data, requests[i].signal, requests[i].fmt) for i in missing])
            for i, decoded in zip(missing, again, strict=True):
                requests[i] = replace(requests[i], decoded=decoded)
        if len(kept) == 1 and not self._attempts.get(kept[0].name):
            # nothing to gain from a group of one; the single path counts attempts
            one = self._store_one(kept[0], requests[0])
            return [] if one is None else [one]
        try:
            with self.lock:
                self.engine.correlation_id = telemetry.CORRELATION_ID.get()
                stored = self.engine.ingest_requests(requests)
        except (TransientError, OSError):
            raise
        except Exception:
            log.exception("storing %d spooled batches together failed; one by one now",
                          len(kept))
            out = []
            for entry, req in zip(kept, requests, strict=True):
                one = self._store_one(entry, req)
                if one is not None:
                    out.append(one)
            return out
        for entry, result in zip(kept, stored, strict=True):
            self._done(entry, result)
        return stored

    def _store_one(self, entry: SpoolEntry, req: ReceivedRequest) -> IngestResult | None:
        try:
            with self.lock:
                self.engine.correlation_id = telemetry.CORRELATION_ID.get()
                result = self.engine.ingest_bytes(req.data, req.signal, req.fmt, req.sender,
                                                  decoded=req.decoded)
        except (TransientError, OSError):
            raise
        except Exception:
            n = self._attempts[entry.name] = self._attempts.get(entry.name, 0) + 1
            log.exception("storing spooled batch %s failed (attempt %d)", entry.name, n)
            if n >= _MAX_ATTEMPTS:
                log.error("spooled batch %s moved to %s", entry.name,
                          self.spool.quarantine(entry))
                self._attempts.pop(entry.name, None)
            return None
        self._done(entry, result)
        return result

    def _done(self, entry: SpoolEntry, result: IngestResult) -> None:
        """The batch is committed: forget it."""
        self.spool.remove(entry)
        self._attempts.pop(entry.name, None)
        for table, n in result.counts.accepted.items():
            telemetry.INGEST_ROWS.labels(table).inc(n)
        telemetry.INGEST_REJECTED.inc(result.counts.rejected)


def _next_group(entries: list[SpoolEntry], pos: int, max_bytes: int) -> list[SpoolEntry]:
    """The spooled requests from ``pos`` that go into one transaction: at least one, at most
    _GROUP_REQUESTS, and no more than ``max_bytes`` together."""
    group = [entries[pos]]
    size = entries[pos].size
    for e in entries[pos + 1:pos + _GROUP_REQUESTS]:
        if size + e.size > max_bytes:
            break
        group.append(e)
        size += e.size
    return group


def _partial_message(signal: str, decoded: DecodedRequest) -> str:
    """The ``error_message`` of a partial success: how many, and the first few reasons."""
    dead = decoded.rejected
    if not dead:
        return ""
    noun = _NOUNS[signal]
    head = "; ".join(f"{d.location}: {d.reason}" for d in dead[:3])
    more = f"; and {len(dead) - 3} more" if len(dead) > 3 else ""
    return f"{len(dead)} {noun}(s) rejected and kept as dead letters: {head}{more}"
