"""SLI, error budget, burn rates and MWMB decisions at one evaluation time (SLO-MATH.md).

Thin Python over DuckDB sums: ``point_query`` reads the SLO's buckets once and sums them per
band between window starts (a handful of rows per group); the window sums are those bands
added up, the same numbers as a row of ``series.series_sql`` at that time. Here they become
ratios. No rounding (rendering rounds); "no data" is a status, never a number.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sloengine.compute import rollups
from sloengine.compute.series import (
    SeriesPlan,
    exclusion_sql,
    plan,
    read_from,
    rolling_minutes,
)
from sloengine.compute.windows import excluded_ranges, period_start
from sloengine.model import ErrorBudget, SloResult, TierDecision
from sloengine.spec.durations import format_duration
from sloengine.spec.loader import LoadedSLO
from sloengine.spec.model import SLO
from sloengine.store import Store

#: (label, first band, last band, sign); no bands: an empty window
Span = tuple[str, int, int, int]
#: where a point query's SQL lists the SLOs it reads (``PointQuery.sql_for``)
NAMES = "/*names*/"


@dataclass(frozen=True, slots=True)
class PointQuery:
    """One evaluation: SQL for rows (slo_name, grp, kind, band, v0, v1, ...) — kind 0: good,
    total per band of minutes; kind 1: slices with data, sum of slice ratios, bad slices per
    objective per band of slices — and how bands add up to each column. The SQL reads the
    SLOs named in ``slo_name IN (NAMES)``: SLOs whose SQL is the same text (same windows,
    period, corrections, rollups) share one query (``sql_for``)."""

    sql: str
    plan: SeriesPlan
    t: int
    ps: int
    minute_spans: tuple[Span, ...]
    slice_spans: tuple[Span, ...]

    def sql_for(self, names: list[str]) -> tuple[str, list[str]]:
        marks = ", ".join("?" for _ in names)
        return self.sql.replace(NAMES, marks), names * self.sql.count(NAMES)

    @property
    def columns(self) -> list[str]:
        cols = ["grp", "t"]
        for label, *_ in self.minute_spans:
            cols += (["ps"] if label == "p" else []) + [f"g_{label}", f"n_{label}"]
        for label, *_ in self.slice_spans:
            cols += [f"sd_{label}", f"sr_{label}",
                     *(f"sb{i}_{label}" for i in range(len(self.plan.slice_targets)))]
        return cols

    def rows(self, band_rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        """The window sums per group, ordered by group (bands added in band order)."""
        by_grp: dict[str, list[dict[int, tuple[Any, ...]]]] = {}
        for grp, kind, band, *vals in band_rows:
            by_grp.setdefault(grp, [{}, {}])[kind][band] = tuple(vals)
        out = []
        n_obj = len(self.plan.slice_targets)
        for grp in sorted(by_grp):
            minutes, slices = by_grp[grp]
            row: dict[str, Any] = {"grp": grp, "t": self.t}
            for label, a, b, _ in self.minute_spans:
                if label == "p":
                    row["ps"] = self.ps
                row[f"g_{label}"] = _add(minutes, a, b, 0, 0.0)
                row[f"n_{label}"] = _add(minutes, a, b, 1, 0.0)
            for label, a, b, sign in self.slice_spans:
                row[f"sd_{label}"] = sign * int(_add(slices, a, b, 0, 0))
                row[f"sr_{label}"] = sign * _add(slices, a, b, 1, 0.0)
                for i in range(n_obj):
                    row[f"sb{i}_{label}"] = sign * int(_add(slices, a, b, 2 + i, 0))
            out.append(row)
        return out


def _add(bands: dict[int, tuple[Any, ...]], a: int, b: int, col: int, zero: Any) -> Any:
    total = zero
    for k in range(a, b + 1):
        v = bands.get(k)
        if v is not None:
            total = total + v[col]
    return total


def _bands(col: str, ranges: list[tuple[str, int, int, int]]) -> tuple[str, tuple[Span, ...]]:
    """Cut the line at every range end: ``col`` → band number (0 before the first cut), and
    each range [a, b) → the bands it covers. Summing rows per band once, then adding up
    bands, replaces one filtered aggregate per window over every row."""
    cuts = sorted({a for _, a, _, _ in ranges} | {b for _, _, b, _ in ranges})
    index = {c: k for k, c in enumerate(cuts)}
    case = " ".join(f"WHEN {col} >= {c} THEN {k + 1}" for k, c in reversed(list(enumerate(cuts))))
    return (f"CASE {case} ELSE 0 END",
            tuple((label, index[a] + 1, index[b], sign) for label, a, b, sign in ranges))


def point_query(slo: SLO, t: int, *, rolled_up: bool = False, slices_rolled: bool = False
                ) -> PointQuery:
    """The sums of ``series_sql(slo, t, t, 1)`` from one pass over the buckets. With
    ``rolled_up`` (the SLO's hourly rollups are complete, rollups.py) whole hours are read
    from the rollups — with slices only when ``slices_rolled`` (its slice rollups match)."""
    p = plan(slo)
    rolling = rolling_minutes(slo)
    ps = t - rolling if rolling is not None else period_start(slo.spec.window, t)
    lo = read_from(p, ps, t)
    excl = excluded_ranges(slo.spec.corrections, lo, t)
    minute_ranges = [*((str(m), t - m, t, 1) for m in p.windows), ("p", ps, t, 1)]
    band, m_spans = _bands("minute", minute_ranges)
    s = p.slice_minutes
    s_ranges: list[tuple[str, int, int, int]] = []
    if s:
        end = t // s  # windows hold the whole slices before this one
        s_ranges = [(str(m), end - m // s, end, 1) for m in p.windows]
        if rolling is not None:
            s_ranges.append(("p", end - rolling // s, end, 1))
        else:
            first = (ps + s - 1) // s
            # a period starting inside the current slice: as the running-sum difference,
            # minus the slices [end, first)
            s_ranges.append(("p", first, end, 1) if first <= end else ("p", end, first, -1))
    use_rollups = rolled_up and (not s or slices_rolled)
    # every boundary a whole hour must not straddle: window and period starts, corrections,
    # and (in minutes) slice-window starts
    cuts = [x for _, a, b, _ in minute_ranges for x in (a, b)]
    cuts += [x for ab in excl for x in ab]
    cuts += [x * (s or 0) for _, a, b, _ in s_ranges for x in (a, b)]
    if use_rollups:
        source = rollups.read_sql(lo, t, cuts, NAMES)
    else:
        source = (f"SELECT slo_name, grp, minute, good, total, 0 AS src FROM slo_buckets"
                  f" WHERE slo_name IN ({NAMES}) AND minute >= {lo} AND minute < {t}")
    n_obj = len(p.slice_targets)
    pad = "".join(f", NULL::DOUBLE AS v{2 + i}" for i in range(n_obj)) if s else ""
    sql = f"""
WITH b AS (
  SELECT slo_name, grp, minute, good, total, src, NOT {exclusion_sql(excl, 'minute')} AS keep
  FROM ({source}))
SELECT slo_name, grp, 0 AS kind, CASE WHEN keep THEN {band} ELSE 0 END AS band, sum(good) AS v0,
  sum(total) AS v1{pad}
FROM b GROUP BY ALL"""
    s_spans: tuple[Span, ...] = ()
    if s:
        sband, s_spans = _bands("s", s_ranges)
        per_slice = f"""(SELECT slo_name, grp, minute // {s} AS s,
        coalesce(sum(good) FILTER (WHERE keep), 0) AS g,
        coalesce(sum(total) FILTER (WHERE keep), 0) AS n
      FROM b WHERE src = 0 GROUP BY ALL)"""
        if not use_rollups:
            bads = "".join(f", sum((n > 0 AND g / n < {float(tg)!r})::INT)"
                           for tg in p.slice_targets)
            sql += f"""
UNION ALL
SELECT slo_name, grp, 1, {sband}, sum((n > 0)::INT),
  sum(CASE WHEN n > 0 THEN g / n ELSE 0 END){bads}
FROM {per_slice}
GROUP BY ALL"""
        else:
            # minutes of cut hours slice by slice, whole hours from the slice rollups
            bads = "".join(f", (n > 0 AND g / n < {float(tg)!r})::INT::DOUBLE AS b{i}"
                           for i, tg in enumerate(p.slice_targets))
            keep = "NOT " + exclusion_sql(excl, "{col}")
            hourly = rollups.slices_sql(lo, t, cuts, NAMES, s, n_obj, keep)
            sums = "".join(f", sum(b{i})" for i in range(n_obj))
            names = "".join(f", b{i}" for i in range(n_obj))
            sql += f"""
UNION ALL
SELECT slo_name, grp, 1, {sband}, sum(d), sum(r){sums}
FROM (
  SELECT slo_name, grp, s, (n > 0)::INT::DOUBLE AS d,
    CASE WHEN n > 0 THEN g / n ELSE 0 END AS r{bads}
  FROM {per_slice}
  UNION ALL
  SELECT slo_name, grp, minute // {s}, * EXCLUDE (slo_name, grp, minute)
  FROM ({hourly}) h(slo_name, grp, minute, d, r{names}))
GROUP BY ALL"""
    return PointQuery(sql, p, t, ps, m_spans, s_spans)


def window_label(slo_window: Any) -> str:
    if slo_window.rolling is not None:
        return f"rolling {format_duration(slo_window.rolling)}"
    return f"calendar {slo_window.calendar} ({slo_window.time_zone})"


def error_budget(target: float) -> float:
    """1 − target as the author wrote it: 0.999 → 0.001 exactly (not 0.0010000000000000009)."""
    return float(1 - Decimal(repr(target)))


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def evaluate_slo(store: Store, loaded: LoadedSLO, t: int) -> list[SloResult]:
    """Every objective × group of one SLO at minute boundary ``t`` (windows end before t)."""
    return evaluate_slos(store, [loaded], t)[0]


def evaluate_slos(store: Store, loaded: list[LoadedSLO], t: int, *, rollups_: bool = True
                  ) -> list[list[SloResult]]:
    """``evaluate_slo`` of each SLO. SLOs whose point queries are the same SQL (the same
    windows and period: the default policy makes most SLOs alike) share one query with
    ``slo_name IN (...)``: one scan and one plan per shape, not per SLO. Whole hours are read
    from the rollups where they are complete (``rollups_=False``: every minute, as a
    cross-check)."""
    names = [x.slo.metadata.name for x in loaded]
    keys = rollups.rolled_up(store, names) if rollups_ else {}
    qs = [point_query(x.slo, t, rolled_up=x.slo.metadata.name in keys,
                      slices_rolled=keys.get(x.slo.metadata.name) is not None
                      and keys[x.slo.metadata.name] == rollups.slice_key(
                          rollups.slice_spec(x.slo))) for x in loaded]
    shared: dict[str, list[str]] = {}
    for name, q in zip(names, qs, strict=True):
        if name not in shared.setdefault(q.sql, []):
            shared[q.sql].append(name)
    first = {q.sql: q for q in reversed(qs)}
    results = store.rows_each([first[sql].sql_for(ns) for sql, ns in shared.items()])
    by_name: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for sql, rows in zip(shared, results, strict=True):
        for row in rows:
            by_name.setdefault((sql, row[0]), []).append(row[1:])
    out = []
    for x, q in zip(loaded, qs, strict=True):
        sums = q.rows(by_name.get((q.sql, x.slo.metadata.name), []))
        if not sums:  # nothing ever seen for this SLO: one "no_data" result
            sums = [{c: 0.0 for c in q.columns} | {"grp": "", "t": t}]
        out.append([r for row in sums for r in results_for_row(x, q.plan, row)])
    return out


def results_for_row(loaded: LoadedSLO, plan: SeriesPlan, row: dict[str, Any]
                    ) -> list[SloResult]:
    slo = loaded.slo
    out = []
    method = slo.spec.budgeting.method
    min_events = slo.spec.alerting.min_events
    min_bad = slo.spec.alerting.min_bad_events
    period_s = plan.period_minutes * 60
    for i, obj in enumerate(slo.spec.objectives):
        budget = error_budget(obj.target)
        g_p, n_p = float(row["g_p"]), float(row["n_p"])
        if method == "Occurrences":
            sli = _ratio(g_p, n_p)
            allowed = budget * n_p
            consumed = n_p - g_p
            unit = "events"
            good, total = g_p, n_p
        else:
            sd = float(row["sd_p"])
            if method == "Timeslices":
                bad = float(row[f"sb{i}_p"])
                sli = _ratio(sd - bad, sd)
                # budget in slices is known from the period's length (SLO-MATH.md)
                allowed = budget * (plan.period_minutes // (plan.slice_minutes or 1))
                consumed = bad
                good, total = sd - bad, sd
            else:
                sli = _ratio(float(row["sr_p"]), sd)
                allowed = budget * sd
                consumed = sd - float(row["sr_p"])
                good, total = float(row["sr_p"]), sd
            unit = "slices"
        consumed_ratio = consumed / allowed if allowed > 0 else None
        remaining = 1.0 - consumed_ratio if consumed_ratio is not None else None

        def burn(m: int, i: int = i, budget: float = budget) -> float | None:
            if method == "Occurrences":
                e = _ratio(float(row[f"n_{m}"]) - float(row[f"g_{m}"]), float(row[f"n_{m}"]))
            elif method == "Timeslices":
                e = _ratio(float(row[f"sb{i}_{m}"]), float(row[f"sd_{m}"]))
            else:
                sdm = float(row[f"sd_{m}"])
                e = _ratio(sdm - float(row[f"sr_{m}"]), sdm)
            return None if e is None else e / budget

        rates = {format_duration_min(m): burn(m) for m in plan.windows}
        decisions = []
        for tier in plan.tiers:
            lw = int(tier.long_window.total_seconds()) // 60
            sw = int(tier.short_window.total_seconds()) // 60
            lb, sb = burn(lw), burn(sw)
            n_long = float(row[f"n_{lw}"])
            bad_short = float(row[f"n_{sw}"]) - float(row[f"g_{sw}"])
            cond = (n_long >= min_events and bad_short >= min_bad and lb is not None
                    and sb is not None and lb > tier.burn_rate and sb > tier.burn_rate)
            decisions.append(TierDecision(
                tier.name, tier.severity, _format(tier.long_window),
                _format(tier.short_window), tier.burn_rate, lb, sb, n_long, cond))
        # "the current burn": over the long window of the fastest tier (1h by default)
        now_w = (int(plan.tiers[0].long_window.total_seconds()) // 60 if plan.tiers
                 else min(plan.windows, default=None))
        current = rates.get(format_duration_min(now_w)) if now_w is not None else None
        if remaining is None or current is None:
            tte = None
        elif remaining <= 0:
            tte = 0.0
        elif current <= 0:
            tte = None
        else:
            tte = remaining * period_s / current
        budget_alerts = [
            {"consumed": ba.consumed, "severity": ba.severity,
             "condition": consumed_ratio is not None and consumed_ratio >= ba.consumed}
            for ba in slo.spec.alerting.budget]
        if n_p == 0:
            status = "no_data"
        elif float(row["n_p"]) < min_events:
            status = "insufficient_data"
        else:
            status = "ok"
        out.append(SloResult(
            name=slo.metadata.name, service=slo.metadata.service,
            objective=obj.name or f"{obj.target:g}", target=obj.target,
            group=str(row["grp"]), window=window_label(slo.spec.window),
            budgeting_method=method, eval_minute=int(row["t"]), sli=sli, good=good,
            total=total,
            error_budget=ErrorBudget(unit, allowed, consumed, consumed_ratio, remaining),
            burn_rates=rates, time_to_exhaustion_seconds=tte, alerts=decisions,
            budget_alerts=budget_alerts, status=status, slo_version=loaded.version))
    return out


#: every result formats the same few windows: once each
_format = functools.cache(format_duration)


@functools.cache
def format_duration_min(m: int) -> str:
    return format_duration(timedelta(minutes=m))
