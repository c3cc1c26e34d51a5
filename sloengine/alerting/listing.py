"""Alerts as the API lists them: filtered by state, severity and SLO, a page at a time.

Keyset pagination on the dedup key (``WHERE dedup_key > cursor ORDER BY dedup_key``): a page
stays correct while evaluations change other alerts, unlike an offset. Filter values are
bound parameters, never SQL text. Each alert carries ``acknowledged`` ({by, at, note,
until} or null: acks.py), and ``acknowledged=True|False`` filters on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sloengine.alerting import acks
from sloengine.alerting.notice import iso_minute
from sloengine.store import Store

#: the columns of alerting.state.firing(), so a page has the shape ``sloengine alerts`` prints
_COLS = ["dedup_key", "slo_name", "objective", "grp", "tier", "severity", "state",
         "pending_since", "firing_since", "last_eval"]
#: without a state filter: what is live, as ``sloengine alerts`` shows it
LIVE = ("pending", "firing")


def page(store: Store, *, now: datetime, states: tuple[str, ...] = LIVE,
         severity: str | None = None, slo: str | None = None, after: str | None = None,
         limit: int = 50, acknowledged: bool | None = None
         ) -> tuple[list[dict[str, Any]], str | None]:
    """One page of alerts in dedup-key order and the key to continue after (None: done).
    ``now``: when an ack's ``until`` is compared (a lapsed ack is not in effect)."""
    where = [f"state IN ({', '.join('?' * len(states))})"]
    params: list[Any] = list(states)
    if severity is not None:
        where.append("severity = ?")
        params.append(severity)
    if slo is not None:
        where.append("slo_name = ?")
        params.append(slo)
    if acknowledged is not None:
        where.append(acks.ACKED_SQL if acknowledged else f"NOT {acks.ACKED_SQL}")
        params.append(now)
    if after is not None:
        where.append("dedup_key > ?")
        params.append(after)
    params.append(limit + 1)
    rows = store.rows(f"SELECT {', '.join(_COLS)} FROM alerts a WHERE {' AND '.join(where)} "
                      "ORDER BY dedup_key LIMIT ?", params)
    items = [dict(zip(_COLS, r, strict=True)) for r in rows[:limit]]
    nxt = items[-1]["dedup_key"] if len(rows) > limit and items else None
    for a in items:
        for k in ("pending_since", "firing_since", "last_eval"):
            a[k] = None if a[k] is None else iso_minute(a[k])
    return acks.attach(store, items, now), nxt
