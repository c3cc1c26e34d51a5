"""What goes wrong with each request: faults, client errors, slowness.

Rates that SLO tests depend on use *jittered error diffusion* (:class:`Quota`) instead of
independent coin flips: over any run of n eligible requests the number of hits stays within
about ±1.5 of n·p, so every alert window sees the intended ratio and the ground truth does
not hinge on luck. Cosmetic choices (which component fails, 4xx) use plain ``random``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .schedule import BASE_ERROR, BASE_SLOW, FAST_SHARE, Window, slow_share
from .topology import GET_ORDER, GET_STOCK, POST_ORDER, Route

#: Baseline faults per route (the fast burn adds ``provider-outage`` on POST /orders).
FAULTS: dict[str, tuple[str, ...]] = {
    GET_ORDER.name: ("orders-db-error",),
    POST_ORDER.name: ("provider-error", "orders-db-error", "inventory-unavailable"),
    GET_STOCK.name: ("inventory-unavailable", "inventory-internal"),
}
#: 4xx shares (404 unknown order/SKU, 400 invalid order): not errors for availability.
CLIENT_ERRORS = {GET_ORDER.name: 0.015, POST_ORDER.name: 0.008, GET_STOCK.name: 0.01}


class Quota:
    """Jittered error diffusion: ``take(p)`` is true on a share p of calls, evenly spread."""

    def __init__(self, rng: random.Random, phase: float | None = None) -> None:
        self._rng = rng
        self._acc = rng.random() if phase is None else phase

    def take(self, p: float) -> bool:
        self._acc += p * (0.5 + self._rng.random())
        if self._acc >= 1.0:
            self._acc -= 1.0
            return True
        return False


@dataclass(frozen=True, slots=True)
class Outcome:
    """The fate of one gateway request.

    ``fault``: None or one of ``provider-outage``, ``provider-error``, ``orders-db-error``,
    ``inventory-unavailable``, ``inventory-internal`` (all end in a gateway 5xx).
    ``slow``: None, ``db`` (slow-burn orders DB call) or ``tail`` (rare baseline tail).
    ``degraded``: inside the slow burn, orders DB calls run ~1.8× slower.
    """

    fault: str | None = None
    client_error: bool = False
    slow: str | None = None
    degraded: bool = False


class FaultModel:
    """Decides outcomes in request order; deterministic for a given random stream."""

    def __init__(self, rng: random.Random, fast: Window, slow: Window) -> None:
        self._rng = rng
        self._fast = fast
        self._slow = slow
        self._base = Quota(rng)
        self._outage = Quota(rng, phase=1.0)  # the first order in the outage fails
        self._tail = Quota(rng)
        self._db = Quota(rng)
        self._db_share = slow_share()

    def decide(self, route: Route, start_ns: int) -> Outcome:
        base_fault = self._base.take(BASE_ERROR)
        fault: str | None = None
        if route is POST_ORDER and start_ns in self._fast and self._outage.take(FAST_SHARE):
            fault = "provider-outage"
        elif base_fault:
            fault = self._rng.choice(FAULTS[route.name])
        if fault is not None:
            return Outcome(fault=fault)
        client_error = self._rng.random() < CLIENT_ERRORS[route.name]
        tail = self._tail.take(BASE_SLOW)
        degraded = route is not GET_STOCK and start_ns in self._slow
        slow: str | None = None
        if degraded and self._db.take(self._db_share):
            slow = "db"
        elif tail:
            slow = "tail"
        if client_error and route is POST_ORDER:
            slow = None  # rejected before any downstream call
        return Outcome(client_error=client_error, slow=slow, degraded=degraded)
