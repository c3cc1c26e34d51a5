"""The alert state machine, persisted in DuckDB: inactive → pending → firing → resolved.

Evaluations must move forward in time to change state: an evaluation at or before the last
one recorded for an alert (``evaluate --at`` in the past) reports its condition but leaves the
live state alone.

A tier whose condition holds becomes *pending*; once it has held for the tier's ``for``
duration it is *firing*; the first evaluation where it no longer holds *resolves* it (a
pending alert that clears goes back to inactive without a notification). The dedup key is
``slo/objective/group/tier``: one alert per key at a time, as Alertmanager and PagerDuty
expect. Every transition is appended to ``alert_transitions`` in the same transaction as the
evaluation that caused it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import orjson

from sloengine.model import SloResult, TierDecision
from sloengine.store import Store


@dataclass(frozen=True, slots=True)
class Transition:
    dedup_key: str
    eval_minute: int
    from_state: str
    to_state: str
    result: SloResult
    decision: TierDecision


def dedup_key(r: SloResult, tier: str) -> str:
    return f"{r.name}/{r.objective}/{r.group or '-'}/{tier}"


def next_state(state: str, since: int | None, cond: bool, t: int, for_minutes: int
               ) -> tuple[str, int | None]:
    """(new state, pending-since) for one evaluation."""
    if state in ("inactive", "resolved"):
        if not cond:
            return "inactive" if state == "inactive" else "resolved", None
        return ("firing" if for_minutes == 0 else "pending"), t
    if state == "pending":
        if not cond:
            return "inactive", None
        assert since is not None
        return ("firing" if t - since >= for_minutes else "pending"), since
    # firing
    return ("firing", since) if cond else ("resolved", None)


def advance(store: Store, results: list[SloResult], for_minutes: dict[tuple[str, str], int]
            ) -> tuple[list[SloResult], list[Transition]]:
    """Apply one evaluation's decisions; returns results with states filled in and the
    transitions. Call inside the evaluation's transaction."""
    transitions: list[Transition] = []
    out: list[SloResult] = []
    for r in results:
        decisions = []
        for d in r.alerts:
            key = dedup_key(r, d.tier)
            row = store.rows("SELECT state, pending_since, firing_since, last_eval FROM alerts "
                             "WHERE dedup_key = ?", [key])
            state, since, firing_since, last_eval = (
                row[0] if row else ("inactive", None, None, None))
            if last_eval is not None and r.eval_minute <= last_eval:
                # a look back in time (evaluate --at in the past): report the condition
                # without rewriting the live state machine
                past = "firing" if d.condition else "inactive"
                decisions.append(replace(d, state=past))
                continue
            new, new_since = next_state(state, since, d.condition, r.eval_minute,
                                        for_minutes.get((r.name, d.tier), 0))
            if new == "firing" and state != "firing":
                firing_since = r.eval_minute
            detail = orjson.dumps({
                "threshold": d.threshold, "long_burn_rate": d.long_burn_rate,
                "short_burn_rate": d.short_burn_rate, "long_window": d.long_window,
                "short_window": d.short_window, "severity": d.severity}).decode()
            if row or new != "inactive":
                store.exec_(
                    "INSERT OR REPLACE INTO alerts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [key, r.name, r.slo_version, r.objective, r.group, d.tier, d.severity, new,
                     new_since, firing_since if new in ("firing", "resolved") else None,
                     r.eval_minute if new == "resolved" else None, r.eval_minute, detail])
            if new != state and not (state == "resolved" and new == "inactive"):
                store.exec_("INSERT INTO alert_transitions VALUES (?,?,?,?,?,?)",
                            [key, r.eval_minute, state, new, r.slo_version, detail])
                transitions.append(Transition(key, r.eval_minute, state, new, r, d))
            decisions.append(replace(d, state=new))
        out.append(replace(r, alerts=decisions))
    return out, transitions


def firing(store: Store) -> list[dict[str, Any]]:
    cols = ["dedup_key", "slo_name", "objective", "grp", "tier", "severity", "state",
            "pending_since", "firing_since", "last_eval"]
    rows = store.rows(f"SELECT {', '.join(cols)} FROM alerts WHERE state IN "
                      "('pending', 'firing') ORDER BY firing_since, dedup_key")
    return [dict(zip(cols, r, strict=True)) for r in rows]
