"""Warnings about SLOs that validate but are probably not what the author meant."""

from __future__ import annotations

from datetime import timedelta

from sloengine.spec.loader import Diagnostic, DocContext
from sloengine.spec.model import SLO
from sloengine.spec.policy import resolve


def warnings_for(slo: SLO, ctx: DocContext) -> list[Diagnostic]:
    out: list[Diagnostic] = []

    def warn(path: tuple[object, ...], message: str) -> None:
        out.append(Diagnostic("warning", ctx.file, ctx.line_of(path),
                              ".".join(str(p) for p in path), message))

    for i, o in enumerate(slo.spec.objectives):
        if o.target > 0.99999:
            warn(("spec", "objectives", i, "target"),
                 f"target {o.target} allows {(1 - o.target) * 100:.4g} % errors: budget is "
                 "too small to alert on meaningfully")
        if o.target < 0.5:
            warn(("spec", "objectives", i, "target"),
                 f"target {o.target} is below 50 %: is this the error ratio instead of the "
                 "success ratio?")
    if len({o.target for o in slo.spec.objectives}) != len(slo.spec.objectives):
        warn(("spec", "objectives"), "two objectives have the same target")
    if slo.spec.window.rolling is not None and slo.spec.window.rolling < timedelta(days=1):
        warn(("spec", "window", "rolling"), "a period under one day makes the error budget "
             "tiny and the burn-rate windows longer than the period")
    period = slo.spec.window.nominal()
    for t in resolve(slo):
        if t.long_window > period:
            warn(("spec", "alerting"), f"tier {t.name!r}: long window {t.long_window} is "
                 f"longer than the period {period}")
        if t.burn_rate * (1 - min(o.target for o in slo.spec.objectives)) >= 1:
            warn(("spec", "alerting"), f"tier {t.name!r}: burn rate {t.burn_rate:g} needs an "
                 "error ratio above 100 % to fire: it can never fire")
    if not slo.metadata.runbook:
        warn(("metadata",), "no runbook: alerts will not link one")
    if not (slo.metadata.owner or slo.metadata.team):
        warn(("metadata",), "no owner or team: who gets paged?")
    b = slo.spec.budgeting
    if b.method != "Occurrences" and b.time_slice_window and slo.spec.window.rolling and (
            slo.spec.window.rolling % b.time_slice_window):
        warn(("spec", "budgeting", "timeSliceWindow"),
             "the period is not a whole number of slices")
    return out
