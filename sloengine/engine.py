"""The one façade that wires the stages (ARCHITECTURE.md). Front doors (CLI, API, scheduler)
build an Engine from Settings and a clock, call it, and format what it returns."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from sloengine.ingest import (
    DEFAULT_KEYS,
    DEFAULT_PATTERNS,
    AccessLogMapping,
    DecodeOptions,
    ReadOptions,
    Redactor,
    ValuePattern,
    expand,
    read_file,
    source_info,
)
from sloengine.model import BatchCounts, Chunk, DeadLetter, IngestResult
from sloengine.settings import Settings
from sloengine.store import Store

Clock = Callable[[], datetime]

#: Raw bytes of a whole unreadable file are kept in its dead letter up to this size.
_MAX_RAW_FILE = 16 << 20


def system_clock() -> datetime:
    return datetime.now().astimezone()


class Engine:
    """Owns the Store (the single DuckDB writer) and runs ingest, and later evaluation."""

    def __init__(self, settings: Settings, *, clock: Clock = system_clock,
                 store: Store | None = None, read_only: bool = False) -> None:
        self.settings = settings
        self.clock = clock
        self.store = store or Store(settings.db, read_only=read_only, clock=clock)
        self._read_options: ReadOptions | None = None

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
               on_file: Callable[[IngestResult], None] | None = None) -> list[IngestResult]:
        """Ingest files, folders and globs. Each file is one lineage batch; each chunk of it
        is committed atomically, so a crash loses at most the chunk in flight, and ingesting
        the file again completes it without duplicates."""
        results = []
        for path in expand(str(p) for p in paths):
            result = self.ingest_file(path)
            results.append(result)
            if on_file is not None:
                on_file(result)
        return results

    def ingest_file(self, path: Path) -> IngestResult:
        info = source_info(path)
        dup = self.store.find_complete_batch(info.sha256)
        if dup is not None:
            bid = self.store.begin_batch(info, status="duplicate", duplicate_of=dup.batch_id)
            return IngestResult(info, bid, dup.batch_id, BatchCounts())
        bid = self.store.begin_batch(info)
        counts = BatchCounts()
        result = IngestResult(info, bid, None, counts)
        try:
            for chunk in read_file(path, info, self.read_options()):
                self._store_chunk(result, chunk)
        except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raw = path.read_bytes() if info.size_bytes <= _MAX_RAW_FILE else b""
            reason = f"file cannot be read to the end: {exc}"
            self._store_chunk(result, Chunk(dead_letters=[DeadLetter("file", reason, raw)]))
        self.store.finish_batch(bid, counts)
        return result

    def _store_chunk(self, result: IngestResult, chunk: Chunk) -> None:
        result.counts.add(self.store.append(result.batch_id, result.info, chunk))
        result.errors.extend(chunk.dead_letters)
        result.warnings.extend(chunk.warnings)

    # -- summaries ---------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """What the store holds: table counts, time range, services, batches."""
        return self.store.summary()
