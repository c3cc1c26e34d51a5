"""Durations as SLO documents write them: ``30d``, ``6h``, ``5m``, ``90s``, ``1w``, ``1h30m``
(Prometheus style, the form Sloth, OpenSLO and Pyrra use)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"duration must be text like '30d' or '5m', got {value!r}")
    text = value.strip()
    pos, seconds = 0, 0.0
    for m in _PART.finditer(text):
        if m.start() != pos:
            break
        seconds += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"{value!r} is not a duration (use e.g. 30d, 6h, 5m, 90s)")
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be positive")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"duration {value!r} is too long") from None


def format_duration(td: timedelta) -> str:
    """The shortest exact form: 30d, 6h, 90m → 1h30m, 45s."""
    total = int(td.total_seconds())
    if total * 1000 != int(td.total_seconds() * 1000):
        return f"{int(td.total_seconds() * 1000)}ms"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            q, total = divmod(total, size)
            out.append(f"{q}{unit}")
    return "".join(out) or "0s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
