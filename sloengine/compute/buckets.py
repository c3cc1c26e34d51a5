"""Per-minute good/total buckets per SLO and group, materialised incrementally in DuckDB.

Every SLI — spans, logs, OTLP metrics, later PromQL — lands in the same ``slo_buckets``
table; budgets and burn rates are window sums over these buckets (SLO-MATH.md "Windows": an
event belongs to the minute of its END time, everywhere).

This module builds the SQL; ``incremental.py`` runs it as new batches arrive.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from sloengine.compute.filters import group_expr, predicate
from sloengine.errors import ConfigError
from sloengine.spec.model import (
    SLO,
    LatencyIndicator,
    LogSource,
    MetricSource,
    PromSource,
    RatioIndicator,
    SpanSource,
)

NS_PER_MIN = 60_000_000_000
TIME_COL = {"spans": "end_time_unix_nano", "logs": "time_unix_nano",
             "metrics": "time_unix_nano"}
TABLE = {"spans": "spans", "logs": "logs", "metrics": "metric_points"}
#: How far before a recomputed range cumulative metric points are read, to difference them.
METRIC_LOOKBACK_MIN = 24 * 60
_UNIT_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0}


@dataclass(frozen=True, slots=True)
class BucketQuery:
    """SQL yielding (grp, minute, good, total) for events ending in [lo_ns, hi_ns)."""

    sql: str
    params: list[Any]
    source: str  # spans | logs | metrics | prometheus
    note: str | None = None


def indicator_hash(slo: SLO) -> str:
    data = {"indicator": slo.spec.indicator.model_dump(mode="json", by_alias=True),
            "groupBy": slo.spec.group_by}
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def bucket_query(slo: SLO) -> BucketQuery:
    ind = slo.spec.indicator
    total = ind.total
    if isinstance(total, PromSource):
        return BucketQuery("", [], "prometheus", "pulled by the Prometheus source")
    if isinstance(total, SpanSource | LogSource):
        return _event_query(slo, total.source)
    return _metric_query(slo, total)


@dataclass(frozen=True, slots=True)
class EventParts:
    """An event SLI as expressions over one row of its table: group, good flag, and the
    predicate that makes the row an event of the SLI; ``params`` in that order."""

    grp: str
    good: str
    total: str
    params: list[Any]


def event_parts(slo: SLO, source: str) -> EventParts:
    ind = slo.spec.indicator
    params: list[Any] = []
    grp = group_expr(source, slo.spec.group_by, params)
    total_src = ind.total
    assert isinstance(total_src, SpanSource | LogSource)
    good_params: list[Any] = []
    if isinstance(ind, LatencyIndicator):
        thr_ns = int(ind.threshold.total_seconds() * 1e9)
        good = "duration_ns <= ?"
        good_params.append(thr_ns)
        extra_total = " AND duration_ns IS NOT NULL"
    else:
        flt = ind.good if ind.good is not None else ind.bad
        if not isinstance(flt, dict):
            raise ConfigError(f"SLO {slo.metadata.name}: for {source}, good/bad must be a "
                              "filter on the same events (e.g. {error: true})")
        cond = predicate(source, flt, good_params)
        good = f"coalesce(({cond}), FALSE)"
        if ind.bad is not None:
            good = f"NOT {good}"
        extra_total = ""
    params.extend(good_params)
    total_params: list[Any] = []
    total_pred = predicate(source, total_src.where, total_params)
    params.extend(total_params)
    return EventParts(grp, good, f"({total_pred}){extra_total}", params)


def _event_query(slo: SLO, source: str) -> BucketQuery:
    e = event_parts(slo, source)
    tcol = TIME_COL[source]
    sql = (
        f"SELECT {e.grp} AS grp, ({tcol} // {NS_PER_MIN})::BIGINT AS minute, "
        f"sum(CASE WHEN {e.good} THEN 1 ELSE 0 END)::DOUBLE AS good, count(*)::DOUBLE AS total "
        f"FROM {TABLE[source]} WHERE {e.total} "
        f"AND {tcol} >= ? AND {tcol} < ? GROUP BY ALL"
    )
    return BucketQuery(sql, e.params, source)


def events_sql(source: str, jobs: list[tuple[str, str, SLO, int, int]]
               ) -> tuple[str, list[Any]]:
    """The bucket rows (slo_name, indicator_hash, grp, minute, good, total) of several event
    SLOs over one table, each for its minutes [lo, hi): one scan and one aggregation for all
    (a row becomes one struct per SLO it counts for), instead of one query per SLO — per
    query, not per row, is what a tick of a few hundred new events pays for."""
    tcol = TIME_COL[source]
    structs, params = [], []
    for name, ihash, slo, lo, hi in jobs:
        e = event_parts(slo, source)
        structs.append(
            f"{{'n': ?::VARCHAR, 'h': ?::VARCHAR, 'grp': ({e.grp})::VARCHAR,"
            f" 'good': coalesce(({e.good}), FALSE), 'keep': coalesce(({e.total}), FALSE)"
            f" AND {tcol} >= {lo * NS_PER_MIN} AND {tcol} < {hi * NS_PER_MIN}}}")
        params += [name, ihash, *e.params]
    lo_all = min(j[3] for j in jobs) * NS_PER_MIN
    hi_all = max(j[4] for j in jobs) * NS_PER_MIN
    sql = (
        f"SELECT s.n, s.h, s.grp, minute, sum(CASE WHEN s.good THEN 1 ELSE 0 END)::DOUBLE,"
        f" count(*)::DOUBLE FROM (SELECT ({tcol} // {NS_PER_MIN})::BIGINT AS minute,"
        f" unnest([{', '.join(structs)}]) AS s FROM {TABLE[source]}"
        f" WHERE {tcol} >= {lo_all} AND {tcol} < {hi_all}) WHERE s.keep GROUP BY ALL")
    return sql, params


def _metric_query(slo: SLO, total: MetricSource) -> BucketQuery:
    """Counters (Sum) for ratios, Histograms for latency; cumulative points are differenced
    per series (a drop means a reset: the new value is the increase), delta points are
    increases already."""
    ind = slo.spec.indicator
    params: list[Any] = []
    grp = group_expr("metrics", slo.spec.group_by, params)
    note = None
    if isinstance(ind, LatencyIndicator):
        thr = ind.threshold.total_seconds()
        # threshold in the histogram's unit; bucket i (1-based) holds (bounds[i-1], bounds[i]]
        good_expr = (
            "CASE WHEN k = 0 THEN 0 ELSE list_sum(bucket_counts[1:k]) END"
            " + CASE WHEN k < len(explicit_bounds) AND explicit_bounds[k + 1] > thr_u"
            "   THEN bucket_counts[k + 1] * (thr_u - CASE WHEN k = 0 THEN 0 ELSE"
            "   explicit_bounds[k] END) / (explicit_bounds[k + 1] - CASE WHEN k = 0 THEN 0"
            "   ELSE explicit_bounds[k] END) ELSE 0 END"
        )
        unit_case = " ".join(f"WHEN '{u}' THEN {1.0 / f!r}" for u, f in _UNIT_SECONDS.items())
        t_params: list[Any] = []
        t_pred = predicate("metrics", total.where, t_params)
        select = (
            f"SELECT {grp} AS grp, metric_name, service_name, attributes, resource_attributes,"
            f" start_time_unix_nano, time_unix_nano, temporality, count::DOUBLE AS tot_v,"
            f" ({good_expr})::DOUBLE AS good_v FROM (SELECT *,"
            f"  ? * CASE coalesce(unit, 's') {unit_case} ELSE 1.0 END AS thr_u,"
            f"  len(list_filter(explicit_bounds, lambda b: b <= ? * CASE coalesce(unit, 's')"
            f"   {unit_case} ELSE 1.0 END)) AS k"
            f"  FROM metric_points WHERE metric_name = ? AND metric_type = 'histogram'"
            f"  AND ({t_pred}) AND time_unix_nano >= ? AND time_unix_nano < ?)"
        )
        params = [*params, thr, thr, total.metric, *t_params]
        note = ("latency from histogram buckets: exact when the threshold is a bucket bound, "
                "linearly interpolated inside the bucket that contains it otherwise")
        sql = _difference(select)
        return BucketQuery(sql, params, "metrics", note)
    assert isinstance(ind, RatioIndicator)
    t_params = []
    t_pred = predicate("metrics", total.where, t_params)
    other = ind.good if ind.good is not None else ind.bad
    if isinstance(other, MetricSource):
        o_params: list[Any] = []
        o_pred = predicate("metrics", other.where, o_params)
        flag_sql = f"(metric_name = ? AND ({o_pred}))"
        flag_params: list[Any] = [other.metric, *o_params]
        where = f"((metric_name = ? AND ({t_pred})) OR {flag_sql})"
        where_params = [total.metric, *t_params, *flag_params]
        is_total = f"(metric_name = ? AND ({t_pred}))"
        is_total_params = [total.metric, *t_params]
    elif isinstance(other, dict):
        o_params = []
        flag_sql = f"coalesce(({predicate('metrics', other, o_params)}), FALSE)"
        flag_params = o_params
        where = f"(metric_name = ? AND ({t_pred}))"
        where_params = [total.metric, *t_params]
        is_total, is_total_params = "TRUE", []
    else:
        raise ConfigError(f"SLO {slo.metadata.name}: a metrics ratio needs good/bad as a "
                          "metric source or a filter on the total metric's attributes")
    flag = flag_sql if ind.good is not None else f"NOT {flag_sql}"
    select = (
        f"SELECT {grp} AS grp, metric_name, service_name, attributes, resource_attributes,"
        f" start_time_unix_nano, time_unix_nano, temporality,"
        f" CASE WHEN {is_total} THEN value ELSE 0 END AS tot_v,"
        f" CASE WHEN {flag} THEN value ELSE 0 END AS good_v"
        f" FROM metric_points WHERE metric_type = 'sum' AND {where}"
        f" AND time_unix_nano >= ? AND time_unix_nano < ?"
    )
    params = [*params, *is_total_params, *flag_params, *where_params]
    if ind.bad is not None and isinstance(other, MetricSource):
        # bad from a separate series: good = total - bad, computed after differencing
        select = select.replace(f"CASE WHEN {flag} THEN value", f"CASE WHEN {flag_sql} THEN value")
        return BucketQuery(_difference(select, bad_series=True), params, "metrics", note)
    return BucketQuery(_difference(select), params, "metrics", note)


def _difference(select: str, bad_series: bool = False) -> str:
    """Increases per series per minute. Params: (..., lo_ns - lookback, hi_ns) inside
    ``select``, then (lo_ns) to keep only minutes of the range."""
    good = "sum(total) - sum(good)" if bad_series else "sum(good)"
    return (
        f"WITH p AS ({select}), d AS (SELECT grp, time_unix_nano,"
        f" CASE WHEN temporality = 'delta' THEN tot_v"
        f"  WHEN lag(tot_v) OVER w IS NULL OR tot_v < lag(tot_v) OVER w THEN tot_v"
        f"  ELSE tot_v - lag(tot_v) OVER w END AS total,"
        f" CASE WHEN temporality = 'delta' THEN good_v"
        f"  WHEN lag(good_v) OVER w IS NULL OR good_v < lag(good_v) OVER w THEN good_v"
        f"  ELSE good_v - lag(good_v) OVER w END AS good"
        f" FROM p WINDOW w AS (PARTITION BY metric_name, service_name, attributes,"
        f"  resource_attributes, start_time_unix_nano ORDER BY time_unix_nano))"
        f" SELECT grp, (time_unix_nano // {NS_PER_MIN})::BIGINT AS minute,"
        f" ({good})::DOUBLE AS good, sum(total)::DOUBLE AS total FROM d"
        f" WHERE time_unix_nano >= ? GROUP BY ALL"
    )
