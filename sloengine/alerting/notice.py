"""What an alert tells the on-call engineer, as one value written to the outbox.

A ``Notice`` is built once, inside the evaluation's transaction, from the transition, the SLO
definition and the alert context (top offenders, exemplars: context.py). Every notifier
renders from it, so Slack, PagerDuty, Alertmanager and a webhook say the same thing.

Numbers are kept exact here (ARCHITECTURE.md rule 7); ``summary``/``details`` round them for
people. The idempotency key is derived from the alert's dedup key and the transition, so a
notification sent twice (at-least-once delivery) carries the same key both times.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from pydantic import TypeAdapter

#: The command printed next to each exemplar (forensics: ``sloengine trace``).
TRACE_COMMAND = "sloengine trace {id}"
SCHEMA = "sloengine.alert/v1"


@dataclass(frozen=True, slots=True)
class Offender:
    """Bad events (or failing spans) of one service and route in the short window."""

    service: str
    route: str
    bad: int


@dataclass(frozen=True, slots=True)
class Exemplar:
    """One bad event of the SLI, with the command that reconstructs its request."""

    id: str  # the correlation id, or the trace id when the request had none
    trace_id: str | None
    service: str | None
    route: str | None
    time: str
    duration_ms: float | None
    command: str


@dataclass(frozen=True, slots=True)
class Notice:
    idempotency_key: str
    dedup_key: str
    status: Literal["firing", "resolved", "acknowledged"]  # acknowledged: acks.py
    from_state: str
    eval_minute: int
    at: str  # the evaluation time (ISO 8601, UTC)
    starts_at: str  # when the alert started firing
    ends_at: str | None  # when it resolved (resolved notices only)
    slo: str
    slo_version: str
    service: str
    objective: str
    target: float
    group: str
    window: str
    tier: str
    severity: str
    team: str | None
    owner: str | None
    runbook: str | None
    description: str | None
    labels: dict[str, str]
    threshold: float
    long_window: str
    short_window: str
    long_burn_rate: float | None
    short_burn_rate: float | None
    sli: float | None
    good: float
    total: float
    budget_remaining_ratio: float | None
    time_to_exhaustion_seconds: float | None
    top_offenders: tuple[Offender, ...] = ()
    trace_errors: tuple[Offender, ...] = ()
    exemplars: tuple[Exemplar, ...] = ()
    schema: str = field(default=SCHEMA)


NOTICE = TypeAdapter(Notice)


def idempotency_key(dedup_key: str, eval_minute: int, from_state: str, to_state: str) -> str:
    """Stable across retries and restarts: one key per (alert, transition)."""
    raw = f"{dedup_key}\n{eval_minute}\n{from_state}\n{to_state}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def iso_minute(minute: int) -> str:
    return iso(datetime.fromtimestamp(minute * 60, UTC))


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def from_json(data: bytes | str) -> Notice:
    return NOTICE.validate_json(data)


# -- rendering for people (rounding happens here, nowhere else) ---------------------------

def rate(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1f}×"


def percent(v: float | None, digits: int = 1) -> str:
    return "n/a" if v is None else f"{v * 100:.{digits}f}%"


def span_of(seconds: float | None) -> str:
    """Time to exhaustion as people read it."""
    if seconds is None:
        return "not burning"
    if seconds <= 0:
        return "exhausted"
    mins = int(seconds // 60)
    d, rem = divmod(mins, 1440)
    h, m = divmod(rem, 60)
    if d:
        return f"{d}d {h}h"
    return f"{h}h {m}m" if h else f"{m}m"


def title(n: Notice) -> str:
    grp = f" [{n.group}]" if n.group else ""
    return f"{n.status.upper()} {n.severity}: {n.slo} {n.objective}{grp} ({n.tier})"


def summary(n: Notice) -> str:
    """One line: what fired and how hard."""
    burn = (f"burn {rate(n.long_burn_rate)} over {n.long_window} and "
            f"{rate(n.short_burn_rate)} over {n.short_window}")
    if n.status == "resolved":
        return f"{title(n)}: resolved, {burn} (threshold {rate(n.threshold)})"
    return f"{title(n)}: {burn} > {rate(n.threshold)}; {budget(n)}"


def budget(n: Notice) -> str:
    """``budget left 40.0%, exhausted in 3h 20m`` / ``budget left -79.5% (exhausted)``."""
    left = f"budget left {percent(n.budget_remaining_ratio)}"
    ttl = n.time_to_exhaustion_seconds
    if ttl is None:
        return f"{left}, not burning"
    return f"{left} (exhausted)" if ttl <= 0 else f"{left}, exhausted in {span_of(ttl)}"


def offender_text(items: tuple[Offender, ...]) -> str:
    return ", ".join(f"{o.service} {o.route} ({o.bad})" for o in items) or "none found"


def details(n: Notice) -> list[str]:
    """The lines every text notifier shows, in the order an on-call engineer reads them."""
    who = ", ".join(x for x in (f"team {n.team}" if n.team else "", n.owner or "") if x)
    lines = [
        f"SLO {n.slo} objective {n.objective} (target {percent(n.target, 3)}, {n.window}), "
        f"service {n.service}" + (f", {who}" if who else ""),
        f"Tier {n.tier} ({n.severity}): burn rate {rate(n.long_burn_rate)} over "
        f"{n.long_window} and {rate(n.short_burn_rate)} over {n.short_window}, threshold "
        f"{rate(n.threshold)}",
        f"Error {budget(n)}; SLI {percent(n.sli, 3)} ({n.good:g} good of {n.total:g})",
    ]
    if n.status == "firing":
        lines.append(f"Top offenders ({n.short_window}): {offender_text(n.top_offenders)}")
        if n.trace_errors:
            lines.append(f"Failing spans in those traces: {offender_text(n.trace_errors)}")
        for e in n.exemplars:
            lines.append(f"Exemplar {e.time} {e.route or ''}: {e.command}")
    else:
        lines.append(f"Resolved at {n.ends_at} (firing since {n.starts_at})")
    if n.runbook:
        lines.append(f"Runbook: {n.runbook}")
    return lines
