"""The one façade that wires the stages (ARCHITECTURE.md). Front doors (CLI, API, scheduler)
build an Engine from Settings and a clock, call it, and format what it returns."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from sloengine.alerting import advance
from sloengine.compute import Incident, evaluate_slo, materialize, replay_slo, score
from sloengine.compute.windows import minute_of
from sloengine.errors import ConfigError
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
from sloengine.model import BatchCounts, Chunk, DeadLetter, IngestResult, SloResult
from sloengine.settings import Settings
from sloengine.spec import LoadedSLO, LoadResult, load_paths, resolve
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
        #: files a folder walk passed over because they are not telemetry
        self.last_skipped: list[Path] = []

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
        self.last_skipped = []
        for path in expand((str(p) for p in paths), self.last_skipped):
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

    # -- SLOs --------------------------------------------------------------------------------
    def load_slos(self, paths: Iterable[Path] | None = None, *, record: bool = True
                  ) -> LoadResult:
        """Load and validate SLO documents (default: settings.slo_dir); record new versions."""
        result = load_paths(list(paths) if paths is not None else [self.settings.slo_dir])
        if record and not self.store.read_only:
            for s in result.slos:
                self.store.exec_(
                    "INSERT OR IGNORE INTO slo_versions VALUES (?, ?, ?, ?, ?, ?)",
                    [s.slo.metadata.name, s.version, s.origin, s.file, self.clock(),
                     orjson.dumps(s.slo.model_dump(mode="json", by_alias=True)).decode()])
        return result

    def _selected(self, slo: str | None) -> list[LoadedSLO]:
        loaded = self.load_slos()
        if loaded.errors:
            raise ConfigError("SLO definitions have errors (run `sloengine validate`): "
                              + str(loaded.errors[0]))
        slos = [s for s in loaded.slos if slo is None or s.slo.metadata.name == slo]
        if slo is not None and not slos:
            raise ConfigError(f"no SLO named {slo!r} in {self.settings.slo_dir}")
        return slos

    def materialize(self, slos: list[LoadedSLO]) -> list[dict[str, Any]]:
        return [materialize(self.store, s.slo, lateness_minutes=self.settings.lateness_minutes,
                            now=self.clock()) for s in slos]

    def evaluate(self, at: datetime | None = None, slo: str | None = None
                 ) -> list[SloResult]:
        """Evaluate every (or one) SLO at ``at`` (default: now, floored to the minute),
        advance the persisted alert state machine and record the evaluations."""
        slos = self._selected(slo)
        t = minute_of(at or self.clock())
        if self.store.read_only:
            return [r for s in slos for r in evaluate_slo(self.store, s, t)]
        self.materialize(slos)
        out: list[SloResult] = []
        with self.store.transaction():
            for s in slos:
                results = evaluate_slo(self.store, s, t)
                fors = {(s.slo.metadata.name, tier.name): int(tier.for_.total_seconds()) // 60
                        for tier in resolve(s.slo)}
                results, _ = advance(self.store, results, fors)
                for r in results:
                    self.store.exec_(
                        "INSERT INTO slo_evaluations VALUES (?,?,?,?,?,?,?,?,?)",
                        [t, self.clock(), r.name, r.slo_version, r.objective, r.target, r.group,
                         r.status, orjson.dumps(r).decode()])
                out.extend(results)
        return out

    def replay(self, t_from: datetime, t_to: datetime, step_minutes: int = 1,
               slo: str | None = None, incidents: list[Incident] | None = None
               ) -> dict[str, Any]:
        """Backtest: the alert timeline over history and, for known incidents, detection
        and reset times, missed incidents and false alerts."""
        slos = self._selected(slo)
        if not self.store.read_only:
            self.materialize(slos)
        a, b = minute_of(t_from), minute_of(t_to)
        intervals = [iv for s in slos for iv in replay_slo(self.store, s, a, b, step_minutes)]
        intervals.sort(key=lambda iv: (iv.pending, iv.slo, iv.tier))
        if incidents is None:
            incidents = self.incidents()
        inside = [i for i in incidents if i.end >= a and i.start <= b]
        return {"from": a, "to": b, "step": step_minutes, "alerts": intervals,
                "score": score(intervals, inside)}

    def incidents(self) -> list[Incident]:
        f = self.settings.incidents_file
        if f is None or not f.exists():
            return []
        out = []
        for i, item in enumerate(orjson.loads(f.read_bytes())):
            try:
                out.append(Incident(str(item["id"]), minute_of(_iso(item["start"])),
                                    minute_of(_iso(item["end"])), str(item.get("kind", ""))))
            except (KeyError, ValueError) as exc:
                raise ConfigError(f"incident {i}: {exc}", where=str(f)) from None
        return out

    # -- summaries ---------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """What the store holds: table counts, time range, services, batches."""
        return self.store.summary()


def _iso(value: str) -> datetime:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return dt
