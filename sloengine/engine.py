"""The one façade that wires the stages (ARCHITECTURE.md). Front doors (CLI, API, scheduler)
build an Engine from Settings and a clock, call it, and format what it returns."""

from __future__ import annotations

import getpass
import gzip
import hashlib
import os
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson

from sloengine import engine_privacy
from sloengine.alerting import (
    BadEvents,
    DeliveryReport,
    Notifier,
    NotifyConfig,
    Transition,
    advance,
    dedup_key,
    deliver_pass,
    enqueue,
    firing,
    load_notify_config,
)
from sloengine.alerting import overview as alerts_overview
from sloengine.alerting.listing import LIVE as LIVE_ALERTS
from sloengine.alerting.listing import page as alert_page
from sloengine.compute import (
    Incident,
    evaluate_slo,
    evaluate_slos,
    materialize_many,
    replay_slos,
    score,
)
from sloengine.compute.exemplars import bad_event_filter
from sloengine.compute.filters import group_expr
from sloengine.compute.history import slo_history
from sloengine.compute.history import versions as slo_versions_used
from sloengine.compute.pulled import (
    PullReport,
    is_pulled,
    mark_unavailable,
    needed_range,
    pull_slo,
    unavailable,
)
from sloengine.compute.report_doc import AuditHead
from sloengine.compute.report_doc import document as report_document
from sloengine.compute.windows import minute_of
from sloengine.engine_receive import ReceivedRequest as ReceivedRequest
from sloengine.engine_receive import ingest_requests
from sloengine.errors import ConfigError, QueryRefused, SloEngineError
from sloengine.forensics import (
    Exemplar,
    Story,
    TraceOptions,
    compare,
    evidence,
    exemplars,
    reconstruct,
    story_json,
)
from sloengine.forensics import audit as audit_trail
from sloengine.forensics.lineage import Lineage, lineage
from sloengine.ingest import (
    DEFAULT_KEYS,
    DEFAULT_PATTERNS,
    AccessLogMapping,
    DecodeOptions,
    DecodePool,
    DecodeState,
    ReadOptions,
    Redactor,
    ValuePattern,
    decode_json,
    decode_proto,
    expand,
    redact_chunk,
    source_info,
)
from sloengine.model import BatchCounts, Chunk, DeadLetter, IngestResult, SloResult, SourceInfo
from sloengine.report import render as render_report
from sloengine.report.pages import render_page
from sloengine.report.trace import render_trace_html
from sloengine.settings import Settings
from sloengine.sources import PrometheusSource
from sloengine.spec import LoadedSLO, LoadResult, load_paths, resolve
from sloengine.store import Store
from sloengine.store import keys as key_store
from sloengine.store.crypt import Encryption
from sloengine.store.erase import ErasureReport
from sloengine.store.keys import KeyRow as KeyRow  # re-exported for the front doors
from sloengine.store.sandbox import guarded_query

Clock = Callable[[], datetime]

#: Raw bytes of a whole unreadable file are kept in its dead letter up to this size.
_MAX_RAW_FILE = 16 << 20
#: The tables each OTLP signal fills (the first one counts the signal's records).
_SIGNAL_TABLES = {"traces": ("spans", "span_events"), "logs": ("logs",),
                  "metrics": ("metric_points",)}


@dataclass(slots=True)
class DecodedRequest:
    """One OTLP/HTTP request body, decoded and redacted but not stored. ``problem`` says why
    the body cannot be read at all (the receiver answers 400); otherwise ``rejected`` are
    the records that go to dead letters (a partial success)."""

    chunks: list[Chunk]
    accepted: int
    rejected: list[DeadLetter]
    problem: str | None = None


def system_clock() -> datetime:
    return datetime.now().astimezone()


class Engine:
    """Owns the Store (the single DuckDB writer) and runs ingest, and later evaluation."""

    def __init__(self, settings: Settings, *, clock: Clock = system_clock,
                 store: Store | None = None, read_only: bool = False,
                 actor: str | None = None, correlation_id: str | None = None) -> None:
        self.settings = settings
        self.clock = clock
        #: who acts (OS user or "apikey:<id>") and the id of this invocation, in every audit
        #: entry it writes
        self.actor = actor or default_actor()
        self.correlation_id = correlation_id or uuid.uuid4().hex
        self.store = store or Store(settings.db, read_only=read_only, clock=clock,
                                    encryption=db_encryption(settings))
        self._read_options: ReadOptions | None = None
        self._decode_pool: DecodePool | None = None
        self._prometheus: PrometheusSource | None = None
        #: files a folder walk passed over because they are not telemetry
        self.last_skipped: list[Path] = []

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- audit -----------------------------------------------------------------------------
    def audit(self, action: str, obj: str, outcome: str = "ok",
              detail: dict[str, Any] | None = None) -> None:
        """Append to the hash-chained audit trail (read-only engines cannot, and say so in
        their callers)."""
        if not self.store.read_only:
            audit_trail.append(self.store, at=self.clock(), actor=self.actor, action=action,
                         obj=obj, outcome=outcome, correlation_id=self.correlation_id,
                         detail=detail)

    def audit_verify(self, expected_head: str | None = None) -> audit_trail.Verdict:
        verdict = audit_trail.verify(self.store, expected_head)
        self.audit("audit.verify", "audit_log", "ok" if verdict.ok else "error",
                   {"entries": verdict.entries, "problem": verdict.problem})
        return verdict

    def audit_export(self, t_from: datetime, t_to: datetime, out: Path) -> dict[str, Any]:
        result = evidence.export(self.store, t_from, t_to, out, self.settings.reports_dir)
        self.audit("audit.export", str(out), "ok",
                   {"from": t_from.isoformat(), "to": t_to.isoformat(),
                    "entries": result["entries"], "head": result["head"]})
        return result

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
        info = source_info(path)
        dup = self.store.find_complete_batch(info.sha256)
        if dup is not None:
            bid = self.store.begin_batch(info, status="duplicate", duplicate_of=dup.batch_id)
            self.audit("ingest", info.source, "ok", {"batch_id": bid, "sha256": info.sha256,
                                                     "duplicate_of": dup.batch_id})
            return IngestResult(info, bid, dup.batch_id, BatchCounts())
        bid = self.store.begin_batch(info)
        counts = BatchCounts()
        result = IngestResult(info, bid, None, counts)
        try:
            with self._decoding() as pool:
                for chunk in pool.read(path, info):
                    self._store_chunk(result, chunk)
        except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raw = path.read_bytes() if info.size_bytes <= _MAX_RAW_FILE else b""
            reason = f"file cannot be read to the end: {exc}"
            self._store_chunk(result, Chunk(dead_letters=[DeadLetter("file", reason, raw)]))
        self.store.finish_batch(bid, counts)
        self.audit("ingest", info.source, "ok" if not counts.rejected else "partial", {
            "batch_id": bid, "sha256": info.sha256, "format": info.format,
            "signal": info.signal, "accepted": counts.accepted,
            "duplicates": sum(counts.duplicates.values()), "rejected": counts.rejected})
        return result

    def decode_request(self, data: bytes, signal: str, fmt: Literal["otlp-proto", "otlp-json"]
                       ) -> DecodedRequest:
        """Decode an OTLP/HTTP request body of ``signal`` without the database (safe outside
        the writer's lock once ``read_options()`` has been made by the writer)."""
        if signal not in _SIGNAL_TABLES:
            raise ConfigError(f"unknown OTLP signal {signal!r}")
        opts = self.read_options()
        if fmt == "otlp-json" and data.strip() == b"{}":
            return DecodedRequest([], 0, [])  # an empty request is valid OTLP/JSON
        state = DecodeState(opts.decode)
        decoded = (decode_proto(data, signal, state) if fmt == "otlp-proto"
                   else decode_json(data, signal, state))
        chunks = [redact_chunk(c, opts.redactor) for c in decoded]
        rejected = [d for c in chunks for d in c.dead_letters]
        tables = {t for c in chunks for t in c.tables()}
        main = _SIGNAL_TABLES[signal][0]
        accepted = sum(c.tables()[main].num_rows for c in chunks if main in c.tables())
        problem = None
        if tables - set(_SIGNAL_TABLES[signal]):
            problem = f"the body is not an OTLP {signal} request"
        elif not accepted and any(d.location in ("message", "document") for d in rejected):
            problem = next(d.reason for d in rejected if d.location in ("message", "document"))
        return DecodedRequest(chunks, accepted, rejected, problem)

    def ingest_bytes(self, data: bytes, signal: str, fmt: Literal["otlp-proto", "otlp-json"],
                     sender: str, *, decoded: DecodedRequest | None = None) -> IngestResult:
        """Store one received OTLP/HTTP request body as a lineage batch (source
        ``http:<sender>``), as ingest_file stores a file: a body already stored whole (a
        client's retry, a spool drained again after a crash) becomes a ``duplicate`` batch,
        records already stored are skipped, bad records go to dead letters. ``decoded``:
        the receiver's decode_request of these bytes, to decode once."""
        info = SourceInfo(f"http:{sender}", fmt, signal, hashlib.sha256(data).hexdigest(),
                          len(data))
        dup = self.store.find_complete_batch(info.sha256)
        if dup is not None:
            bid = self.store.begin_batch(info, status="duplicate", duplicate_of=dup.batch_id)
            self.audit("ingest", info.source, "ok", {"batch_id": bid, "sha256": info.sha256,
                                                     "duplicate_of": dup.batch_id})
            return IngestResult(info, bid, dup.batch_id, BatchCounts())
        if decoded is None:
            decoded = self.decode_request(data, signal, fmt)
        bid = self.store.begin_batch(info)
        result = IngestResult(info, bid, None, BatchCounts())
        for chunk in decoded.chunks:
            self._store_chunk(result, chunk)
        counts = result.counts
        self.store.finish_batch(bid, counts)
        self.audit("ingest", info.source, "ok" if not counts.rejected else "partial", {
            "batch_id": bid, "sha256": info.sha256, "format": info.format,
            "signal": info.signal, "accepted": counts.accepted,
            "duplicates": sum(counts.duplicates.values()), "rejected": counts.rejected})
        return result

    def ingest_requests(self, requests: Sequence[ReceivedRequest]) -> list[IngestResult]:
        """Store many received request bodies in one transaction, each its own lineage
        batch and audit entry, as ingest_bytes would (engine_receive.py says why)."""
        return ingest_requests(self, requests)

    def erase(self, key: str, value: str, *, dry_run: bool = False) -> ErasureReport:
        """Delete every raw record carrying ``key=value`` (GDPR erasure; aggregates stay),
        audited; engine_privacy.py and store/erase.py say what matches."""
        return engine_privacy.erase(self, key, value, dry_run=dry_run)

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
                known = self.store.one("SELECT count(*) FROM slo_versions WHERE slo_name = ? "
                                       "AND version = ?", [s.slo.metadata.name, s.version])
                if known:
                    continue
                self.store.exec_(
                    "INSERT INTO slo_versions VALUES (?, ?, ?, ?, ?, ?)",
                    [s.slo.metadata.name, s.version, s.origin, s.file, self.clock(),
                     orjson.dumps(s.slo.model_dump(mode="json", by_alias=True)).decode()])
                self.audit("slo.version", s.slo.metadata.name, "ok",
                           {"version": s.version, "origin": s.origin, "file": s.file})
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

    def prometheus_source(self) -> PrometheusSource | None:
        """One per engine, so its circuit breaker spans evaluations; None without a URL."""
        if self._prometheus is None and self.settings.prometheus.url is not None:
            self._prometheus = PrometheusSource(self.settings.prometheus)
        return self._prometheus

    def pull_sources(self, at: datetime | None = None, slo: str | None = None
                     ) -> list[PullReport]:
        """Fetch the minutes up to ``at`` that every (or one) PromQL SLO is missing."""
        return self._pull(self._selected(slo), minute_of(at or self.clock()))

    def _pull(self, slos: list[LoadedSLO], t: int, since: int | None = None
              ) -> list[PullReport]:
        pulled = [s for s in slos if is_pulled(s.slo)]
        if not pulled or self.store.read_only:
            return []
        source = self.prometheus_source()
        if source is None:
            return []  # no Prometheus configured: these SLOs report source_unavailable
        reports = []
        for s in pulled:
            lo = None if since is None else needed_range(s.slo, since)[0]
            rep = pull_slo(self.store, s.slo, t, source, now=self.clock(), lo=lo)
            if rep.outcome != "ok":
                self.audit("source.pull", s.slo.metadata.name, "error", rep.detail())
            reports.append(rep)
        return reports

    def _status(self, s: LoadedSLO, results: list[SloResult], t: int) -> list[SloResult]:
        return mark_unavailable(results) if unavailable(self.store, s.slo, t) else results

    def materialize(self, slos: list[LoadedSLO]) -> list[dict[str, Any]]:
        return materialize_many(self.store, [s.slo for s in slos],
                                lateness_minutes=self.settings.lateness_minutes,
                                now=self.clock())

    def evaluate(self, at: datetime | None = None, slo: str | None = None
                 ) -> list[SloResult]:
        """Evaluate every (or one) SLO at ``at`` (default: now, floored to the minute),
        advance the persisted alert state machine and record the evaluations."""
        slos = self._selected(slo)
        t = minute_of(at or self.clock())
        if self.store.read_only:
            return [r for s, res in zip(slos, evaluate_slos(self.store, slos, t), strict=True)
                    for r in self._status(s, res, t)]
        self.materialize(slos)
        self._pull(slos, t)  # network I/O before the transaction (a pull commits per chunk)
        return self._evaluate_at(slos, t, slo)

    def _evaluate_at(self, slos: list[LoadedSLO], t: int, label: str | None
                     ) -> list[SloResult]:
        """Evaluate, advance the alert state machine, enqueue notifications and record the
        evaluations — one transaction (the outbox rows commit with the state change)."""
        out: list[SloResult] = []
        with self.store.transaction():
            # every SLO's numbers from a few shared queries (compute.evaluate_slos)
            for s, results in zip(slos, evaluate_slos(self.store, slos, t), strict=True):
                transitions: list[Transition] = []
                if unavailable(self.store, s.slo, t):
                    # holes in a pulled SLI: report them, but neither fire nor resolve
                    results = mark_unavailable(results)
                else:
                    fors = {(s.slo.metadata.name, tier.name):
                            int(tier.for_.total_seconds()) // 60 for tier in resolve(s.slo)}
                    results, transitions = advance(self.store, results, fors)
                enqueue(self.store, transitions, s.slo,
                        _bad_events(s) if transitions else None, now=self.clock())
                for tr in transitions:
                    self.audit("alert.transition", tr.dedup_key, "ok", {
                        "from": tr.from_state, "to": tr.to_state, "eval_minute": tr.eval_minute,
                        "slo_version": tr.result.slo_version,
                        "long_burn_rate": tr.decision.long_burn_rate,
                        "short_burn_rate": tr.decision.short_burn_rate})
                for r in results:
                    self.store.exec_(
                        "INSERT INTO slo_evaluations VALUES (?,?,?,?,?,?,?,?,?)",
                        [t, self.clock(), r.name, r.slo_version, r.objective, r.target, r.group,
                         r.status, orjson.dumps(r).decode()])
                out.extend(results)
            self.audit("evaluate", label or "*", "ok", {"eval_minute": t, "results": len(out)})
        return out

    def notify_config(self) -> NotifyConfig:
        """notify_file when it exists, else the embedded default: console + a JSONL file."""
        if self.settings.notify_file.exists():
            return load_notify_config(self.settings.notify_file)
        self.settings.reports_dir.mkdir(parents=True, exist_ok=True)
        return NotifyConfig.model_validate({
            "notifiers": {
                "console": {"kind": "console", "details": False},
                "file": {"kind": "file", "path": str(self.settings.reports_dir / "alerts.jsonl")},
            },
            "default": ["console", "file"],
        })

    def catch_up(self, t_to: datetime | None = None) -> int:
        """Bring alert state up to ``t_to`` over data that arrived for the past (a backfill,
        the sample data): replay finds the minutes where some tier's alert changes, and the
        live state machine evaluates exactly those minutes, in order, so every transition is
        recorded and notified as it would have been live. Returns the evaluations made."""
        slos = self._selected(None)
        end = minute_of(t_to or self.clock())
        self.materialize(slos)
        last = self.store.one("SELECT max(eval_minute) FROM slo_evaluations")
        first = self.store.one("SELECT min(minute) FROM slo_buckets")
        if first is None:
            return 0
        start = max(int(first), int(last) + 1 if last is not None else int(first),
                    end - 90 * 24 * 60)
        if start >= end:
            return 0
        moments: set[tuple[int, str]] = set()
        for s, ivs in zip(slos, replay_slos(self.store, slos, start, end - 1, 1), strict=True):
            for iv in ivs:
                for m in (iv.pending, iv.firing, iv.resolved):
                    if m is not None:
                        moments.add((m, s.slo.metadata.name))
        by_name = {s.slo.metadata.name: s for s in slos}
        for m, name in sorted(moments):
            self._evaluate_at([by_name[name]], m, name)
        return len(moments)

    def deliver(self, config: NotifyConfig | Path,
                notifiers: Mapping[str, Notifier] | None = None) -> DeliveryReport:
        """One pass over the alert outbox: route new notifications, send what is due (retries,
        a circuit breaker per target, targets in parallel), record each outcome."""
        cfg = config if isinstance(config, NotifyConfig) else load_notify_config(config)
        report = deliver_pass(self.store, cfg, clock=self.clock, notifiers=notifiers)
        if report.attempts:
            self.audit("alert.deliver", "outbox", "ok" if report.ok else "partial",
                       report.to_json())
        return report

    def replay(self, t_from: datetime, t_to: datetime, step_minutes: int = 1,
               slo: str | None = None, incidents: list[Incident] | None = None
               ) -> dict[str, Any]:
        """Backtest: the alert timeline over history and, for known incidents, detection
        and reset times, missed incidents and false alerts."""
        slos = self._selected(slo)
        a, b = minute_of(t_from), minute_of(t_to)
        if not self.store.read_only:
            self.materialize(slos)
            self._pull(slos, b, since=a)
        intervals = [iv for ivs in replay_slos(self.store, slos, a, b, step_minutes)
                     for iv in ivs]
        intervals.sort(key=lambda iv: (iv.pending, iv.slo, iv.tier))
        if incidents is None:
            incidents = self.incidents()
        inside = [i for i in incidents if i.end >= a and i.start <= b]
        self.audit("replay", slo or "*", "ok", {"from": a, "to": b, "step": step_minutes,
                                                "alerts": len(intervals)})
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

    # -- retention ---------------------------------------------------------------------------
    def enforce_retention(self) -> dict[str, int]:
        """Delete raw records past their retention (settings.retention); aggregates (SLO
        buckets, evaluations), lineage and the audit trail stay. Audited."""
        r = self.settings.retention
        now_ns = _unix_ns(self.clock())
        day = 86_400_000_000_000
        plan = {"spans": r.spans_days, "span_events": r.spans_days, "logs": r.logs_days,
                "metric_points": r.metric_points_days, "dead_letters": r.dead_letters_days}
        deleted = {t: self.store.delete_older(t, now_ns - days * day)
                   for t, days in plan.items() if days > 0}
        if any(deleted.values()):
            self.audit("retention", "store", "ok", {"deleted": deleted, "days": plan})
        return deleted

    # -- forensics ---------------------------------------------------------------------------
    def optimize_layout(self) -> dict[str, Any]:
        """Index newly ingested batches for request lookups (store/layout.py): trace,
        correlation and span ids sorted so zone maps prune; run on a schedule."""
        rep = self.store.optimize_layout()
        detail = {"kind": rep.kind, "index_rows": rep.index_rows, "runs": rep.runs,
                  "seconds": rep.seconds}
        if rep.kind != "none":
            self.audit("layout.optimize", "id_index", "ok", detail)
        return detail

    def lineage(self, ident: str) -> Lineage:
        """The ordered hops of one request with the ingest batch of every record."""
        try:
            result = lineage(self.store, ident)
        except SloEngineError as exc:
            self.audit("lineage.query", ident, "error", {"problem": str(exc)})
            raise
        self.audit("lineage.query", ident, "ok", {"hops": len(result.hops),
                                                   "traces": result.trace_ids})
        return result

    def trace(self, ident: str, *, adjust_skew: bool = False, max_traces: int = 50,
              log_window_s: float = 5.0) -> Story:
        """One request's story (trace id, span id or correlation id) across traces: tree,
        critical path, error origin, orphan and skew flags (forensics/reconstruct.py)."""
        opts = TraceOptions(max_traces=max_traces, log_window_s=log_window_s,
                            adjust_skew=adjust_skew)
        try:
            story = reconstruct(self.store, ident, opts)
        except SloEngineError as exc:
            self.audit("trace.query", ident, "error", {"problem": str(exc)})
            raise
        self.audit("trace.query", ident, "ok", {"traces": story.trace_ids,
                                                 "spans": len(story.spans)})
        return story

    def trace_html(self, story: Story) -> str:
        """The story as a self-contained HTML page (report/templates/trace.html.j2)."""
        return render_trace_html(story_json(story))

    def trace_json(self, story: Story) -> dict[str, Any]:
        """The story as the ``sloengine.trace/v1`` dict (forensics/contract.py)."""
        return story_json(story)

    def compare_requests(self, a: str, b: str, *, top: int = 10,
                         adjust_skew: bool = False) -> dict[str, Any]:
        """How two requests of the same route differ (``sloengine.compare/v1``)."""
        return compare(self.trace(a, adjust_skew=adjust_skew),
                       self.trace(b, adjust_skew=adjust_skew), top=top)

    def trace_exemplars(self, slo: str, t_from: datetime, t_to: datetime, *,
                        errors_only: bool = False, limit: int = 20,
                        order: Literal["worst", "newest"] = "worst") -> list[Exemplar]:
        """Requests that burned the SLO's budget: the bad events of its SLI in
        [t_from, t_to), worst (failed, then slowest) or newest first."""
        [loaded] = self._selected(slo)
        table, where, params = bad_event_filter(loaded.slo)
        out = exemplars(self.store, table, where, params, t_from_ns=_unix_ns(t_from),
                        t_to_ns=_unix_ns(t_to), errors_only=errors_only, limit=limit,
                        order=order)
        self.audit("traces.query", slo, "ok", {"from": t_from.isoformat(),
                                                "to": t_to.isoformat(), "found": len(out)})
        return out

    def slo_event_totals(self) -> list[tuple[str, str, float, float]]:
        """(slo, group, good, bad) over all buckets: the counter behind exported rules."""
        return [(str(r[0]), str(r[1]), float(r[2]), float(r[3])) for r in self.store.rows(
            "SELECT slo_name, grp, sum(good), sum(total) - sum(good) FROM slo_buckets "
            "GROUP BY ALL ORDER BY 1, 2")]

    # -- reports -----------------------------------------------------------------------------
    def report(self, t_from: datetime, t_to: datetime, out: Path, fmt: str = "html", *,
               slos: list[str] | None = None, auditor: bool = False, label: str | None = None,
               step_minutes: int = 60) -> list[Path]:
        """Write the report of ``[t_from, t_to)``: compute reads the history through the
        store, report renders it; the files written (with sha256) go into the audit trail."""
        doc = self.report_doc(t_from, t_to, slos=slos, auditor=auditor, label=label,
                              step_minutes=step_minutes)
        a, b = minute_of(t_from), minute_of(t_to)
        files = render_report(doc, fmt, out)
        self.audit("report", str(out), "ok", {
            "format": fmt, "from": a, "to": b, "step": step_minutes, "auditor": auditor,
            "slos": sorted(s["name"] for s in doc["slos"]),
            "files": [{"path": str(f), "sha256": hashlib.sha256(f.read_bytes()).hexdigest()}
                      for f in files]})
        return files

    def report_doc(self, t_from: datetime, t_to: datetime, *, slos: list[str] | None = None,
                   auditor: bool = False, label: str | None = None, step_minutes: int = 60
                   ) -> dict[str, Any]:
        """The ``sloengine.report/v1`` document of ``[t_from, t_to)`` (report and the status
        pages render it; it writes only what any read does: buckets, SLO versions)."""
        selected = self._selected(None)
        if slos:
            names = {s.slo.metadata.name for s in selected}
            unknown = sorted(set(slos) - names)
            if unknown:
                raise ConfigError(f"no SLO named {unknown[0]!r} in {self.settings.slo_dir}")
            selected = [s for s in selected if s.slo.metadata.name in set(slos)]
        a, b = minute_of(t_from), minute_of(t_to)
        if b <= a:
            raise ConfigError("the report period is empty: its end must be after its start")
        if step_minutes < 1:
            raise ConfigError("the report step must be at least 1 minute")
        if not self.store.read_only:
            self.materialize(selected)
        histories = [slo_history(self.store, s, a, b, step_minutes) for s in selected]
        head, versions = None, None
        if auditor:
            verdict = audit_trail.verify(self.store)
            head = AuditHead(self.store.meta(audit_trail.HEAD_KEY), verdict.ok,
                             verdict.entries, verdict.problem)
            versions = slo_versions_used(self.store, selected, a, b)
        return report_document(histories, a, b, step_minutes, generated_at=self.clock(),
                               label=label, versions=versions, audit=head)

    # -- status pages ------------------------------------------------------------------------
    def status(self, at: datetime | None = None, slo: str | None = None) -> list[SloResult]:
        """Every (or one) SLO's state at ``at`` for readers (status pages, API), without
        advancing the alert state machine. Now, each tier carries its live alert state
        (pending/firing, from the last scheduled evaluation); at a past ``at`` it carries
        its condition then, as a look back in time does in alerting/state.py."""
        slos = self._selected(slo)
        t = minute_of(at or self.clock())
        if not self.store.read_only:
            self.materialize(slos)
        live = None if at is not None else {a["dedup_key"]: a["state"]
                                            for a in firing(self.store)}
        out = []
        for s in slos:
            for r in self._status(s, evaluate_slo(self.store, s, t), t):
                out.append(replace(r, alerts=[replace(d, state=(
                    live.get(dedup_key(r, d.tier), "inactive") if live is not None
                    else "firing" if d.condition else "inactive")) for d in r.alerts]))
        return out

    def live_alerts(self) -> list[dict[str, Any]]:
        """Alerts pending or firing now in the persisted state machine (times in minutes)."""
        return firing(self.store)

    def page_html(self, page: str, **context: Any) -> str:
        """One status page (report/pages.py renders it; api/pages.py serves it)."""
        return render_page(page, **context)

    # -- summaries ---------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """What the store holds: table counts, time range, services, batches."""
        return self.store.summary()

    # -- the HTTP API (sloengine/api/): keys, reads without side effects ---------------------
    def create_key(self, role: str, name: str, expires_at: datetime | None = None
                   ) -> tuple[KeyRow, str]:
        """A new API key: its row (the secret only as a salted hash) and the key itself,
        shown once and never stored. Audited."""
        key_id, secret, token = key_store.new_token()
        row = KeyRow(key_id, name, role, key_store.hash_secret(secret), self.clock(),
                     self.actor, expires_at, None)
        key_store.insert(self.store, row)
        self.audit("key.create", key_id, "ok", {k: v for k, v in row.public().items()
                                                 if k in ("name", "role", "expires_at")})
        return row, token

    def list_keys(self) -> list[KeyRow]:
        rows = key_store.all_keys(self.store)
        self.audit("key.list", "api_keys", "ok", {"keys": len(rows)})
        return rows

    def key_rows(self) -> list[KeyRow]:
        """Every key, unaudited: the API's authentication cache (api/access.py) reads it."""
        return key_store.all_keys(self.store)

    def revoke_key(self, key_id: str) -> KeyRow | None:
        """Revoke a key (None: no such key). Revoking twice keeps the first time. Audited."""
        row = key_store.get(self.store, key_id)
        if row is None:
            self.audit("key.revoke", key_id, "error", {"problem": "no such key"})
            return None
        key_store.revoke(self.store, key_id, self.clock())
        self.audit("key.revoke", key_id, "ok", {"role": row.role, "name": row.name})
        return key_store.get(self.store, key_id)

    @staticmethod
    def parse_key(token: str) -> tuple[str, str] | None:
        return key_store.parse_token(token)

    @staticmethod
    def key_matches(row: KeyRow, secret: str) -> bool:
        return key_store.verify_secret(secret, row.secret_hash)

    def data_version(self) -> str:
        """A digest that changes when what a report or a replay reads changes: batches
        (new data), record counts (retention, erasure), SLO buckets and alert transitions,
        the SLO definitions' content hashes, the incidents file. The API's ETags hang on it."""
        counts = self.store.rows(
            "SELECT (SELECT coalesce(max(batch_id), 0) FROM ingest_batches), "
            "(SELECT count(*) FROM ingest_batches), (SELECT count(*) FROM spans), "
            "(SELECT count(*) FROM logs), (SELECT count(*) FROM metric_points), "
            "(SELECT count(*) FROM slo_buckets), (SELECT count(*) FROM alert_transitions)")[0]
        slos = sorted((s.slo.metadata.name, s.version)
                      for s in self.load_slos(record=False).slos)
        inc = self.settings.incidents_file
        inc_sig = inc.stat().st_mtime_ns if inc is not None and inc.exists() else None
        return hashlib.sha256(orjson.dumps([list(counts), slos, inc_sig])).hexdigest()[:32]

    def current_state(self, slo: str | None = None) -> list[dict[str, Any]]:
        """The newest stored evaluation of every (or one) SLO, as the evaluate job left it:
        a read (nothing is evaluated, no alert moves) on the store's reader connection, so
        it is safe without the engine lock."""
        return [orjson.loads(r[0]) for r in self.store.read(
            "SELECT result FROM slo_evaluations WHERE ?::VARCHAR IS NULL OR slo_name = ? "
            "QUALIFY rank() OVER (PARTITION BY slo_name ORDER BY eval_minute DESC) = 1 "
            "AND row_number() OVER (PARTITION BY slo_name, objective, grp "
            "ORDER BY eval_minute DESC, evaluated_at DESC) = 1 "
            "ORDER BY slo_name, objective, grp", [slo, slo])]

    def slo_names(self) -> list[str]:
        return [s.slo.metadata.name for s in self.load_slos(record=False).slos]

    def alerts_view(self, *, states: tuple[str, ...] = LIVE_ALERTS, severity: str | None = None,
                    slo: str | None = None, after: str | None = None, limit: int = 50
                    ) -> dict[str, Any]:
        """``sloengine alerts`` with filters and a page of alerts (``next_cursor``)."""
        view = alerts_overview(self.store, self.clock())
        view["alerts"], view["next_cursor"] = alert_page(
            self.store, states=states, severity=severity, slo=slo, after=after, limit=limit)
        return view

    def trace_document(self, ident: str, *, adjust_skew: bool = False, max_traces: int = 50
                       ) -> dict[str, Any]:
        """``sloengine.trace/v1`` of one request (see ``trace``)."""
        return story_json(self.trace(ident, adjust_skew=adjust_skew, max_traces=max_traces))

    def query_here(self, query: str, limit: int | None = None
                   ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """``user_query`` on this engine's own connection (inside ``sloengine run``, where a
        second, sandboxed connection cannot be opened): store/sandbox.py checks the syntax
        tree instead. Audited, refusals too."""
        digest = hashlib.sha256(query.encode()).hexdigest()[:16]
        try:
            cols, rows = guarded_query(self.store, query, limit)
        except QueryRefused as exc:
            self.audit("sql", f"query:{digest}", "refused", {"query": query, "rows": 0,
                                                               "problem": str(exc)})
            raise
        self.audit("sql", f"query:{digest}", "ok", {"query": query, "rows": len(rows),
                                                      "problem": ""})
        return cols, rows


def _bad_events(s: LoadedSLO) -> BadEvents | None:
    """The SLI's bad events as SQL for alert context (compute compiles, alerting queries);
    None for metric and PromQL SLIs, which have no individual events."""
    try:
        table, where, params = bad_event_filter(s.slo)
        group_params: list[Any] = []
        group_sql = group_expr(table, s.slo.spec.group_by, group_params)
    except ConfigError:
        return None
    return BadEvents(table, where, params, group_sql, group_params)


def _iso(value: str) -> datetime:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return dt


def _unix_ns(t: datetime) -> int:
    """Exact unix nanoseconds of an aware datetime (no float rounding)."""
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def db_encryption(settings: Settings) -> Encryption | None:
    """The key of the database file, from the settings (env SLOENGINE_DB_ENCRYPTION_KEY)."""
    key = settings.db_encryption_key
    if key is None:
        return None
    return Encryption(key.get_secret_value(), settings.db_encryption_unsafe_mbedtls)


def default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def user_query(settings: Settings, query: str, limit: int | None = None,
               actor: str | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run a query typed by a person on a sandboxed read-only connection (no writes, no
    ATTACH, no file or network access), then record it in the audit trail — refusals too."""
    digest = hashlib.sha256(query.encode()).hexdigest()[:16]
    outcome, problem = "ok", None
    cols: list[str] = []
    rows: list[tuple[Any, ...]] = []
    try:
        with Store(settings.db, sandboxed=True, encryption=db_encryption(settings)) as ro:
            cols, rows = ro.user_query(query, limit)
    except QueryRefused as exc:
        outcome, problem = "refused", exc
    with Engine(settings, actor=actor) as engine:
        engine.audit("sql", f"query:{digest}", outcome,
                     {"query": query, "rows": len(rows), "problem": str(problem or "")})
    if problem is not None:
        raise problem
    return cols, rows
