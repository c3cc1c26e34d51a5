"""When things happen: diurnal arrivals, the two incidents, the skew window, nightly batches.

Incident times are offsets from ``start`` (with the default start, 2026-11-20 00:00 UTC, the
fast burn is 2026-11-21 14:10–14:35 and the slow burn 2026-11-22 06:00 → 2026-11-23 12:00).
An incident, or the skew window, is included only when it fits entirely inside the run.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .manifest import Incident
from .topology import GET_ORDER, POST_ORDER, ROUTES, SERVICES, SKEW_NS, SKEWED_HOST

NS = 1_000_000_000
MINUTE_NS = 60 * NS

#: Availability page tier for 99.9 % / 30 d needs e > 14.4 × 0.001 on 1 h and 5 m.
FAST_SHARE = 0.60
#: Latency SLO 99 % ≤ 500 ms: bad ratio inside the slow burn (burn ≈ 4.5: above the ticket
#: tiers 3 and 1, below the page tiers 14.4 and 6).
SLOW_RATIO = 0.045
#: Healthy baseline: 5xx ratio and share of requests slower than 500 ms.
BASE_ERROR = 0.00035
BASE_SLOW = 0.002
ORDERS_SHARE = GET_ORDER.weight + POST_ORDER.weight


def utc_ns(ts: datetime) -> int:
    """Epoch nanoseconds of an aware datetime (exact integer arithmetic)."""
    delta = ts - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * NS + delta.microseconds * 1000


def incidents(start: datetime, end: datetime) -> tuple[Incident, ...]:
    """The incidents that fit in ``[start, end]``."""
    fast_start = start + timedelta(days=1, hours=14, minutes=10)
    slow_start = start + timedelta(days=2, hours=6)
    post_share = POST_ORDER.weight / sum(r.weight for r in ROUTES)
    every = (
        Incident(
            id="fast-burn",
            kind="availability",
            start=fast_start,
            end=fast_start + timedelta(minutes=25),
            services=("payments-service", "orders-service", "api-gateway"),
            routes=(POST_ORDER.name,),
            slo_hint=(
                "api-gateway availability 99.9 %/30 d: page tier 14.4 (1 h ∧ 5 m) fires within "
                "minutes; latency unaffected (failures are fast)"
            ),
            description=(
                "Payment provider outage: ~60 % of POST /orders fail (provider 503 → "
                "payments-service 503 → orders-service 502 → api-gateway 502); no orders "
                "event is published for failed orders."
            ),
            expected_error_ratio=round(post_share * FAST_SHARE + BASE_ERROR, 5),
        ),
        Incident(
            id="slow-burn",
            kind="latency",
            start=slow_start,
            end=slow_start + timedelta(hours=30),
            services=("orders-service",),
            routes=(GET_ORDER.name, POST_ORDER.name),
            slo_hint=(
                "api-gateway latency 99 % ≤ 500 ms/30 d: ticket tiers 3 (1 d ∧ 2 h) and 1 "
                "(3 d ∧ 6 h) fire, page tiers 14.4 and 6 do not; availability stays healthy"
            ),
            description=(
                "Orders database degradation: ~4.5 % of all gateway requests exceed 500 ms "
                "(slow postgres SELECT/INSERT spans in orders-service, WARN 'slow query' logs); "
                "other orders queries are ~1.8× slower but stay under 500 ms."
            ),
            expected_error_ratio=SLOW_RATIO,
        ),
    )
    return tuple(i for i in every if start <= i.start and i.end <= end)


def slow_share() -> float:
    """Per-orders-request probability of a slow DB call inside the slow burn."""
    return (SLOW_RATIO - BASE_SLOW) / ORDERS_SHARE


def skew_window(start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
    """20 minutes on day 1 (10:00–10:20 after start) during which ``SKEWED_HOST`` runs fast."""
    lo = start + timedelta(hours=10)
    hi = lo + timedelta(minutes=20)
    return (lo, hi) if hi <= end else None


SKEW_SERVICE = next(s.name for s in SERVICES.values() if SKEWED_HOST in s.hosts)
SKEW_MS = SKEW_NS / 1e6


def diurnal(ts_ns: int) -> float:
    """Traffic multiplier averaging 1 over a UTC day: trough 0.5 at 02:00, peak 1.5 at 14:00."""
    hour = (ts_ns % (86400 * NS)) / (3600 * NS)
    return 1.0 + 0.5 * math.sin(2 * math.pi * (hour - 8.0) / 24.0)


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def arrivals(rng: random.Random, start_ns: int, end_ns: int, rate: float) -> Iterator[int]:
    """Request start times (ns, µs resolution, sorted): Poisson per minute, diurnal rate."""
    minute = start_ns
    while minute < end_ns:
        lam = rate * diurnal(minute + MINUTE_NS // 2)
        span = min(MINUTE_NS, end_ns - minute)
        n = _poisson(rng, lam * span / MINUTE_NS)
        offsets = sorted(rng.randrange(max(1, span // 1000)) * 1000 for _ in range(n))
        for off in offsets:
            yield minute + off
        minute += MINUTE_NS


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open [lo, hi) interval in ns."""

    lo: int
    hi: int

    def __contains__(self, ts: object) -> bool:
        return isinstance(ts, int) and self.lo <= ts < self.hi


EMPTY = Window(0, 0)


def batch_times(start: datetime, end: datetime) -> list[datetime]:
    """Every 02:00 UTC inside ``[start, end)`` (when the nightly batch starts)."""
    day = start.replace(hour=2, minute=0, second=0, microsecond=0)
    if day < start:
        day += timedelta(days=1)
    out = []
    while day < end:
        out.append(day)
        day += timedelta(days=1)
    return out
