"""Period boundaries (rolling and calendar-aligned, DST-aware) and corrections as excluded
minute ranges (SLO-MATH.md "Windows")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sloengine.errors import ConfigError
from sloengine.spec.model import Correction, Window


def minute_of(dt: datetime) -> int:
    return int(dt.timestamp()) // 60


def at_minute(m: int) -> datetime:
    return datetime.fromtimestamp(m * 60, UTC)


def period_start(window: Window, t_min: int) -> int:
    """First minute of the period that evaluation time ``t_min`` (a minute boundary, the
    window being the minutes before it) falls in. Rolling: t − P; calendar: the start of the
    week (Monday) / month / quarter in the window's time zone holding the last minute."""
    if window.rolling is not None:
        return t_min - int(window.rolling.total_seconds()) // 60
    tz = ZoneInfo(window.time_zone)
    local = at_minute(t_min - 1).astimezone(tz)
    if window.calendar == "week":
        start = (local - timedelta(days=local.weekday())).replace(
            hour=0, minute=0, second=0, microsecond=0)
    elif window.calendar == "month":
        start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    else:
        q_month = 3 * ((local.month - 1) // 3) + 1
        start = local.replace(month=q_month, day=1, hour=0, minute=0, second=0, microsecond=0)
    # re-attach the zone so DST offsets are right at the boundary
    start = datetime(start.year, start.month, start.day, tzinfo=tz)
    return minute_of(start)


def period_end(window: Window, t_min: int) -> int:
    """The minute after the period ends (rolling: t itself; calendar: the next boundary)."""
    if window.rolling is not None:
        return t_min
    tz = ZoneInfo(window.time_zone)
    start = at_minute(period_start(window, t_min)).astimezone(tz)
    if window.calendar == "week":
        nxt = start + timedelta(days=7)
    elif window.calendar == "month":
        nxt = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    else:
        m = start.month + 3
        nxt = start.replace(year=start.year + (m - 1) // 12, month=(m - 1) % 12 + 1)
    return minute_of(datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz))


def _to_dt(v: Any, where: str) -> datetime:
    if isinstance(v, datetime):
        dt = v
    elif isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"{v!r} is not an ISO 8601 time", where=where) from None
    else:
        raise ConfigError(f"{v!r} is not an ISO 8601 time", where=where)
    if dt.tzinfo is None:
        raise ConfigError(f"{v!r} has no time zone", where=where)
    return dt


def excluded_ranges(corrections: list[Correction], lo_min: int, hi_min: int
                    ) -> list[tuple[int, int]]:
    """Minute ranges [a, b) inside [lo, hi) that corrections take out of the budget."""
    out: list[tuple[int, int]] = []
    for i, c in enumerate(corrections):
        where = f"corrections[{i}]"
        start = _to_dt(c.start, where)
        length = (_to_dt(c.end, where) - start) if c.end is not None else c.duration
        assert length is not None
        step = {"daily": timedelta(days=1), "weekly": timedelta(days=7), None: None}[c.repeat]
        until = _to_dt(c.until, where) if c.until is not None else None
        t = start
        while True:
            a, b = minute_of(t), minute_of(t + length)
            if a >= hi_min or (until is not None and t >= until):
                break
            if b > lo_min:
                out.append((max(a, lo_min), min(b, hi_min)))
            if step is None:
                break
            t += step
    out.sort()
    merged: list[tuple[int, int]] = []
    for a, b in out:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged
