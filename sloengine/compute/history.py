"""An SLO's history over a report period, read through the store (the data of ``report/``).

Per SLO: the series of ``series.py`` at a coarse step (hourly by default: one query) turned
into SLI and error-budget points by the same ``results_for_row`` that ``evaluate`` uses, plus
the events of each step; the state at the period's end (``evaluate_slo``); the alert
timeline (``replay_slo`` at a 1-minute step, so it agrees with ``replay``); the corrections
that took minutes out of the budget; and the bad events' top contributors (contributors.py).

Minutes are unix minutes; an evaluation at ``t`` covers the minutes before ``t`` (SLO-MATH.md
"Windows"), so the step point at ``t`` holds the events of ``[t − step, t)``. No rounding here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sloengine.compute.contributors import Contributors, contributors
from sloengine.compute.evaluate import evaluate_slo, results_for_row
from sloengine.compute.replay import AlertInterval, replay_slo
from sloengine.compute.series import series_sql
from sloengine.compute.windows import excluded_ranges
from sloengine.model import SloResult
from sloengine.spec.durations import format_duration
from sloengine.spec.loader import LoadedSLO
from sloengine.store import Store


@dataclass(frozen=True, slots=True)
class Point:
    """One evaluation time: the SLO-window SLI and budget, and the events of the step."""

    t: int
    status: str
    sli: float | None
    remaining_ratio: float | None
    consumed_ratio: float | None
    step_good: float
    step_total: float


@dataclass(frozen=True, slots=True)
class Series:
    objective: str
    target: float
    group: str
    points: list[Point]


@dataclass(frozen=True, slots=True)
class CorrectionUse:
    """One correction of the definition and what it took out of this period."""

    reason: str
    author: str
    start: str
    end: str | None
    duration: str | None
    repeat: str | None
    ranges: list[tuple[int, int]]  # [a, b) minutes inside the period
    events: float
    bad_events: float


@dataclass(frozen=True, slots=True)
class GroupTotals:
    group: str
    good: float
    total: float


@dataclass(frozen=True, slots=True)
class SloHistory:
    loaded: LoadedSLO
    t_from: int
    t_to: int
    step: int
    series: list[Series]
    totals: list[GroupTotals]  # events in [t_from, t_to), corrections excluded
    at_end: list[SloResult]
    alerts: list[AlertInterval]
    corrections: list[CorrectionUse]
    contributors: Contributors


def in_ranges(col: str, ranges: list[tuple[int, int]], params: list[Any], scale: int = 1
              ) -> str:
    """``(col in any [a, b))`` for minute ranges (``scale`` turns minutes into col units)."""
    if not ranges:
        return "FALSE"
    for a, b in ranges:
        params.extend([a * scale, b * scale])
    return "(" + " OR ".join(f"({col} >= ? AND {col} < ?)" for _ in ranges) + ")"


def slo_history(store: Store, loaded: LoadedSLO, t_from: int, t_to: int, step: int = 60,
                *, top: int = 10, exemplars: int = 5) -> SloHistory:
    """Everything a report shows about one SLO for ``[t_from, t_to)`` (minutes)."""
    slo = loaded.slo
    excl = excluded_ranges(slo.spec.corrections, t_from, t_to)
    alerts = replay_slo(store, loaded, t_from, t_to, 1)
    firing = sorted((a.firing, a.resolved if a.resolved is not None else t_to)
                    for a in alerts if a.firing is not None)
    return SloHistory(
        loaded, t_from, t_to, step,
        series=_series(store, loaded, t_from, t_to, step, excl),
        totals=_totals(store, loaded, t_from, t_to, excl),
        at_end=evaluate_slo(store, loaded, t_to),
        alerts=alerts,
        corrections=_corrections(store, loaded, t_from, t_to),
        contributors=contributors(store, slo, t_from, t_to, excl, top=top,
                                  exemplars=exemplars, focus=firing),
    )


def _series(store: Store, loaded: LoadedSLO, t_from: int, t_to: int, step: int,
            excl: list[tuple[int, int]]) -> list[Series]:
    sql, params, plan = series_sql(loaded.slo, t_from, t_to, step)
    step_params: list[Any] = [t_from, step, t_from, step, loaded.slo.metadata.name, t_from,
                              t_to]
    excl_sql = in_ranges("minute", excl, step_params)
    full = f"""
WITH s AS ({sql}),
st AS (
  SELECT grp, ? + ? * ((minute - ?) // ? + 1) AS t, sum(good) AS step_good,
    sum(total) AS step_total
  FROM slo_buckets WHERE slo_name = ? AND minute >= ? AND minute < ? AND NOT {excl_sql}
  GROUP BY ALL)
SELECT s.*, coalesce(st.step_good, 0) AS step_good, coalesce(st.step_total, 0) AS step_total
FROM s LEFT JOIN st ON st.grp = s.grp AND st.t = s.t ORDER BY s.grp, s.t
"""
    frame = store.frame(full, [*params, *step_params])
    by_key: dict[tuple[int, str], list[Point]] = {}
    targets: dict[int, tuple[str, float]] = {}
    for row in frame.iter_rows(named=True):
        for i, r in enumerate(results_for_row(loaded, plan, row)):
            targets[i] = (r.objective, r.target)
            by_key.setdefault((i, r.group), []).append(Point(
                r.eval_minute, r.status, r.sli, r.error_budget.remaining_ratio,
                r.error_budget.consumed_ratio, float(row["step_good"]),
                float(row["step_total"])))
    return [Series(targets[i][0], targets[i][1], grp, pts)
            for (i, grp), pts in sorted(by_key.items())]


def _totals(store: Store, loaded: LoadedSLO, t_from: int, t_to: int,
            excl: list[tuple[int, int]]) -> list[GroupTotals]:
    params: list[Any] = [loaded.slo.metadata.name, t_from, t_to]
    excl_sql = in_ranges("minute", excl, params)
    rows = store.rows(
        "SELECT grp, sum(good), sum(total) FROM slo_buckets WHERE slo_name = ? AND minute >= ?"
        f" AND minute < ? AND NOT {excl_sql} GROUP BY grp ORDER BY grp", params)
    return [GroupTotals(str(g), float(good), float(total)) for g, good, total in rows]


def _iso(v: Any) -> str | None:
    if v is None:
        return None
    return v.isoformat() if isinstance(v, datetime) else str(v)


def _corrections(store: Store, loaded: LoadedSLO, t_from: int, t_to: int
                 ) -> list[CorrectionUse]:
    out = []
    for c in loaded.slo.spec.corrections:
        ranges = excluded_ranges([c], t_from, t_to)
        events = bad = 0.0
        if ranges:
            params: list[Any] = [loaded.slo.metadata.name]
            cond = in_ranges("minute", ranges, params)
            n, g = store.rows("SELECT coalesce(sum(total), 0), coalesce(sum(good), 0) "
                              f"FROM slo_buckets WHERE slo_name = ? AND {cond}", params)[0]
            events, bad = float(n), float(n) - float(g)
        out.append(CorrectionUse(
            c.reason, c.author, _iso(c.start) or "", _iso(c.end),
            format_duration(c.duration) if c.duration is not None else None, c.repeat,
            ranges, events, bad))
    return out


@dataclass(frozen=True, slots=True)
class VersionUse:
    """One SLO version: when the engine first saw it, and the evaluations that recorded it
    for minutes inside the period (``known`` False: recorded but not in slo_versions)."""

    slo: str
    version: str
    origin: str | None
    file: str | None
    first_seen: datetime | None
    current: bool
    evaluations: int
    first_eval: int | None
    last_eval: int | None
    known: bool


def versions(store: Store, loaded: list[LoadedSLO], t_from: int, t_to: int
             ) -> list[VersionUse]:
    """Versions of the selected SLOs (slo_versions) joined with the versions that
    slo_evaluations recorded for evaluation minutes in ``[t_from, t_to)``."""
    names = sorted({s.slo.metadata.name for s in loaded})
    current = {(s.slo.metadata.name, s.version) for s in loaded}
    if not names:
        return []
    marks = ", ".join("?" for _ in names)
    rows = store.rows(f"""
WITH e AS (
  SELECT slo_name, slo_version, count(*) AS n, min(eval_minute) AS lo, max(eval_minute) AS hi
  FROM slo_evaluations WHERE slo_name IN ({marks}) AND eval_minute >= ? AND eval_minute < ?
  GROUP BY ALL),
v AS (SELECT * FROM slo_versions WHERE slo_name IN ({marks}))
SELECT coalesce(v.slo_name, e.slo_name) AS slo, coalesce(v.version, e.slo_version) AS version,
  v.origin, v.file, v.first_seen, coalesce(e.n, 0), e.lo, e.hi, v.slo_name IS NOT NULL
FROM v FULL OUTER JOIN e ON e.slo_name = v.slo_name AND e.slo_version = v.version
ORDER BY slo, v.first_seen NULLS LAST, version
""", [*names, t_from, t_to, *names])
    return [VersionUse(r[0], r[1], r[2], r[3], r[4], (r[0], r[1]) in current, int(r[5]),
                       r[6], r[7], bool(r[8])) for r in rows]
