"""SLI counts, error budgets and burn rates: SQL that runs in DuckDB through the store."""

from sloengine.compute.buckets import indicator_hash, materialize
from sloengine.compute.evaluate import error_budget, evaluate_slo
from sloengine.compute.replay import AlertInterval, Incident, replay_slo, replay_slos, score
from sloengine.compute.series import plan, series_sql

__all__ = [
    "AlertInterval",
    "Incident",
    "error_budget",
    "evaluate_slo",
    "indicator_hash",
    "materialize",
    "plan",
    "replay_slo",
    "replay_slos",
    "score",
    "series_sql",
]
