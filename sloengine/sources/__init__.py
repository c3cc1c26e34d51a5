"""Sources the engine pulls from (PromQL over Prometheus-compatible servers), yielding the
same per-minute good/total buckets as span, log and OTLP metric SLIs (compute/pulled.py
stores them)."""

from sloengine.sources.breaker import CircuitBreaker
from sloengine.sources.memory import InMemorySource
from sloengine.sources.prometheus import (
    PromClient,
    PrometheusSettings,
    PrometheusSource,
    auth_headers,
    connect,
)
from sloengine.sources.promql import Histogram, Plan, PromQuery, group_key, per_minute, plan

__all__ = [
    "CircuitBreaker",
    "Histogram",
    "InMemorySource",
    "Plan",
    "PromClient",
    "PromQuery",
    "PrometheusSettings",
    "PrometheusSource",
    "auth_headers",
    "connect",
    "group_key",
    "per_minute",
    "plan",
]
