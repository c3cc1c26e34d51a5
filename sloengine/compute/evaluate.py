"""SLI, error budget, burn rates and MWMB decisions at one evaluation time (SLO-MATH.md).

Thin Python over DuckDB sums: ``point_query`` reads the SLO's buckets once and sums them per
band between window starts (a handful of rows per group); the window sums are those bands
added up, the same numbers as a row of ``series.series_sql`` at that time. Here they become
ratios. No rounding (rendering rounds); "no data" is a status, never a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

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


@dataclass(frozen=True, slots=True)
class PointQuery:
    """One evaluation: SQL for rows (grp, kind, band, v0, v1, ...) — kind 0: good, total
    per band of minutes; kind 1: slices with data, sum of slice ratios, bad slices per
    objective per band of slices — and how bands add up to each column."""

    sql: str
    params: list[Any]
    plan: SeriesPlan
    t: int
    ps: int
    minute_spans: tuple[Span, ...]
    slice_spans: tuple[Span, ...]

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


def point_query(slo: SLO, t: int) -> PointQuery:
    """The sums of ``series_sql(slo, t, t, 1)`` from one pass over the buckets."""
    p = plan(slo)
    rolling = rolling_minutes(slo)
    ps = t - rolling if rolling is not None else period_start(slo.spec.window, t)
    lo = read_from(p, ps, t)
    excl = excluded_ranges(slo.spec.corrections, lo, t)
    band, m_spans = _bands("minute", [*((str(m), t - m, t, 1) for m in p.windows),
                                      ("p", ps, t, 1)])
    s = p.slice_minutes
    n_obj = len(p.slice_targets)
    pad = "".join(f", NULL::DOUBLE AS v{2 + i}" for i in range(n_obj)) if s else ""
    sql = f"""
WITH b AS (
  SELECT grp, minute, good, total, NOT {exclusion_sql(excl, 'minute')} AS keep
  FROM slo_buckets WHERE slo_name = ? AND minute >= {lo} AND minute < {t})
SELECT grp, 0 AS kind, CASE WHEN keep THEN {band} ELSE 0 END AS band, sum(good) AS v0,
  sum(total) AS v1{pad}
FROM b GROUP BY ALL"""
    s_spans: tuple[Span, ...] = ()
    if s:
        end = t // s  # windows hold the whole slices before this one
        ranges = [(str(m), end - m // s, end, 1) for m in p.windows]
        if rolling is not None:
            ranges.append(("p", end - rolling // s, end, 1))
        else:
            first = (ps + s - 1) // s
            # a period starting inside the current slice: as the running-sum difference,
            # minus the slices [end, first)
            ranges.append(("p", first, end, 1) if first <= end else ("p", end, first, -1))
        sband, s_spans = _bands("s", ranges)
        bads = "".join(f", sum((n > 0 AND g / n < {float(tg)!r})::INT)"
                       for tg in p.slice_targets)
        sql += f"""
UNION ALL
SELECT grp, 1, {sband}, sum((n > 0)::INT), sum(CASE WHEN n > 0 THEN g / n ELSE 0 END){bads}
FROM (SELECT grp, minute // {s} AS s, coalesce(sum(good) FILTER (WHERE keep), 0) AS g,
        coalesce(sum(total) FILTER (WHERE keep), 0) AS n
      FROM b GROUP BY ALL)
GROUP BY ALL"""
    return PointQuery(sql, [slo.metadata.name], p, t, ps, m_spans, s_spans)


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
    q = point_query(loaded.slo, t)
    rows = q.rows(store.rows(q.sql, q.params))
    if not rows:  # nothing ever seen for this SLO: one "no_data" result
        rows = [{c: 0.0 for c in q.columns} | {"grp": "", "t": t}]
    return [r for row in rows for r in results_for_row(loaded, q.plan, row)]


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
                tier.name, tier.severity, format_duration(tier.long_window),
                format_duration(tier.short_window), tier.burn_rate, lb, sb, n_long, cond))
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


def format_duration_min(m: int) -> str:
    from datetime import timedelta

    return format_duration(timedelta(minutes=m))
