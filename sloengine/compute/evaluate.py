"""SLI, error budget, burn rates and MWMB decisions at one evaluation time (SLO-MATH.md).

Thin Python over the rows of ``series.py``: the sums come from DuckDB; here they become
ratios. No rounding (rendering rounds); "no data" is a status, never a number.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sloengine.compute.series import SeriesPlan, point_sql
from sloengine.model import ErrorBudget, SloResult, TierDecision
from sloengine.spec.durations import format_duration
from sloengine.spec.loader import LoadedSLO
from sloengine.store import Store


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
    sql, params, plan = point_sql(loaded.slo, t)
    frame = store.frame(sql, params)
    rows = list(frame.iter_rows(named=True))
    if not rows:  # nothing ever seen for this SLO: one "no_data" result
        rows = [{c: 0.0 for c in frame.columns} | {"grp": "", "t": t}]
    return [r for row in rows for r in results_for_row(loaded, plan, row)]


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
