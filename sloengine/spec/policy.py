"""The multi-window multi-burn-rate table as data (SLO-MATH.md, Google SRE Workbook ch. 5
"Alerting on SLOs"): threshold f = (budget % × P) / W_L; a tier fires when the error ratio
over BOTH its long and short window exceeds f × (1 − target).

Default budget shares, as Sloth derives them: periods of 14 days or more use 2 % / 5 % /
10 % / 10 % (30 d → 14.4, 6, 3, 1); shorter periods use the 7-day row of SLO-MATH.md,
8 % / 12.5 % / 20 % / 42 % (7 d → 13.44, 3.5, 1.4, 0.98).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sloengine.spec.model import SLO, AlertTier

H = timedelta(hours=1)
M = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Tier:
    """A resolved tier: windows and the burn-rate threshold."""

    name: str
    severity: str
    long_window: timedelta
    short_window: timedelta
    burn_rate: float
    budget_percent: float | None
    for_: timedelta
    labels: tuple[tuple[str, str], ...]


def default_tiers(period: timedelta) -> list[AlertTier]:
    long_period = period >= timedelta(days=14)
    shares = (2.0, 5.0, 10.0, 10.0) if long_period else (8.0, 12.5, 20.0, 42.0)
    rows = (
        ("page-fast", "page", 1 * H, 5 * M),
        ("page-slow", "page", 6 * H, 30 * M),
        ("ticket-fast", "ticket", 24 * H, 2 * H),
        ("ticket-slow", "ticket", 72 * H, 6 * H),
    )
    return [
        AlertTier(name=n, severity=sev, long_window=lw, short_window=sw, budget_percent=share)
        for (n, sev, lw, sw), share in zip(rows, shares, strict=True)
    ]


def resolve(slo: SLO) -> list[Tier]:
    """The enabled tiers of an SLO with their burn-rate thresholds."""
    period = slo.spec.window.nominal()
    tiers = slo.spec.alerting.tiers
    if tiers is None:
        tiers = default_tiers(period)
    out = []
    for t in tiers:
        if not t.enabled:
            continue
        if t.burn_rate is not None:
            rate = t.burn_rate
        else:
            assert t.budget_percent is not None
            rate = (t.budget_percent / 100.0) * (period / t.long_window)
        labels = {**slo.spec.alerting.labels, **t.labels}
        out.append(Tier(t.name, t.severity, t.long_window, t.short_window, rate,
                        t.budget_percent, t.for_ or timedelta(0), tuple(sorted(labels.items()))))
    return out
