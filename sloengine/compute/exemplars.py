"""The bad events of an SLO's SLI as one SQL predicate, for exemplars (``sloengine traces``).

Built from the same filter compiler as the buckets (``filters.predicate``) and with the same
rules as ``buckets._event_query``, so an exemplar is exactly an event the SLI counted as bad:

* ratio: ``total AND coalesce(bad, FALSE)``, or ``total AND NOT coalesce(good, FALSE)``;
* latency: ``total AND duration_ns IS NOT NULL AND duration_ns > threshold`` (good is
  ``duration ≤ threshold``).

Only span and log sources have individual events; metric and Prometheus SLIs have none.
"""

from __future__ import annotations

from typing import Any

from sloengine.compute.filters import predicate
from sloengine.errors import ConfigError
from sloengine.spec.model import SLO, LatencyIndicator, LogSource, SpanSource


def bad_event_filter(slo: SLO) -> tuple[str, str, list[Any]]:
    """``(table, where_sql, params)`` selecting the SLI's bad events (``spans`` or ``logs``)."""
    ind = slo.spec.indicator
    total = ind.total
    name = slo.metadata.name
    if not isinstance(total, SpanSource | LogSource):
        raise ConfigError(f"SLO {name}: exemplars need span or log events; this SLI reads "
                          f"{total.source}, which has no individual requests")
    source = total.source
    params: list[Any] = []
    where = predicate(source, total.where, params)
    if isinstance(ind, LatencyIndicator):
        params.append(int(ind.threshold.total_seconds() * 1e9))
        return source, f"({where}) AND duration_ns IS NOT NULL AND duration_ns > ?", params
    flt = ind.bad if ind.bad is not None else ind.good
    if not isinstance(flt, dict):
        raise ConfigError(f"SLO {name}: for {source}, good/bad must be a filter on the same "
                          "events (e.g. {error: true})")
    cond = f"coalesce(({predicate(source, flt, params)}), FALSE)"
    if ind.bad is None:
        cond = f"NOT {cond}"
    return source, f"({where}) AND {cond}", params
