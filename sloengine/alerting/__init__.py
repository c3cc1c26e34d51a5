"""Alerting: the MWMB alert state machine (and, later, the outbox and notifiers)."""

from sloengine.alerting.state import Transition, advance, dedup_key, firing, next_state

__all__ = ["Transition", "advance", "dedup_key", "firing", "next_state"]
