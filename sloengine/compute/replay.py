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
from sloengine.compute.series import SeriesPlan, plan, shape, stream_sql
from sloengine.spec.loader import LoadedSLO
from sloengine.spec.policy import Tier
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


def _burn_sql(method: str, i: int, m: int, budget: str) -> str:
    if method == "Occurrences":
        e = f"(n_{m} - g_{m}) / n_{m}"
        has = f"n_{m} > 0"
    elif method == "Timeslices":
        e = f"sb{i}_{m} / sd_{m}"
        has = f"sd_{m} > 0"
    else:
        e = f"(sd_{m} - sr_{m}) / sd_{m}"
        has = f"sd_{m} > 0"
    return f"(CASE WHEN {has} THEN ({e}) / {budget} END)"


def _num(x: float) -> str:
    return f"{float(x)!r}::DOUBLE"


def conditions_sql(loaded: list[LoadedSLO], plan: SeriesPlan
                   ) -> tuple[str, list[str], list[tuple[int, str, int]]]:
    """The SLOs' thresholds as a table pr(q, b<i>, f<k>, me, mb) — budget of objective i,
    burn-rate threshold of tier k, minEvents, minBadEvents of SLO q — and over a series
    joined to it, columns c_<i>_<k> (condition), lb_/sb_ (burn rates) for objective i, tier
    k: the expression of evaluate.py with those numbers (one ``series.shape``)."""
    first = loaded[0].slo
    method = first.spec.budgeting.method
    n_obj = len(first.spec.objectives)
    values = []
    for q, x in enumerate(loaded):
        al = x.slo.spec.alerting
        nums = [_num(error_budget(o.target)) for o in x.slo.spec.objectives]
        nums += [_num(t.burn_rate) for t in _tiers(x)]
        values.append(f"({q}, {', '.join(nums)}, {int(al.min_events)}, "
                      f"{int(al.min_bad_events)})")
    cols_pr = ["q", *(f"b{i}" for i in range(n_obj)),
               *(f"f{k}" for k in range(len(plan.tiers))), "me", "mb"]
    table = f"(VALUES {', '.join(values)}) pr({', '.join(cols_pr)})"
    cols: list[str] = []
    keys: list[tuple[int, str, int]] = []
    for i in range(n_obj):
        for k, tier in enumerate(plan.tiers):
            lw = int(tier.long_window.total_seconds()) // 60
            sw = int(tier.short_window.total_seconds()) // 60
            lb = _burn_sql(method, i, lw, f"pr.b{i}")
            sb = _burn_sql(method, i, sw, f"pr.b{i}")
            cols.append(
                f"coalesce(n_{lw} >= pr.me AND n_{sw} - g_{sw} >= pr.mb"
                f" AND {lb} > pr.f{k} AND {sb} > pr.f{k}, FALSE) AS c_{i}_{k},"
                f" {lb} AS lb_{i}_{k}, {sb} AS sb_{i}_{k}")
            keys.append((i, f"{i}_{k}", k))
    return table, cols, keys


def _tiers(loaded: LoadedSLO) -> tuple[Tier, ...]:
    return plan(loaded.slo).tiers


def replay_slo(store: Store, loaded: LoadedSLO, t_from: int, t_to: int, step: int
               ) -> list[AlertInterval]:
    return replay_slos(store, [loaded], t_from, t_to, step)[0]


def replay_slos(store: Store, loaded: list[LoadedSLO], t_from: int, t_to: int, step: int
                ) -> list[list[AlertInterval]]:
    """``replay_slo`` for each SLO, in order; SLOs of one ``series.shape`` (the same windows,
    tiers, method and period) share one query."""
    batches: dict[Any, list[int]] = {}
    for n, x in enumerate(loaded):
        key = shape(x.slo)
        batches.setdefault(("alone", n) if key is None else key, []).append(n)
    out: list[list[AlertInterval]] = [[] for _ in loaded]
    for idx in batches.values():
        group = [loaded[n] for n in idx]
        series, params, p = stream_sql([x.slo for x in group], t_from, t_to, step)
        for n, intervals in zip(idx, _replay(store, group, p, series, params, t_from, t_to,
                                             step), strict=True):
            out[n] = intervals
    return out


def replay_series(store: Store, loaded: LoadedSLO, plan: SeriesPlan, series: str,
                  params: list[Any], t_from: int, t_to: int, step: int) -> list[AlertInterval]:
    """The alert timeline over any query with the columns of ``series_sql`` (one row per
    group and evaluation time; the benchmark feeds it a range-frame formulation)."""
    return _replay(store, [loaded], plan, f"SELECT 0 AS q, * FROM ({series})", params,
                   t_from, t_to, step)[0]


def _replay(store: Store, loaded: list[LoadedSLO], plan: SeriesPlan, series: str,
            params: list[Any], t_from: int, t_to: int, step: int) -> list[list[AlertInterval]]:
    """Runs of true conditions, found among the true rows only: the series has a row for
    every step, so rows k and k + 1 (k = (t − t_from) / step) with a true condition are in
    the same run, and ``k − row_number()`` is constant along a run."""
    out: list[list[AlertInterval]] = [[] for _ in loaded]
    table, cols, keys = conditions_sql(loaded, plan)
    if not keys:
        return out
    hits = ", ".join(f"{{'key': '{key}', 'c': c_{key}, 'lb': lb_{key}, 'sb': sb_{key}}}"
                     for _, key, _ in keys)
    any_c = " OR ".join(f"c_{key}" for _, key, _ in keys)
    # the (few) rows where some tier's condition holds, one row per true condition
    sql = f"""
WITH s AS ({series}),
cond AS (SELECT s.q, s.grp, s.t, {", ".join(cols)} FROM s JOIN {table} USING (q)),
hit AS (SELECT q, grp, t, unnest([{hits}]) AS h FROM cond WHERE {any_c}),
long AS (SELECT q, grp, t, h.key AS key, h.lb AS lb, h.sb AS sb FROM hit WHERE h.c),
isl AS (
  SELECT *, (t - {int(t_from)}) // {int(step)}
    - row_number() OVER (PARTITION BY q, grp, key ORDER BY t) AS run
  FROM long)
SELECT q, grp, key, min(t) AS start_t, max(t) AS last_t, max(lb) AS peak_lb, max(sb) AS peak_sb
FROM isl GROUP BY q, grp, key, run ORDER BY q, start_t, grp, key
"""
    by_key = {key: (i, k) for i, key, k in keys}
    for q, grp, key, start_t, last_t, peak_lb, peak_sb in store.rows(sql, params):
        x = loaded[q]
        i, k = by_key[key]
        tier = _tiers(x)[k]
        obj = x.slo.spec.objectives[i]
        for_steps = -(-int(tier.for_.total_seconds()) // 60 // step)  # ceil
        fire_at = start_t + for_steps * step
        firing = fire_at if fire_at <= last_t else None
        resolved = last_t + step if last_t + step <= t_to else None
        out[q].append(AlertInterval(
            x.slo.metadata.name, obj.name or f"{obj.target:g}", grp, tier.name,
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
