"""The read side of the Engine façade: forensics (lineage, traces, exemplars), reports and
status pages, API reads and keys (see engine.py)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from sloengine.engine_parts import EngineParts, _unix_ns
from sloengine.errors import ConfigError, QueryRefused, SloEngineError
from sloengine.forensics import (
    Exemplar,
    Story,
    TraceOptions,
    compare,
    exemplars,
    reconstruct,
    story_json,
)
from sloengine.forensics import audit as audit_trail
from sloengine.forensics.lineage import Lineage, lineage
from sloengine.model import SloResult
from sloengine.store import keys as key_store
from sloengine.store.keys import KeyRow
from sloengine.store.sandbox import guarded_query

# compute, alerting (HTTP clients) and report (jinja2) are imported in the methods that use
# them: every Engine, the one `sloengine ingest` builds too, inherits this class.


class ViewsFacade(EngineParts):
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
        from sloengine.report.trace import render_trace_html

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
        from sloengine.compute.exemplars import bad_event_filter

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
        from sloengine.compute.windows import minute_of
        from sloengine.report import render as render_report

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
        from sloengine.compute.history import slo_history
        from sloengine.compute.history import versions as slo_versions_used
        from sloengine.compute.report_doc import AuditHead
        from sloengine.compute.report_doc import document as report_document
        from sloengine.compute.windows import minute_of

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
        from sloengine.alerting import dedup_key, firing
        from sloengine.compute import evaluate_slo
        from sloengine.compute.windows import minute_of

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
        """Alerts pending or firing now in the persisted state machine (times in minutes),
        each with its ``acknowledged`` (alerting/acks.py)."""
        from sloengine.alerting import firing
        from sloengine.alerting.acks import attach as attach_acks

        return attach_acks(self.store, firing(self.store), self.clock())

    def page_html(self, page: str, **context: Any) -> str:
        """One status page (report/pages.py renders it; api/pages.py serves it)."""
        from sloengine.report.pages import render_page

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

    def alerts_view(self, *, states: tuple[str, ...] | None = None, severity: str | None = None,
                    slo: str | None = None, after: str | None = None, limit: int = 50,
                    acknowledged: bool | None = None) -> dict[str, Any]:
        """``sloengine alerts`` with filters and a page of alerts (``next_cursor``); ``states``
        defaults to pending and firing (alerting/listing.py LIVE)."""
        from sloengine.alerting import overview as alerts_overview
        from sloengine.alerting.listing import LIVE, page

        view = alerts_overview(self.store, self.clock())
        view["alerts"], view["next_cursor"] = page(
            self.store, now=self.clock(), states=LIVE if states is None else states,
            severity=severity, slo=slo, after=after, limit=limit, acknowledged=acknowledged)
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
