"""The one façade that wires the stages (ARCHITECTURE.md). Front doors (CLI, API, scheduler)
build an Engine from Settings and a clock, call it, and format what it returns.

The class is assembled from parts to keep modules small: the ingest side
(engine_ingest.py), the read side — forensics, reports, pages, API reads, keys —
(engine_views.py), and here the SLO side (load, materialise, evaluate, alerts, replay,
retention) and the audit trail."""

from __future__ import annotations

import getpass
import hashlib
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from sloengine.engine_ingest import DecodedRequest as DecodedRequest
from sloengine.engine_ingest import IngestFacade
from sloengine.engine_parts import Clock, _unix_ns
from sloengine.engine_receive import ReceivedRequest as ReceivedRequest
from sloengine.engine_views import ViewsFacade
from sloengine.errors import ConfigError, QueryRefused
from sloengine.forensics import audit as audit_trail
from sloengine.ingest import (
    DecodePool,
    ReadOptions,
)
from sloengine.model import SloResult
from sloengine.settings import Settings
from sloengine.sources import PrometheusSource
from sloengine.store import Store
from sloengine.store.crypt import Encryption
from sloengine.store.keys import KeyRow as KeyRow  # re-exported for the front doors

# The SLO side (spec, compute, alerting with its HTTP clients) is imported in the methods that
# use it: `sloengine ingest` builds an Engine too and should not pay for it at start-up.
if TYPE_CHECKING:
    from sloengine.alerting import (
        BadEvents,
        DeliveryReport,
        Notifier,
        NotifyConfig,
        Transition,
    )
    from sloengine.compute import Incident
    from sloengine.compute.pulled import PullReport
    from sloengine.spec import LoadedSLO, LoadResult


def system_clock() -> datetime:
    return datetime.now().astimezone()


class Engine(IngestFacade, ViewsFacade):
    """Owns the Store (the single DuckDB writer); ingests, evaluates, alerts, explains."""

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
                                    encryption=db_encryption(settings),
                                    checkpoint_threshold=settings.db_checkpoint_threshold)
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
        from sloengine.forensics import evidence

        result = evidence.export(self.store, t_from, t_to, out, self.settings.reports_dir)
        self.audit("audit.export", str(out), "ok",
                   {"from": t_from.isoformat(), "to": t_to.isoformat(),
                    "entries": result["entries"], "head": result["head"]})
        return result

    def load_slos(self, paths: Iterable[Path] | None = None, *, record: bool = True
                  ) -> LoadResult:
        """Load and validate SLO documents (default: settings.slo_dir); record new versions."""
        from sloengine.spec import load_paths

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
        from sloengine.compute.windows import minute_of

        return self._pull(self._selected(slo), minute_of(at or self.clock()))

    def _pull(self, slos: list[LoadedSLO], t: int, since: int | None = None
              ) -> list[PullReport]:
        from sloengine.compute.pulled import is_pulled, needed_range, pull_slo

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
        from sloengine.compute.pulled import mark_unavailable, unavailable

        return mark_unavailable(results) if unavailable(self.store, s.slo, t) else results

    def materialize(self, slos: list[LoadedSLO]) -> list[dict[str, Any]]:
        from sloengine.compute import materialize_many

        return materialize_many(self.store, [s.slo for s in slos],
                                lateness_minutes=self.settings.lateness_minutes,
                                now=self.clock())

    def evaluate(self, at: datetime | None = None, slo: str | None = None
                 ) -> list[SloResult]:
        """Evaluate every (or one) SLO at ``at`` (default: now, floored to the minute),
        advance the persisted alert state machine and record the evaluations."""
        from sloengine.compute import evaluate_slos
        from sloengine.compute.windows import minute_of

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
        from sloengine.alerting import advance, enqueue
        from sloengine.compute import evaluate_slos
        from sloengine.compute.pulled import mark_unavailable, unavailable
        from sloengine.spec import resolve

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
        from sloengine.alerting import NotifyConfig, load_notify_config

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
        from sloengine.compute import replay_slos
        from sloengine.compute.windows import minute_of

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
        from sloengine.alerting import NotifyConfig, deliver_pass, load_notify_config

        cfg = config if isinstance(config, NotifyConfig) else load_notify_config(config)
        report = deliver_pass(self.store, cfg, clock=self.clock, notifiers=notifiers)
        if report.attempts:
            self.audit("alert.deliver", "outbox", "ok" if report.ok else "partial",
                       report.to_json())
        return report

    def ack_alert(self, dedup_key: str, note: str | None = None,
                  until: datetime | None = None) -> dict[str, Any]:
        """Acknowledge the alert's current episode (``sloengine.alert-ack/v1``; audited
        ``alert.ack``; alerting/acks.py says what is sent and why)."""
        from sloengine.alerting import acks as alert_acks

        return alert_acks.ack(self.store, dedup_key, actor=self.actor, now=self.clock(),
                              note=note, until=until, audit=self.audit)

    def unack_alert(self, dedup_key: str) -> dict[str, Any]:
        """Take back the ack of the alert's current episode (audited ``alert.unack``)."""
        from sloengine.alerting import acks as alert_acks

        return alert_acks.unack(self.store, dedup_key, actor=self.actor, now=self.clock(),
                                audit=self.audit)

    def replay(self, t_from: datetime, t_to: datetime, step_minutes: int = 1,
               slo: str | None = None, incidents: list[Incident] | None = None
               ) -> dict[str, Any]:
        """Backtest: the alert timeline over history and, for known incidents, detection
        and reset times, missed incidents and false alerts."""
        from sloengine.compute import replay_slos, score
        from sloengine.compute.windows import minute_of

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
        from sloengine.compute import Incident
        from sloengine.compute.windows import minute_of

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



def _bad_events(s: LoadedSLO) -> BadEvents | None:
    """The SLI's bad events as SQL for alert context (compute compiles, alerting queries);
    None for metric and PromQL SLIs, which have no individual events."""
    from sloengine.alerting import BadEvents
    from sloengine.compute.exemplars import bad_event_filter
    from sloengine.compute.filters import group_expr

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
