"""The ingest side of the Engine façade: files, folders and OTLP/HTTP bodies → decoded,
redacted chunks → the store, with lineage and dead letters (see engine.py)."""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from sloengine import engine_privacy
from sloengine.engine_parts import EngineParts
from sloengine.engine_receive import ReceivedRequest, ingest_requests
from sloengine.ingest import (
    DEFAULT_KEYS,
    DEFAULT_PATTERNS,
    AccessLogMapping,
    DecodeOptions,
    DecodePool,
    ReadOptions,
    Redactor,
    ValuePattern,
    expand,
    source_info,
)
from sloengine.ingest.bodies import BodyDecoders, decode_body
from sloengine.ingest.bodies import DecodedRequest as DecodedRequest
from sloengine.model import BatchCounts, Chunk, DeadLetter, IngestResult, SourceInfo
from sloengine.store.erase import ErasureReport

#: Raw bytes of a whole unreadable file are kept in its dead letter up to this size.
_MAX_RAW_FILE = 16 << 20

class IngestFacade(EngineParts):
    # -- ingest ----------------------------------------------------------------------------
    def read_options(self) -> ReadOptions:
        if self._read_options is None:
            r = self.settings.redaction
            key = (r.key.get_secret_value() if r.key is not None
                   else self.store.secret("redaction_key"))
            keys = {k.lower() for k in r.keys}
            patterns = tuple(ValuePattern(p.name, p.regex) for p in r.patterns)
            if r.use_default_rules:
                keys |= set(DEFAULT_KEYS)
                patterns = DEFAULT_PATTERNS + patterns
            if not r.enabled:
                keys, patterns = set(), ()
            self._read_options = ReadOptions(
                decode=DecodeOptions(tuple(self.settings.correlation_keys),
                                     self.settings.chunk_records),
                redactor=Redactor(key.encode(), frozenset(keys), patterns),
                access_log=AccessLogMapping(**self.settings.access_log.model_dump()),
            )
        return self._read_options

    def ingest(self, paths: Iterable[str | Path],
               on_file: Callable[[IngestResult], None] | None = None,
               on_total: Callable[[int], None] | None = None) -> list[IngestResult]:
        """Ingest files, folders and globs. Each file is one lineage batch; each chunk of it
        is committed atomically, so a crash loses at most the chunk in flight, and ingesting
        the file again completes it without duplicates."""
        results = []
        self.last_skipped = []
        files = expand((str(p) for p in paths), self.last_skipped)
        if on_total is not None:
            on_total(len(files))
        with self._decoding():
            for path in files:
                result = self.ingest_file(path)
                results.append(result)
                if on_file is not None:
                    on_file(result)
        return results

    @contextmanager
    def _decoding(self) -> Iterator[DecodePool]:
        """The decode workers of one ingest call (started only if a file is big enough),
        stopped when the call ends: no idle processes between scheduled ingests."""
        if self._decode_pool is not None:
            yield self._decode_pool
            return
        workers = self.settings.ingest_workers or os.cpu_count() or 1
        self._decode_pool = DecodePool(self.read_options(), workers)
        try:
            yield self._decode_pool
        finally:
            self._decode_pool.close()
            self._decode_pool = None

    def ingest_new(self, paths: Iterable[str | Path],
                   on_file: Callable[[IngestResult], None] | None = None
                   ) -> list[IngestResult]:
        """The watcher's ingest: files whose path, size and mtime are unchanged since they
        were taken in are passed over without hashing or a new batch row."""
        results = []
        self.last_skipped = []
        with self._decoding():
            results = self._ingest_new(paths, on_file)
        return results

    def _ingest_new(self, paths: Iterable[str | Path],
                    on_file: Callable[[IngestResult], None] | None) -> list[IngestResult]:
        results = []
        for path in expand((str(p) for p in paths), self.last_skipped):
            st = path.stat()
            seen = self.store.rows(
                "SELECT 1 FROM watched_files WHERE path = ? AND size_bytes = ? "
                "AND mtime_ns = ?", [str(path.resolve()), st.st_size, st.st_mtime_ns])
            if seen:
                continue
            result = self.ingest_file(path)
            self.store.exec_(
                "INSERT OR REPLACE INTO watched_files VALUES (?, ?, ?, ?, ?, ?)",
                [str(path.resolve()), st.st_size, st.st_mtime_ns, result.info.sha256,
                 result.batch_id, self.clock()])
            results.append(result)
            if on_file is not None:
                on_file(result)
        return results

    def ingest_file(self, path: Path) -> IngestResult:
        with self._decoding() as pool:
            pool.warm(path.stat().st_size)  # the workers start while the file is hashed
            info = source_info(path)
            dup = self._duplicate(info)
            if dup is not None:
                return dup
            return self._ingest_file(path, info, pool)

    def _ingest_file(self, path: Path, info: SourceInfo, pool: DecodePool) -> IngestResult:
        result = IngestResult(info, self.store.begin_batch(info), None, BatchCounts())
        try:
            for chunk in pool.read(path, info):
                self._store_chunk(result, chunk)
        except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raw = path.read_bytes() if info.size_bytes <= _MAX_RAW_FILE else b""
            reason = f"file cannot be read to the end: {exc}"
            self._store_chunk(result, Chunk(dead_letters=[DeadLetter("file", reason, raw)]))
        return self._finish(result)

    def decode_request(self, data: bytes, signal: str, fmt: Literal["otlp-proto", "otlp-json"]
                       ) -> DecodedRequest:
        """Decode an OTLP/HTTP request body of ``signal`` in this process, without the
        database (safe outside the writer's lock once ``read_options()`` has been made by
        the writer). ingest/bodies.py holds the decode; ``body_decoders`` runs it in
        worker processes."""
        return decode_body(data, signal, fmt, self.read_options())

    def body_decoders(self, workers: int, **kwargs: Any) -> BodyDecoders:
        """Worker processes that decode request bodies exactly as ``decode_request`` does
        (the same ReadOptions, redaction key included); the caller closes them."""
        return BodyDecoders(self.read_options(), workers, **kwargs)

    def ingest_bytes(self, data: bytes, signal: str, fmt: Literal["otlp-proto", "otlp-json"],
                     sender: str, *, decoded: DecodedRequest | None = None) -> IngestResult:
        """Store one received OTLP/HTTP request body as a lineage batch (source
        ``http:<sender>``), as ingest_file stores a file: a body already stored whole (a
        client's retry, a spool drained again after a crash) becomes a ``duplicate`` batch,
        records already stored are skipped, bad records go to dead letters. ``decoded``:
        the receiver's decode_request of these bytes, to decode once."""
        info = SourceInfo(f"http:{sender}", fmt, signal, hashlib.sha256(data).hexdigest(),
                          len(data))
        dup = self._duplicate(info)
        if dup is not None:
            return dup
        if decoded is None:
            decoded = self.decode_request(data, signal, fmt)
        result = IngestResult(info, self.store.begin_batch(info), None, BatchCounts())
        for chunk in decoded.chunks:
            self._store_chunk(result, chunk)
        return self._finish(result)

    def ingest_requests(self, requests: Sequence[ReceivedRequest]) -> list[IngestResult]:
        """Store many received request bodies in one transaction, each its own lineage
        batch and audit entry, as ingest_bytes would (engine_receive.py says why)."""
        return ingest_requests(self, requests)

    def erase(self, key: str, value: str, *, dry_run: bool = False) -> ErasureReport:
        """Delete every raw record carrying ``key=value`` (GDPR erasure; aggregates stay),
        audited; engine_privacy.py and store/erase.py say what matches."""
        return engine_privacy.erase(self, key, value, dry_run=dry_run)

    def _duplicate(self, info: SourceInfo) -> IngestResult | None:
        """These exact bytes were stored whole before: record a ``duplicate`` batch pointing
        at that one (lineage of the retry) and decode nothing."""
        dup = self.store.find_complete_batch(info.sha256)
        if dup is None:
            return None
        bid = self.store.begin_batch(info, status="duplicate", duplicate_of=dup.batch_id)
        self.audit("ingest", info.source, "ok", {"batch_id": bid, "sha256": info.sha256,
                                                 "duplicate_of": dup.batch_id})
        return IngestResult(info, bid, dup.batch_id, BatchCounts())

    def _finish(self, result: IngestResult) -> IngestResult:
        """Close the lineage batch with its counts and audit it."""
        info, counts = result.info, result.counts
        self.store.finish_batch(result.batch_id, counts)
        self.audit("ingest", info.source, "ok" if not counts.rejected else "partial", {
            "batch_id": result.batch_id, "sha256": info.sha256, "format": info.format,
            "signal": info.signal, "accepted": counts.accepted,
            "duplicates": sum(counts.duplicates.values()), "rejected": counts.rejected})
        return result

    def _store_chunk(self, result: IngestResult, chunk: Chunk) -> None:
        result.counts.add(self.store.append(result.batch_id, result.info, chunk))
        result.errors.extend(chunk.dead_letters)
        result.warnings.extend(chunk.warnings)

    # -- SLOs --------------------------------------------------------------------------------
