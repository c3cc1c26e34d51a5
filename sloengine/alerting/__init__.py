"""Alerting: the MWMB alert state machine, the durable outbox and the notifiers.

``advance`` (state.py) moves alerts; ``enqueue`` (outbox.py) writes their notifications in the
same transaction; ``deliver_pass`` (delivery.py) sends them, at least once, to the notifiers
that ``NotifyConfig`` (config.py) routes them to.
"""

from sloengine.alerting.config import NotifyConfig, Route, load_notify_config
from sloengine.alerting.context import BadEvents
from sloengine.alerting.delivery import CircuitBreaker, DeliveryReport, deliver_pass
from sloengine.alerting.notice import Notice
from sloengine.alerting.notifiers import (
    DeliveryFailed,
    DeliveryRejected,
    MemoryNotifier,
    Notifier,
)
from sloengine.alerting.outbox import enqueue, overview
from sloengine.alerting.state import Transition, advance, dedup_key, firing, next_state

__all__ = [
    "BadEvents",
    "CircuitBreaker",
    "DeliveryFailed",
    "DeliveryRejected",
    "DeliveryReport",
    "MemoryNotifier",
    "Notice",
    "Notifier",
    "NotifyConfig",
    "Route",
    "Transition",
    "advance",
    "dedup_key",
    "deliver_pass",
    "enqueue",
    "firing",
    "load_notify_config",
    "next_state",
    "overview",
]
