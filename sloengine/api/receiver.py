"""The OTLP/HTTP receiver's two halves around the spool.

``accept`` runs in the request handlers, outside the writer's lock: it decodes the body
(through the Engine, which owns decoding) to answer 400 or a partial success honestly,
writes the body to the durable spool, and only then says 200. ``drain`` runs as the single
writer: under the EngineService lock, one spooled batch at a time, it stores the batch
through ``Engine.ingest_bytes`` (lineage, dead letters, dedup) and then forgets it.

The decoded chunks of a request are kept in memory for the drain (bounded), so a batch is
decoded once; after a restart the drain decodes the spooled bytes again.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import cast

from prometheus_client import Counter, Gauge

from sloengine import telemetry
from sloengine.api.otlp import Fmt, Reply, failure, success
from sloengine.api.spool import Spool, SpoolCorrupt, SpoolEntry, SpoolFull
from sloengine.engine import DecodedRequest, Engine
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
#: a batch that fails to store this many times (not transiently) moves to spool/failed/
_MAX_ATTEMPTS = 3
_NOUNS = {"traces": "span", "logs": "log record", "metrics": "metric"}


class Receiver:
    """Accepts OTLP/HTTP request bodies into the spool and drains the spool into the store."""

    def __init__(self, engine: Engine, spool: Spool, lock: threading.RLock,
                 settings: HttpSettings) -> None:
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
        with lock:
            engine.read_options()  # made by the writer, so decoding never needs the store
        SPOOL_BATCHES.set_function(lambda: spool.batches)
        SPOOL_BYTES.set_function(lambda: spool.size_bytes)

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
        decoded = self.engine.decode_request(body, signal, fmt)
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
        while entries := self.spool.ready():
            for entry in entries:
                if (deadline is not None and time.monotonic() > deadline) or (
                        self.closing.is_set() and not final):
                    return
                try:
                    result = self._store(entry)
                except (TransientError, OSError) as exc:
                    log.warning("spooled batch %s not stored yet: %s", entry.name, exc)
                    return
                if result is not None:
                    results.append(result)

    def _store(self, entry: SpoolEntry) -> IngestResult | None:
        decoded = self._take(entry.name)
        try:
            body, meta = self.spool.read(entry)
            if meta.format not in ("otlp-proto", "otlp-json"):
                raise SpoolCorrupt(f"unknown format {meta.format!r}", where=str(entry.path))
        except SpoolCorrupt as exc:
            log.error("%s; moved to %s", exc, self.spool.quarantine(entry))
            return None
        try:
            with self.lock:
                self.engine.correlation_id = telemetry.CORRELATION_ID.get()
                result = self.engine.ingest_bytes(body, meta.signal, cast(Fmt, meta.format),
                                                  meta.sender, decoded=decoded)
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
        self.spool.remove(entry)
        self._attempts.pop(entry.name, None)
        for table, n in result.counts.accepted.items():
            telemetry.INGEST_ROWS.labels(table).inc(n)
        telemetry.INGEST_REJECTED.inc(result.counts.rejected)
        return result


def _partial_message(signal: str, decoded: DecodedRequest) -> str:
    """The ``error_message`` of a partial success: how many, and the first few reasons."""
    dead = decoded.rejected
    if not dead:
        return ""
    noun = _NOUNS[signal]
    head = "; ".join(f"{d.location}: {d.reason}" for d in dead[:3])
    more = f"; and {len(dead) - 3} more" if len(dead) > 3 else ""
    return f"{len(dead)} {noun}(s) rejected and kept as dead letters: {head}{more}"
