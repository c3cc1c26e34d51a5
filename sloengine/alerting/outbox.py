"""The durable alert outbox (the transactional-outbox pattern) in DuckDB.

``enqueue`` runs inside the evaluation's transaction, right after ``advance``: the alert
state change and its notification commit together or not at all. A delivery pass (delivery.py)
then routes each new notification to its targets (one ``alert_deliveries`` row per target)
and records every outcome as it happens, so a process killed mid-delivery resends only what
was not recorded as delivered: at-least-once, with the idempotency key unchanged.

Notifications: a transition into ``firing`` (from inactive or pending) and ``firing →
resolved``; pending alerts that clear are never notified (state.py). An acknowledgement
(acks.py) adds an ``acknowledged`` notification, routed only to notifiers that understand it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from sloengine.alerting import acks
from sloengine.alerting.config import NotifyConfig
from sloengine.alerting.context import BadEvents, Context, gather
from sloengine.alerting.notice import Notice, from_json, idempotency_key, iso, iso_minute
from sloengine.alerting.payloads import notice_json
from sloengine.alerting.state import Transition, firing
from sloengine.spec.durations import parse_duration
from sloengine.spec.model import SLO, LatencyIndicator
from sloengine.spec.policy import resolve
from sloengine.store import Store

NOTIFY_STATES = ("firing", "resolved")


def enqueue(store: Store, transitions: Sequence[Transition], slo: SLO,
            bad: BadEvents | None, *, now: datetime) -> list[int]:
    """Write one notification per notifiable transition (call inside the transaction that
    advanced the alert state). Returns the new notification ids."""
    tiers = {t.name: t for t in resolve(slo)}
    ids = []
    for tr in transitions:
        if tr.to_state not in NOTIFY_STATES:
            continue
        key = idempotency_key(tr.dedup_key, tr.eval_minute, tr.from_state, tr.to_state)
        if store.one("SELECT count(*) FROM alert_notifications WHERE idempotency_key = ?",
                     [key]):
            continue
        tier = tiers.get(tr.decision.tier)
        ctx = Context()
        if tr.to_state == "firing" and bad is not None:
            short = int(parse_duration(tr.decision.short_window).total_seconds()) // 60
            ctx = gather(store, bad, tr.result.group, tr.eval_minute, short,
                         isinstance(slo.spec.indicator, LatencyIndicator))
        notice = _notice(store, tr, slo, dict(tier.labels) if tier else {}, key, ctx)
        nid = int(store.one("SELECT nextval('alert_notification_seq')"))
        store.exec_(
            "INSERT INTO alert_notifications VALUES (?,?,?,?,?,?,?,?,?,?,?,NULL)",
            [nid, key, tr.dedup_key, tr.eval_minute, tr.from_state, tr.to_state,
             tr.result.name, tr.decision.severity, orjson.dumps(notice.labels).decode(),
             orjson.dumps(notice_json(notice)).decode(), now])
        ids.append(nid)
        if tr.to_state == "firing":  # acknowledged while pending: the ack follows the trigger
            ack_id = acks.after_firing(store, tr.dedup_key, now)
            if ack_id is not None:
                ids.append(ack_id)
    return ids


def _notice(store: Store, tr: Transition, slo: SLO, tier_labels: dict[str, str], key: str,
            ctx: Context) -> Notice:
    r, d, meta = tr.result, tr.decision, slo.metadata
    since = tr.eval_minute
    if tr.to_state == "resolved":
        row = store.one("SELECT firing_since FROM alerts WHERE dedup_key = ?", [tr.dedup_key])
        since = int(row) if row is not None else tr.eval_minute
    labels = {**meta.labels, **tier_labels, "slo": r.name, "service": r.service,
              "objective": r.objective, "severity": d.severity, "alert_tier": d.tier}
    if r.group:
        labels["group"] = r.group
    if meta.team:
        labels["team"] = meta.team
    return Notice(
        idempotency_key=key, dedup_key=tr.dedup_key,
        status="firing" if tr.to_state == "firing" else "resolved",
        from_state=tr.from_state, eval_minute=tr.eval_minute, at=iso_minute(tr.eval_minute),
        starts_at=iso_minute(since),
        ends_at=iso_minute(tr.eval_minute) if tr.to_state == "resolved" else None,
        slo=r.name, slo_version=r.slo_version, service=r.service, objective=r.objective,
        target=r.target, group=r.group, window=r.window, tier=d.tier, severity=d.severity,
        team=meta.team, owner=meta.owner, runbook=meta.runbook,
        description=meta.description, labels=labels, threshold=d.threshold,
        long_window=d.long_window, short_window=d.short_window,
        long_burn_rate=d.long_burn_rate, short_burn_rate=d.short_burn_rate, sli=r.sli,
        good=r.good, total=r.total, budget_remaining_ratio=r.error_budget.remaining_ratio,
        time_to_exhaustion_seconds=r.time_to_exhaustion_seconds,
        top_offenders=ctx.top_offenders, trace_errors=ctx.trace_errors,
        exemplars=ctx.exemplars)


# -- delivery bookkeeping (the delivery pass calls these from its one store thread) ---------

@dataclass(frozen=True, slots=True)
class Due:
    notification_id: int
    notice: Notice
    attempts: int


def route(store: Store, config: NotifyConfig, now: datetime) -> tuple[int, int]:
    """Make delivery rows for notifications not yet routed; returns (routed, no route)."""
    rows = store.rows("SELECT notification_id, labels, to_state FROM alert_notifications "
                      "WHERE routed_at IS NULL ORDER BY notification_id")
    unroutable = 0
    with store.transaction():
        for nid, labels, to_state in rows:
            targets = config.route(orjson.loads(labels))
            if to_state == "acknowledged":  # only to those that understand it (acks.py)
                targets = [t for t in targets if t in config.notifiers
                           and config.notifiers[t].kind in acks.ACK_KINDS]
            else:
                unroutable += not targets
            for t in targets:
                store.exec_("INSERT INTO alert_deliveries VALUES (?, ?, 'pending', 0, NULL, "
                            "NULL, NULL, NULL) ON CONFLICT DO NOTHING", [nid, t])
            store.exec_("UPDATE alert_notifications SET routed_at = ? "
                        "WHERE notification_id = ?", [now, nid])
    return len(rows), unroutable


def due(store: Store, now: datetime, limit: int) -> dict[str, list[Due]]:
    """Pending deliveries per target, oldest first. Each target is a FIFO: while its oldest
    pending notification waits for a retry, the later ones wait too (a resolve never
    overtakes its trigger)."""
    rows = store.rows(
        "SELECT d.target, d.notification_id, n.notice, d.attempts, d.next_attempt_at "
        "FROM alert_deliveries d JOIN alert_notifications n USING (notification_id) "
        "WHERE d.status = 'pending' ORDER BY d.target, d.notification_id")
    out: dict[str, list[Due]] = {}
    blocked: set[str] = set()
    for target, nid, notice, attempts, next_at in rows:
        if target in blocked:
            continue
        items = out.setdefault(target, [])
        if not items and next_at is not None and next_at > now:
            blocked.add(target)
            del out[target]
            continue
        if len(items) < limit:
            items.append(Due(int(nid), from_json(notice), int(attempts)))
    return out


def record(store: Store, target: str, nid: int, outcome: str, attempts: int,
           error: str | None, now: datetime, retry_at: datetime | None) -> None:
    """One delivery outcome: delivered | retry | dead (single statement: atomic)."""
    status = {"delivered": "delivered", "retry": "pending", "dead": "dead"}[outcome]
    store.exec_(
        "UPDATE alert_deliveries SET status = ?, attempts = attempts + ?, "
        "last_attempt_at = CASE WHEN ? > 0 THEN ? ELSE last_attempt_at END, "
        "delivered_at = ?, next_attempt_at = ?, last_error = coalesce(?, last_error) "
        "WHERE notification_id = ? AND target = ?",
        [status, attempts, attempts, now, now if outcome == "delivered" else None, retry_at,
         error, nid, target])


def load_target(store: Store, target: str) -> tuple[int, datetime | None, str | None]:
    rows = store.rows("SELECT consecutive_failures, open_until, last_error FROM alert_targets "
                      "WHERE target = ?", [target])
    return rows[0] if rows else (0, None, None)


def save_target(store: Store, target: str, failures: int, open_until: datetime | None,
                last_error: str | None, success_at: datetime | None, now: datetime) -> None:
    store.exec_(
        "INSERT INTO alert_targets VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (target) DO UPDATE "
        "SET consecutive_failures = excluded.consecutive_failures, "
        "open_until = excluded.open_until, last_error = excluded.last_error, "
        "last_success_at = coalesce(excluded.last_success_at, alert_targets.last_success_at), "
        "updated_at = excluded.updated_at",
        [target, failures, open_until, last_error, success_at, now])


def overview(store: Store, now: datetime) -> dict[str, Any]:
    """Alerts pending and firing, and the outbox as an on-call engineer asks about it: per
    target what is pending, when it is retried, what failed last, whether its circuit is
    open; notifications no route matched; the latest dead deliveries."""
    targets = []
    for row in store.rows(
            "SELECT d.target, count(*) FILTER (d.status = 'pending'), "
            "count(*) FILTER (d.status = 'delivered'), count(*) FILTER (d.status = 'dead'), "
            "min(n.created_at) FILTER (d.status = 'pending'), "
            "min(d.next_attempt_at) FILTER (d.status = 'pending'), "
            "max(d.attempts) FILTER (d.status = 'pending'), "
            "any_value(t.consecutive_failures), any_value(t.open_until), "
            "any_value(t.last_error), any_value(t.last_success_at) "
            "FROM alert_deliveries d JOIN alert_notifications n USING (notification_id) "
            "LEFT JOIN alert_targets t USING (target) GROUP BY d.target ORDER BY d.target"):
        (target, pending, delivered, dead, oldest, next_at, max_attempts, failures,
         open_until, last_error, last_ok) = row
        breaker = "open" if open_until is not None and open_until > now else (
            "half-open" if open_until is not None else "closed")
        targets.append({
            "target": target, "pending": pending, "delivered": delivered, "dead": dead,
            "oldest_pending": _iso(oldest), "next_attempt_at": _iso(next_at),
            "max_attempts": max_attempts, "breaker": breaker,
            "open_until": _iso(open_until), "consecutive_failures": failures or 0,
            "last_error": last_error, "last_success_at": _iso(last_ok)})
    unrouted = store.one("SELECT count(*) FROM alert_notifications WHERE routed_at IS NULL")
    nowhere = store.one(
        "SELECT count(*) FROM alert_notifications n WHERE routed_at IS NOT NULL "
        "AND to_state <> 'acknowledged' AND NOT "
        "EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.notification_id = n.notification_id)")
    dead = [{"notification_id": r[0], "target": r[1], "dedup_key": r[2], "to_state": r[3],
             "attempts": r[4], "last_error": r[5]}
            for r in store.rows(
                "SELECT d.notification_id, d.target, n.dedup_key, n.to_state, d.attempts, "
                "d.last_error FROM alert_deliveries d JOIN alert_notifications n "
                "USING (notification_id) WHERE d.status = 'dead' "
                "ORDER BY d.notification_id DESC LIMIT 20")]
    alerts = [{**a, **{k: None if a[k] is None else iso_minute(a[k])
                       for k in ("pending_since", "firing_since", "last_eval")}}
              for a in firing(store)]
    acks.attach(store, alerts, now)
    return {"alerts": alerts, "targets": targets, "not_routed": int(unrouted),
            "no_route": int(nowhere), "dead": dead}


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else iso(dt.replace(microsecond=0))

