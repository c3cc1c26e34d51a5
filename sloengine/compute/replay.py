"""Replay / backtest: evaluate an SLO at every step over history and return the alert
timeline, entirely in DuckDB (the series of series.py, the MWMB condition per tier, then runs
of consecutive true conditions → pending / firing / resolved).

A tier's condition is the same expression as in evaluate.py (burn = e / (1 − target) > f over
both windows, at least ``minEvents`` in the long window and ``minBadEvents`` bad events in
the short one), so a replay at t and an evaluation at
t agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sloengine.compute.evaluate import error_budget
from sloengine.compute.series import SeriesPlan, series_sql
from sloengine.spec.loader import LoadedSLO
from sloengine.store import Store


@dataclass(frozen=True, slots=True)
class AlertInterval:
    """One alert's life in a replay (minutes; ``resolved`` None = still firing at the end)."""

    slo: str
    objective: str
    group: str
    tier: str
    severity: str
    pending: int
    firing: int | None
    resolved: int | None
    peak_long_burn: float
    peak_short_burn: float


def _burn_sql(method: str, i: int, m: int, budget: float) -> str:
    if method == "Occurrences":
        e = f"(n_{m} - g_{m}) / n_{m}"
        has = f"n_{m} > 0"
    elif method == "Timeslices":
        e = f"sb{i}_{m} / sd_{m}"
        has = f"sd_{m} > 0"
    else:
        e = f"(sd_{m} - sr_{m}) / sd_{m}"
        has = f"sd_{m} > 0"
    return f"(CASE WHEN {has} THEN ({e}) / {budget!r} END)"


def conditions_sql(loaded: LoadedSLO, plan: SeriesPlan) -> tuple[list[str], list[tuple[
        int, str, Any]]]:
    """Columns c_<i>_<k> (condition), lb_/sb_ (burn rates) for objective i, tier k."""
    slo = loaded.slo
    method = slo.spec.budgeting.method
    cols: list[str] = []
    keys: list[tuple[int, str, Any]] = []
    for i, obj in enumerate(slo.spec.objectives):
        b = error_budget(obj.target)
        for k, tier in enumerate(plan.tiers):
            lw = int(tier.long_window.total_seconds()) // 60
            sw = int(tier.short_window.total_seconds()) // 60
            lb, sb = _burn_sql(method, i, lw, b), _burn_sql(method, i, sw, b)
            thr = repr(float(tier.burn_rate))
            al = slo.spec.alerting
            cols.append(
                f"coalesce(n_{lw} >= {al.min_events} AND n_{sw} - g_{sw} >= {al.min_bad_events}"
                f" AND {lb} > {thr} AND {sb} > {thr}, FALSE) AS c_{i}_{k}, {lb} AS lb_{i}_{k},"
                f" {sb} AS sb_{i}_{k}")
            keys.append((i, f"{i}_{k}", tier))
    return cols, keys


def replay_slo(store: Store, loaded: LoadedSLO, t_from: int, t_to: int, step: int
               ) -> list[AlertInterval]:
    series, params, plan = series_sql(loaded.slo, t_from, t_to, step, ordered=False)
    return replay_series(store, loaded, plan, series, params, t_from, t_to, step)


def replay_series(store: Store, loaded: LoadedSLO, plan: SeriesPlan, series: str,
                  params: list[Any], t_from: int, t_to: int, step: int) -> list[AlertInterval]:
    """The alert timeline over any query with the columns of ``series_sql`` (one row per
    group and evaluation time; the benchmark feeds it a range-frame formulation).

    Runs of true conditions are found among the true rows only: the series has a row for
    every step, so rows k and k + 1 (k = (t − t_from) / step) with a true condition are in
    the same run, and ``k − row_number()`` is constant along a run."""
    cols, keys = conditions_sql(loaded, plan)
    if not keys:
        return []
    unions = " UNION ALL ".join(
        f"SELECT grp, t, '{key}' AS key, lb_{key} AS lb, sb_{key} AS sb FROM cond"
        f" WHERE c_{key}" for _, key, _ in keys)
    sql = f"""
WITH s AS ({series}),
cond AS (SELECT grp, t, {", ".join(cols)} FROM s),
long AS ({unions}),
isl AS (
  SELECT *, (t - {int(t_from)}) // {int(step)}
    - row_number() OVER (PARTITION BY grp, key ORDER BY t) AS run
  FROM long)
SELECT grp, key, min(t) AS start_t, max(t) AS last_t, max(lb) AS peak_lb, max(sb) AS peak_sb
FROM isl GROUP BY grp, key, run ORDER BY start_t, grp, key
"""
    rows = store.rows(sql, params)
    by_key = {key: (i, tier) for i, key, tier in keys}
    out = []
    for grp, key, start_t, last_t, peak_lb, peak_sb in rows:
        i, tier = by_key[key]
        obj = loaded.slo.spec.objectives[i]
        for_steps = -(-int(tier.for_.total_seconds()) // 60 // step)  # ceil
        fire_at = start_t + for_steps * step
        firing = fire_at if fire_at <= last_t else None
        resolved = last_t + step if last_t + step <= t_to else None
        out.append(AlertInterval(
            loaded.slo.metadata.name, obj.name or f"{obj.target:g}", grp, tier.name,
            tier.severity, int(start_t), firing, resolved, float(peak_lb), float(peak_sb)))
    return out


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    start: int  # minutes
    end: int
    kind: str = ""


def score(intervals: list[AlertInterval], incidents: list[Incident], grace: int = 60
          ) -> dict[str, Any]:
    """Detection time, reset time, missed incidents and false alerts (SLO-MATH.md)."""
    firing = [a for a in intervals if a.firing is not None]
    per_incident = []
    matched: set[int] = set()
    for inc in incidents:
        hits = [(n, a) for n, a in enumerate(firing)
                if a.firing is not None and inc.start <= a.firing <= inc.end + grace]
        for n, _ in hits:
            matched.add(n)
        # an alert that started before the incident and keeps firing through it counts too
        for n, a in enumerate(firing):
            assert a.firing is not None
            if a.firing < inc.start and (a.resolved is None or a.resolved > inc.start):
                matched.add(n)
        first = min((a.firing for _, a in hits if a.firing is not None), default=None)
        resolved = [a.resolved for _, a in hits if a.resolved is not None]
        per_incident.append({
            "id": inc.id, "kind": inc.kind, "start": inc.start, "end": inc.end,
            "detected": first is not None,
            "detection_minutes": None if first is None else first - inc.start,
            "reset_minutes": (max(resolved) - inc.end) if resolved and first is not None
            else None,
            "alerts": sorted({f"{a.slo}/{a.tier}" for _, a in hits}),
            "severities": sorted({a.severity for _, a in hits}),
        })
    false_alerts = [a for n, a in enumerate(firing) if n not in matched]
    return {
        "incidents": per_incident,
        "missed": [p["id"] for p in per_incident if not p["detected"]],
        "false_alerts": false_alerts,
    }
