"""SLI counts, error budgets and burn rates: SQL that runs in DuckDB through the store."""

from sloengine.compute.buckets import indicator_hash
from sloengine.compute.evaluate import error_budget, evaluate_slo, evaluate_slos
from sloengine.compute.incremental import materialize, materialize_many
from sloengine.compute.replay import AlertInterval, Incident, replay_slo, replay_slos, score
from sloengine.compute.series import plan, series_sql

__all__ = [
    "AlertInterval",
    "Incident",
    "error_budget",
    "evaluate_slo",
    "evaluate_slos",
    "indicator_hash",
    "materialize",
    "materialize_many",
    "plan",
    "replay_slo",
    "replay_slos",
    "score",
    "series_sql",
]
