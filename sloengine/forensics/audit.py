"""The audit trail: every engine action and every query by a person appends an entry, and the
entries form a hash chain — each entry's hash covers its content and the previous entry's
hash — so an edited, deleted or reordered entry breaks the chain at a point ``verify`` names.

Truncating the newest entries leaves a valid shorter chain; that is caught against the chain
head, which is kept in ``engine_meta`` and written into every evidence bundle (and can be
passed to ``verify`` from an earlier bundle).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from sloengine.store import Store
from sloengine.store.bulk import insert_rows

GENESIS = "0" * 64
HEAD_KEY = "audit_head"
_COLS = ("seq", "occurred_at", "actor", "action", "object", "outcome", "correlation_id", "detail",
         "prev_hash", "hash")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    object: str
    outcome: str
    correlation_id: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at.isoformat(), "actor": self.actor,
                "action": self.action, "object": self.object, "outcome": self.outcome,
                "correlation_id": self.correlation_id, "detail": self.detail,
                "prev_hash": self.prev_hash, "hash": self.hash}


def entry_hash(seq: int, at: datetime, actor: str, action: str, obj: str, outcome: str,
               correlation_id: str, detail: dict[str, Any], prev_hash: str) -> str:
    """sha256 over the canonical JSON of the entry's content and the previous hash."""
    canon = orjson.dumps(
        [seq, at.isoformat(), actor, action, obj, outcome, correlation_id, detail, prev_hash],
        option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canon).hexdigest()


def append(store: Store, *, at: datetime, actor: str, action: str, obj: str, outcome: str,
           correlation_id: str, detail: dict[str, Any] | None = None) -> AuditEntry:
    """Append one entry (the caller holds the single writer)."""
    detail = detail or {}
    last = store.rows("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    seq, prev = (int(last[0][0]) + 1, str(last[0][1])) if last else (1, GENESIS)
    h = entry_hash(seq, at, actor, action, obj, outcome, correlation_id, detail, prev)
    store.exec_("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?,?)",
                [seq, at, actor, action, obj, outcome, correlation_id,
                 orjson.dumps(detail, option=orjson.OPT_SORT_KEYS).decode(), prev, h])
    store.set_meta(HEAD_KEY, f"{seq}:{h}")
    return AuditEntry(seq, at, actor, action, obj, outcome, correlation_id, detail, prev, h)


def append_many(store: Store, *, at: datetime, actor: str, correlation_id: str,
                entries: list[tuple[str, str, str, dict[str, Any]]]) -> None:
    """Append ``(action, object, outcome, detail)`` entries with one INSERT and one head
    update — the same chain as calling ``append`` for each (the receiver audits every
    request it stores, and per-entry statements cost more than its rows)."""
    if not entries:
        return
    last = store.rows("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    seq, prev = (int(last[0][0]), str(last[0][1])) if last else (0, GENESIS)
    rows = []
    for action, obj, outcome, detail in entries:
        seq += 1
        h = entry_hash(seq, at, actor, action, obj, outcome, correlation_id, detail, prev)
        rows.append([seq, at, actor, action, obj, outcome, correlation_id,
                     orjson.dumps(detail, option=orjson.OPT_SORT_KEYS).decode(), prev, h])
        prev = h
    insert_rows(store, "audit_log", list(_COLS), rows)
    store.set_meta(HEAD_KEY, f"{seq}:{prev}")


def entries(store: Store, at_from: datetime | None = None, at_to: datetime | None = None
            ) -> list[AuditEntry]:
    where, params = [], []
    if at_from is not None:
        where.append("occurred_at >= ?")
        params.append(at_from)
    if at_to is not None:
        where.append("occurred_at < ?")
        params.append(at_to)
    sql = f"SELECT {', '.join(_COLS)} FROM audit_log"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = store.rows(sql + " ORDER BY seq", params)
    return [AuditEntry(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], orjson.loads(r[7]),
                       r[8], r[9]) for r in rows]


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    entries: int
    head: str | None
    first_bad_seq: int | None = None
    problem: str | None = None


def verify_chain(items: list[AuditEntry], *, expected_head: str | None = None,
                 start_prev: str = GENESIS, start_seq: int = 1) -> Verdict:
    """Walk the chain in storage order. An edited entry fails its own hash; a deleted one
    leaves a gap in seq or a prev_hash that does not match; a reordered one breaks seq order
    and the links; a truncated tail no longer reaches the recorded head."""
    prev, want_seq = start_prev, start_seq
    for e in items:
        if e.seq != want_seq:
            kind = "missing (deleted?)" if e.seq > want_seq else "out of order (reordered?)"
            return Verdict(False, len(items), None, want_seq if e.seq > want_seq else e.seq,
                           f"entry {want_seq} is {kind}: found seq {e.seq} where {want_seq} "
                           "belongs")
        if e.prev_hash != prev:
            return Verdict(False, len(items), None, e.seq,
                           f"entry {e.seq} does not link to the entry before it")
        h = entry_hash(e.seq, e.at, e.actor, e.action, e.object, e.outcome, e.correlation_id,
                       e.detail, e.prev_hash)
        if h != e.hash:
            return Verdict(False, len(items), None, e.seq,
                           f"entry {e.seq} was altered: its content does not match its hash")
        prev, want_seq = e.hash, e.seq + 1
    head = f"{want_seq - 1}:{prev}" if items else None
    if expected_head is not None and head != expected_head:
        exp_seq = int(expected_head.split(":", 1)[0])
        if head is None or exp_seq > want_seq - 1:
            return Verdict(False, len(items), head, want_seq,
                           f"the chain ends at entry {want_seq - 1} but the recorded head is "
                           f"entry {exp_seq}: newest entries were removed")
        return Verdict(False, len(items), head, exp_seq,
                       "the chain does not pass through the recorded head")
    return Verdict(True, len(items), head)


def verify(store: Store, expected_head: str | None = None) -> Verdict:
    """Verify the whole trail against the head kept in the database (or one given)."""
    head = expected_head or store.meta(HEAD_KEY)
    return verify_chain(entries(store), expected_head=head)
