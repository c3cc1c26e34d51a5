"""Chart geometry for inline SVG (no JavaScript): time axes in UTC, "nice" value ticks, paths
with gaps where there is no data, alert bars on the same time axis. The templates draw what
these dataclasses describe; coordinates are rounded here because this is rendering
(ARCHITECTURE.md rule 7)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

WIDTH, HEIGHT = 960, 260
LEFT, RIGHT, TOP, BOTTOM = 68, 44, 18, 38
PALETTE = ("#2563eb", "#9333ea", "#0891b2", "#ea580c", "#16a34a", "#db2777", "#4f46e5",
           "#65a30d")
#: time-axis tick spacings (minutes) and how a tick is labelled
_TIME_STEPS = ((60, "%H:%M"), (180, "%H:%M"), (360, "%H:%M"), (720, "%b %d %H:%M"),
               (1440, "%b %d"), (2880, "%b %d"), (10080, "%b %d"), (20160, "%b %d"))


@dataclass(frozen=True, slots=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    color: str
    path: str
    width: float = 2.0
    opacity: float = 1.0
    dash: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    """A horizontal reference line (target, zero budget)."""

    y: float
    label: str
    css: str


@dataclass(frozen=True, slots=True)
class Band:
    """A shaded time range behind the lines (a firing alert, a correction)."""

    x: float
    w: float
    css: str
    title: str


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    w: float
    css: str
    title: str


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    y: float
    bars: list[Bar]


@dataclass(slots=True)
class Chart:
    title: str
    y_title: str = ""
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    right: int = WIDTH - RIGHT
    bottom: int = HEIGHT - BOTTOM
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    bands: list[Band] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    empty: str | None = None  # why there is nothing to draw


def minute(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()) // 60


class TimeScale:
    def __init__(self, t0: int, t1: int, left: float, right: float) -> None:
        self.t0, self.t1 = t0, max(t1, t0 + 1)
        self.left, self.right = left, right

    def x(self, t: float) -> float:
        return self.left + (t - self.t0) / (self.t1 - self.t0) * (self.right - self.left)

    def ticks(self, max_ticks: int = 9) -> list[Tick]:
        span = self.t1 - self.t0
        step, fmt = next(((s, f) for s, f in _TIME_STEPS if span / s <= max_ticks),
                         _TIME_STEPS[-1])
        # day-or-longer ticks at UTC midnight; weekly ones on Mondays (1970-01-05 was one)
        base = 4 * 1440 if step >= 10080 else 0
        first = -(-(self.t0 - base) // step) * step + base
        return [Tick(round(self.x(t), 1),
                     datetime.fromtimestamp(t * 60, UTC).strftime(fmt))
                for t in range(first, self.t1 + 1, step)]


def nice_step(span: float, n: int = 5) -> float:
    raw = span / max(n, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    return next(float(m * mag) for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def _decimals(step: float) -> int:
    return max(0, -math.floor(math.log10(step) + 1e-9))


class ValueScale:
    """Linear y scale over [lo, hi] widened to nice ticks; labels as percentages."""

    def __init__(self, lo: float, hi: float, top: float, bottom: float, n: int = 5) -> None:
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5 * max(abs(lo), 1e-3), hi + 0.5 * max(abs(hi), 1e-3)
        self.step = nice_step(hi - lo, n)
        self.lo = math.floor(lo / self.step + 1e-9) * self.step
        self.hi = math.ceil(hi / self.step - 1e-9) * self.step
        self.top, self.bottom = top, bottom

    def y(self, v: float) -> float:
        return self.bottom - (v - self.lo) / (self.hi - self.lo) * (self.bottom - self.top)

    def ticks(self) -> list[Tick]:
        d = _decimals(self.step * 100)
        n = round((self.hi - self.lo) / self.step)
        return [Tick(round(self.y(self.lo + i * self.step), 1),
                     f"{(self.lo + i * self.step) * 100:.{d}f}%") for i in range(n + 1)]


def path(points: Sequence[tuple[int, float | None]], xs: TimeScale, ys: ValueScale) -> str:
    """An SVG path; a ``None`` value lifts the pen (no data is a gap, not a zero)."""
    out, pen = [], False
    for t, v in points:
        if v is None:
            pen = False
            continue
        out.append(f"{'L' if pen else 'M'}{xs.x(t):.1f},{ys.y(v):.1f}")
        pen = True
    return " ".join(out)


def line_chart(title: str, y_title: str, t0: int, t1: int,
               series: Sequence[tuple[str, Sequence[tuple[int, float | None]]]],
               *, include: Sequence[float] = (), clamp_top: float | None = None,
               thin: Sequence[tuple[str, Sequence[tuple[int, float | None]]]] = (),
               ) -> tuple[Chart, TimeScale, ValueScale | None]:
    """``series``: (label, [(minute, value | None)]); ``thin``: lighter companion lines."""
    c = Chart(title, y_title)
    xs = TimeScale(t0, t1, c.left, c.right)
    c.x_ticks = xs.ticks()
    values = [v for _, pts in (*series, *thin) for _, v in pts if v is not None]
    if not values:
        c.empty = "no data in this period"
        return c, xs, None
    lo, hi = min([*values, *include]), max([*values, *include])
    if clamp_top is not None:
        hi = min(hi, clamp_top)
    ys = ValueScale(lo, hi, c.top, c.bottom)
    c.y_ticks = ys.ticks()
    for i, (label, pts) in enumerate(thin):
        c.lines.append(Line(label, PALETTE[i % len(PALETTE)], path(pts, xs, ys), 1.0, 0.45))
    for i, (label, pts) in enumerate(series):
        c.lines.append(Line(label, PALETTE[i % len(PALETTE)], path(pts, xs, ys)))
    return c, xs, ys


def timeline(title: str, t0: int, t1: int, rows: Sequence[tuple[str, Sequence[
        tuple[int, int | None, int | None, str, str]]]]) -> Chart:
    """Alert bars: per row (label, [(pending, firing, resolved, severity, title)]); a bar
    is drawn at least 3 px wide so that a one-minute alert stays visible."""
    row_h = 26
    height = TOP + BOTTOM + row_h * max(len(rows), 1)
    # room for the longest row label (about 6.5 px a character at 11 px)
    left = min(max(150, int(6.5 * max((len(label) for label, _ in rows), default=0)) + 16), 360)
    c = Chart(title, height=height, left=left, bottom=height - BOTTOM)
    xs = TimeScale(t0, t1, c.left, c.right)
    c.x_ticks = xs.ticks()
    for i, (label, items) in enumerate(rows):
        bars = []
        for pending, firing, resolved, severity, tip in items:
            end = resolved if resolved is not None else t1
            if firing is None or firing > pending:
                stop = firing if firing is not None else end
                x0 = xs.x(pending)
                bars.append(Bar(round(x0, 1), round(max(xs.x(stop) - x0, 3.0), 1),
                                "pending", tip))
            if firing is not None:
                x0 = xs.x(firing)
                bars.append(Bar(round(x0, 1), round(max(xs.x(end) - x0, 3.0), 1),
                                f"firing {severity}", tip))
        c.rows.append(Row(label, c.top + row_h * i + 4, bars))
    if not rows:
        c.empty = "no alert tiers"
    return c
