"""Acknowledgements: an on-call engineer says "I have this one" for an alert's current episode.

Why a table of its own (store migration 011): the state machine (state.py) rewrites the
``alerts`` row on every evaluation. An *episode* is one run of an alert from the minute it went
pending (or firing directly) to its resolve; ``alerts.pending_since`` holds that minute for as
long as the alert is pending or firing, so an ack row keyed on (dedup_key, episode_since)
applies exactly while that episode lasts. When the alert resolves and later fires again the
new episode has a new ``pending_since``: it is not acknowledged.

Rules:
* Only a pending or firing alert can be acknowledged; anything else is ``AlertNotFound``
  ("no firing alert with that key"; the API answers 404).
* Idempotent, first ack wins: acking an alert that already has an ack in effect keeps the
  first one (who took it and when is the record; a second caller cannot rewrite the note) and
  says so (``already_acknowledged``). To change the note: unack, then ack again.
* ``until``: the ack lapses at that time (the alert shows unacknowledged again, nothing is
  sent). ``note``: at most ``MAX_NOTE`` characters.
* Unack stamps ``unacked_at``/``unacked_by`` (rows are never deleted: the history stays).

Delivery: an ack of a firing alert enqueues one "acknowledged" notification in the outbox, in
the same transaction as the ack row, built from the episode's firing notice (same dedup key
and labels, so the same routes match). ``outbox.route`` gives it only to notifiers whose kind
is in ``ACK_KINDS``:
* PagerDuty: Events API v2 ``event_action: acknowledge`` with the same ``dedup_key``.
* Alertmanager: nothing — it has silences, not acks; an ack is not a silence (it must not hide
  the alert from others' routes, and it ends with the episode).
* Slack, webhook, console, file: nothing — their wire shape ``sloengine.alert/v1`` has
  ``status`` firing|resolved, and receivers that switch on it must not meet a third value
  inside v1.
Per target the outbox is a FIFO by notification id (outbox.due), and the ack's id is larger
than its trigger's, so an ack never overtakes its trigger and a later resolve never overtakes
the ack. An alert acked while still pending gets its acknowledge right after its trigger
(``after_firing``, called by outbox.enqueue). Unack and an expired ``until`` send nothing:
PagerDuty has no un-acknowledge event (its incidents' own ack timeout re-triggers them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from sloengine.alerting.notice import from_json, idempotency_key, iso
from sloengine.alerting.payloads import notice_json
from sloengine.errors import ConfigError, TerminalError
from sloengine.store import Store

#: notifier kinds (config.py) that understand an acknowledgement (see the module docstring)
ACK_KINDS = frozenset({"pagerduty"})
MAX_NOTE = 500
SCHEMA = "sloengine.alert-ack/v1"
_LIVE = ("pending", "firing")

#: an ``alerts`` row ``a`` whose current episode has an ack in effect at the bound time
ACKED_SQL = ("EXISTS (SELECT 1 FROM alert_acks k WHERE k.dedup_key = a.dedup_key "
             "AND k.episode_since = a.pending_since AND a.state IN ('pending', 'firing') "
             "AND k.unacked_at IS NULL AND (k.until IS NULL OR k.until > ?))")

Audit = Callable[[str, str, str, "dict[str, Any] | None"], None]


class AlertNotFound(TerminalError):
    """No pending or firing alert has that dedup key (the API answers 404)."""


@dataclass(frozen=True, slots=True)
class Ack:
    by: str
    at: datetime
    note: str | None
    until: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"by": self.by, "at": _iso(self.at), "note": self.note,
                "until": None if self.until is None else _iso(self.until)}


def active(store: Store, now: datetime) -> dict[str, Ack]:
    """The ack in effect of every pending or firing alert that has one, by dedup key."""
    rows = store.rows(
        "SELECT a.dedup_key, k.acked_by, k.acked_at, k.note, k.until FROM alerts a "
        "JOIN alert_acks k ON k.dedup_key = a.dedup_key AND k.episode_since = a.pending_since "
        "WHERE a.state IN ('pending', 'firing') AND k.unacked_at IS NULL "
        "AND (k.until IS NULL OR k.until > ?)", [now])
    return {str(r[0]): Ack(str(r[1]), r[2], r[3], r[4]) for r in rows}


def attach(store: Store, alerts: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Each alert dict with ``acknowledged``: {by, at, note, until} or None."""
    acks = active(store, now)
    for a in alerts:
        ack = acks.get(a["dedup_key"])
        a["acknowledged"] = None if ack is None else ack.to_json()
    return alerts


def ack(store: Store, key: str, *, actor: str, now: datetime, note: str | None,
        until: datetime | None, audit: Audit) -> dict[str, Any]:
    """Acknowledge the current episode of alert ``key`` (``sloengine.alert-ack/v1``)."""
    try:
        if note is not None and len(note) > MAX_NOTE:
            raise ConfigError(f"note: at most {MAX_NOTE} characters (got {len(note)})")
        if until is not None and until <= now:
            raise ConfigError(f"until: {_iso(until)} is not in the future")
        state, episode, firing_since = _live(store, key)
    except TerminalError as exc:
        audit("alert.ack", key, "error", {"problem": str(exc)})
        raise
    with store.transaction():
        held = active(store, now).get(key)
        if held is not None:
            audit("alert.ack", key, "ok", {"already_acknowledged": True, "by": held.by})
            return _doc(key, state, held, already=True)
        store.exec_("INSERT INTO alert_acks VALUES (nextval('alert_ack_seq'), ?, ?, ?, ?, ?, "
                    "?, NULL, NULL)", [key, episode, actor, now, note, until])
        sent = _enqueue(store, key, firing_since, now) if state == "firing" else None
        made = Ack(actor, now, note, until)
        audit("alert.ack", key, "ok", {"episode_since": episode, "note": note,
                                       "until": made.to_json()["until"],
                                       "notification_id": sent})
    return _doc(key, state, made, already=False)


def unack(store: Store, key: str, *, actor: str, now: datetime, audit: Audit
          ) -> dict[str, Any]:
    """Take back the ack in effect (none: nothing changes, ``removed`` is false)."""
    try:
        state, episode, _ = _live(store, key)
    except TerminalError as exc:
        audit("alert.unack", key, "error", {"problem": str(exc)})
        raise
    with store.transaction():
        held = active(store, now).get(key)
        if held is not None:
            store.exec_("UPDATE alert_acks SET unacked_by = ?, unacked_at = ? "
                        "WHERE dedup_key = ? AND episode_since = ? AND unacked_at IS NULL "
                        "AND (until IS NULL OR until > ?)", [actor, now, key, episode, now])
        audit("alert.unack", key, "ok", {"removed": held is not None,
                                         "acked_by": held.by if held else None})
    return {"schema": SCHEMA, "dedup_key": key, "state": state, "acknowledged": None,
            "removed": held is not None}


def after_firing(store: Store, key: str, now: datetime) -> int | None:
    """An alert that was acknowledged while pending has just fired (outbox.enqueue, inside
    the evaluation's transaction): queue its acknowledge right behind the trigger."""
    if key not in active(store, now):
        return None
    rows = store.rows("SELECT firing_since FROM alerts WHERE dedup_key = ?", [key])
    return _enqueue(store, key, int(rows[0][0]), now) if rows and rows[0][0] is not None else None


def _live(store: Store, key: str) -> tuple[str, int, int | None]:
    rows = store.rows("SELECT state, pending_since, firing_since FROM alerts "
                      "WHERE dedup_key = ?", [key])
    if not rows or rows[0][0] not in _LIVE or rows[0][1] is None:
        raise AlertNotFound(f"no firing alert with the key {key!r}")
    state, episode, firing_since = rows[0]
    return str(state), int(episode), None if firing_since is None else int(firing_since)


def _enqueue(store: Store, key: str, firing_since: int | None, now: datetime) -> int | None:
    """One "acknowledged" notification per episode, from the episode's firing notice."""
    if firing_since is None:
        return None
    trigger = store.rows("SELECT notice, labels, slo_name, severity FROM alert_notifications "
                         "WHERE dedup_key = ? AND to_state = 'firing' AND eval_minute = ? "
                         "ORDER BY notification_id DESC LIMIT 1", [key, firing_since])
    if not trigger:
        return None  # fired without a notification (never expected): nothing to acknowledge
    raw, labels, slo_name, severity = trigger[0]
    ikey = idempotency_key(key, firing_since, "firing", "acknowledged")
    if store.one("SELECT count(*) FROM alert_notifications WHERE idempotency_key = ?",
                 [ikey]):
        return None  # acked, unacked and acked again: the receiver has the first one
    notice = dataclasses.replace(from_json(raw), idempotency_key=ikey, status="acknowledged",
                                 from_state="firing", at=_iso(now))
    nid = int(store.one("SELECT nextval('alert_notification_seq')"))
    minute = int(now.timestamp()) // 60
    store.exec_("INSERT INTO alert_notifications VALUES (?,?,?,?,?,?,?,?,?,?,?,NULL)",
                [nid, ikey, key, minute, "firing", "acknowledged", slo_name, severity,
                 labels, orjson.dumps(notice_json(notice)).decode(), now])
    return nid


def _doc(key: str, state: str, held: Ack, *, already: bool) -> dict[str, Any]:
    return {"schema": SCHEMA, "dedup_key": key, "state": state,
            "acknowledged": held.to_json(), "already_acknowledged": already}


def _iso(dt: datetime) -> str:
    return iso(dt.replace(microsecond=0))
