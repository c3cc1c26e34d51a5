"""Per-minute good/total buckets per SLO and group, materialised incrementally in DuckDB.

Every SLI — spans, logs, OTLP metrics, later PromQL — lands in the same ``slo_buckets``
table; budgets and burn rates are window sums over these buckets (SLO-MATH.md "Windows": an
event belongs to the minute of its END time, everywhere).

Incremental: the store's lineage says which batches arrived since the last run; the minutes
they touch are recomputed from scratch for each SLO (delete + insert), so late data updates
the affected buckets and re-running gives identical results.
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
from sloengine.store import Store

NS_PER_MIN = 60_000_000_000
_TIME_COL = {"spans": "end_time_unix_nano", "logs": "time_unix_nano",
             "metrics": "time_unix_nano"}
_TABLE = {"spans": "spans", "logs": "logs", "metrics": "metric_points"}
#: How far before a recomputed range cumulative metric points are read, to difference them.
_METRIC_LOOKBACK_MIN = 24 * 60
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


def _event_query(slo: SLO, source: str) -> BucketQuery:
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
    tcol = _TIME_COL[source]
    sql = (
        f"SELECT {grp} AS grp, ({tcol} // {NS_PER_MIN})::BIGINT AS minute, "
        f"sum(CASE WHEN {good} THEN 1 ELSE 0 END)::DOUBLE AS good, count(*)::DOUBLE AS total "
        f"FROM {_TABLE[source]} WHERE ({total_pred}){extra_total} "
        f"AND {tcol} >= ? AND {tcol} < ? GROUP BY ALL"
    )
    return BucketQuery(sql, params, source)


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


def materialize(store: Store, slo: SLO, *, lateness_minutes: int | None = None,
                now: Any = None) -> dict[str, Any]:
    """Bring the SLO's buckets up to date with everything ingested; returns what was done."""
    q = bucket_query(slo)
    name = slo.metadata.name
    ihash = indicator_hash(slo)
    if q.source == "prometheus":
        return {"slo": name, "source": "prometheus", "minutes": 0, "note": q.note}
    state = store.rows("SELECT indicator_hash, last_batch_id, max_minute FROM slo_materialized "
                       "WHERE slo_name = ?", [name])
    table, tcol = _TABLE[q.source], _TIME_COL[q.source]
    last_batch = int(store.one("SELECT coalesce(max(batch_id), 0) FROM ingest_batches"))
    rebuild = not state or state[0][0] != ihash
    if rebuild:
        lo_hi = store.rows(f"SELECT min({tcol}), max({tcol}) FROM {table}")[0]
        prev_max = None
    else:
        prev_batch, prev_max = int(state[0][1]), state[0][2]
        if prev_batch >= last_batch:
            return {"slo": name, "source": q.source, "minutes": 0, "rebuild": False}
        lo_hi = store.rows(f"SELECT min({tcol}), max({tcol}) FROM {table} WHERE batch_id > ?",
                           [prev_batch])[0]
    lo_ns, hi_ns = lo_hi
    late_skipped = 0
    with store.transaction():
        if rebuild:
            store.exec_("DELETE FROM slo_buckets WHERE slo_name = ?", [name])
        minutes = 0
        if lo_ns is not None:
            lo_min, hi_min = int(lo_ns) // NS_PER_MIN, int(hi_ns) // NS_PER_MIN + 1
            if (not rebuild and lateness_minutes is not None and prev_max is not None
                    and lo_min < prev_max - lateness_minutes):
                late_skipped = prev_max - lateness_minutes - lo_min
                lo_min = prev_max - lateness_minutes
            lo_b, hi_b = lo_min * NS_PER_MIN, hi_min * NS_PER_MIN
            store.exec_("DELETE FROM slo_buckets WHERE slo_name = ? AND minute >= ? "
                        "AND minute < ?", [name, lo_min, hi_min])
            if q.source == "metrics":
                bounds = [lo_b - _METRIC_LOOKBACK_MIN * NS_PER_MIN, hi_b, lo_b]
            else:
                bounds = [lo_b, hi_b]
            store.exec_(
                f"INSERT INTO slo_buckets SELECT ?, ?, grp, minute, good, total FROM ({q.sql}) "
                f"WHERE total > 0 OR good > 0", [name, ihash, *q.params, *bounds])
            minutes = hi_min - lo_min
        max_minute = store.one("SELECT max(minute) FROM slo_buckets WHERE slo_name = ?", [name])
        store.exec_("INSERT OR REPLACE INTO slo_materialized VALUES (?, ?, ?, ?, ?, ?)",
                    [name, ihash, last_batch, max_minute, now or store.now(), q.note])
    return {"slo": name, "source": q.source, "minutes": minutes, "rebuild": rebuild,
            "late_minutes_skipped": late_skipped, "note": q.note}
