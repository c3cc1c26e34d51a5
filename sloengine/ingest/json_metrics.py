"""OTLP/JSON metrics → the point columns of metrics.py (its ``point_problem`` and
``add_point`` decide and store, as for protobuf). Point values are read as ``_point_values``
reads a protobuf point: absent optional ``sum``/``min``/``max`` stay None, histogram
``bucketCounts``/``explicitBounds`` and exponential ``positive``/``negative`` offset +
``bucketCounts`` become lists, exemplars keep their (hex) ids only when valid."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from sloengine.ingest import json_walk as jw
from sloengine.ingest.context import DecodeState
from sloengine.ingest.json_walk import BadRecord, fail
from sloengine.ingest.metrics import (
    NO_DATA,
    NO_NAME,
    PointColumns,
    add_point,
    exemplar_row,
    finish_points,
    metric_info,
    point_problem,
)
from sloengine.model import Chunk

_METRIC = jw.aliases(pb.Metric.DESCRIPTOR)
#: JSON name of the data member → (stored kind, aliases of the data message, of its points)
_KINDS = {
    "gauge": ("gauge", jw.aliases(pb.Gauge.DESCRIPTOR), jw.aliases(pb.NumberDataPoint.DESCRIPTOR)),
    "sum": ("sum", jw.aliases(pb.Sum.DESCRIPTOR), jw.aliases(pb.NumberDataPoint.DESCRIPTOR)),
    "histogram": ("histogram", jw.aliases(pb.Histogram.DESCRIPTOR),
                  jw.aliases(pb.HistogramDataPoint.DESCRIPTOR)),
    "exponentialHistogram": ("exponential_histogram",
                             jw.aliases(pb.ExponentialHistogram.DESCRIPTOR),
                             jw.aliases(pb.ExponentialHistogramDataPoint.DESCRIPTOR)),
    "summary": ("summary", jw.aliases(pb.Summary.DESCRIPTOR),
                jw.aliases(pb.SummaryDataPoint.DESCRIPTOR)),
}
_BUCKETS = jw.aliases(pb.ExponentialHistogramDataPoint.Buckets.DESCRIPTOR)
_QUANTILE = jw.aliases(pb.SummaryDataPoint.ValueAtQuantile.DESCRIPTOR)
_EXEMPLAR = jw.aliases(pb.Exemplar.DESCRIPTOR)
_TEMPORALITY = jw.enum_names(pb.AggregationTemporality.DESCRIPTOR)


class MetricWalker:
    """Metrics of OTLP/JSON scopes into point columns, chunk by chunk."""

    def __init__(self, state: DecodeState) -> None:
        self.state = state
        self.limit = state.options.chunk_records
        self.out = PointColumns()

    def walk(self, metrics: list[Any], loc: str, service: str | None, res_keys: list[str],
             res_vals: list[str], scope: str | None) -> Iterator[Chunk]:
        state = self.state
        for mi, m in enumerate(metrics):
            where = f"{loc}[{mi}]"
            try:
                d = jw.canon(m, _METRIC, "metric")
                name = jw.text(d.get("name"), "name")
                description = jw.text(d.get("description"), "description")
                unit = jw.text(d.get("unit"), "unit")
                jw.attributes(d.get("metadata"), "metadata")
                present = [k for k in _KINDS if d.get(k) is not None]
                if len(present) > 1:
                    raise fail(present[1], 'Metric should not have multiple "data" oneof fields')
                if present:
                    kind, data_names, point_names = _KINDS[present[0]]
                    data = jw.canon(d[present[0]], data_names, present[0])
                    temporality = jw.enum(data.get("aggregationTemporality"), _TEMPORALITY,
                                          f"{present[0]}.aggregationTemporality")
                    monotonic = jw.boolean(data.get("isMonotonic"),
                                           f"{present[0]}.isMonotonic")
                    points = jw.items(data.get("dataPoints"), f"{present[0]}.dataPoints")
            except BadRecord as exc:
                state.reject(where, str(exc), orjson.dumps(m), "metrics")
                continue
            where = f"{where} ({name!r})"
            if not present:
                state.reject(where, NO_DATA, orjson.dumps(m), "metrics")
                continue
            if not name:
                state.reject(where, NO_NAME, orjson.dumps(m), "metrics")
                continue
            info = metric_info(name, kind, description, unit, temporality, monotonic, service,
                               scope, res_keys, res_vals)
            for pi, p in enumerate(points):
                try:
                    pd = jw.canon(p, point_names, "data point")
                    vals = _values(kind, pd)
                    problem = point_problem(kind, vals)
                    if problem is not None:
                        raise BadRecord(problem)
                    attrs = jw.attributes(pd.get("attributes"), "attributes")
                    start = jw.u64(pd.get("startTimeUnixNano"), "startTimeUnixNano")
                    time_ns = jw.u64(pd.get("timeUnixNano"), "timeUnixNano")
                    flags = jw.u32(pd.get("flags"), "flags")
                    exemplars = None if kind == "summary" else _exemplars(pd.get("exemplars"))
                except BadRecord as exc:
                    state.reject(f"{where}.dataPoints[{pi}]", str(exc), orjson.dumps(p),
                                 "metrics")
                    continue
                add_point(self.out, info, attrs, start, time_ns, vals, flags, exemplars)
                if self.out.n >= self.limit:
                    yield finish_points(self.out, state)
                    self.out = PointColumns()

    def finish(self) -> Iterator[Chunk]:
        if self.out.n:
            yield finish_points(self.out, self.state)
            self.out = PointColumns()


def _optional(pd: dict[str, Any], key: str) -> float | None:
    v = pd.get(key)
    return None if v is None else jw.double(v, key)


def _values(kind: str, pd: dict[str, Any]) -> dict[str, Any]:
    v: dict[str, Any] = {}
    if kind in ("gauge", "sum"):
        ai, ad = pd.get("asInt"), pd.get("asDouble")
        if ai is not None and ad is not None:
            raise fail("asDouble", 'NumberDataPoint should not have multiple "value" oneof '
                       "fields")
        if ai is not None:
            v["value_int"] = n = jw.integer(ai, "asInt", *jw.I64)
            v["value"] = float(n)
        elif ad is not None:
            v["value"] = jw.double(ad, "asDouble")
    elif kind == "histogram":
        v["count"] = jw.u64(pd.get("count"), "count")
        v["bucket_counts"] = [jw.u64(c, f"bucketCounts[{i}]") for i, c in
                              enumerate(jw.items(pd.get("bucketCounts"), "bucketCounts"))]
        v["explicit_bounds"] = [jw.double(b, f"explicitBounds[{i}]") for i, b in
                                enumerate(jw.items(pd.get("explicitBounds"),
                                                   "explicitBounds"))]
        v["sum"], v["min"], v["max"] = (_optional(pd, "sum"), _optional(pd, "min"),
                                        _optional(pd, "max"))
    elif kind == "exponential_histogram":
        v["count"] = jw.u64(pd.get("count"), "count")
        v["scale"] = jw.integer(pd.get("scale") or 0, "scale", *jw.I32)
        v["zero_count"] = jw.u64(pd.get("zeroCount"), "zeroCount")
        zt = pd.get("zeroThreshold")
        v["zero_threshold"] = 0.0 if zt is None else jw.double(zt, "zeroThreshold")
        for side in ("positive", "negative"):
            b = {} if pd.get(side) is None else jw.canon(pd[side], _BUCKETS, side)
            v[f"{side}_offset"] = jw.integer(b.get("offset") or 0, f"{side}.offset", *jw.I32)
            v[f"{side}_bucket_counts"] = [
                jw.u64(c, f"{side}.bucketCounts[{i}]") for i, c in
                enumerate(jw.items(b.get("bucketCounts"), f"{side}.bucketCounts"))]
        v["sum"], v["min"], v["max"] = (_optional(pd, "sum"), _optional(pd, "min"),
                                        _optional(pd, "max"))
    else:  # summary
        s = pd.get("sum")
        v["count"] = jw.u64(pd.get("count"), "count")
        v["sum"] = 0.0 if s is None else jw.double(s, "sum")
        quantiles = []
        for i, q in enumerate(jw.items(pd.get("quantileValues"), "quantileValues")):
            qd = jw.canon(q, _QUANTILE, f"quantileValues[{i}]")
            qq, qv = qd.get("quantile"), qd.get("value")
            quantiles.append({
                "quantile": 0.0 if qq is None else jw.double(qq, f"quantileValues[{i}].quantile"),
                "value": 0.0 if qv is None else jw.double(qv, f"quantileValues[{i}].value")})
        v["quantiles"] = quantiles
    return v


def _exemplars(exs: Any) -> list[dict[str, Any]] | None:
    rows = []
    for i, e in enumerate(jw.items(exs, "exemplars")):
        path = f"exemplars[{i}]"
        d = jw.canon(e, _EXEMPLAR, path)
        jw.attributes(d.get("filteredAttributes"), f"{path}.filteredAttributes")
        ai, ad = d.get("asInt"), d.get("asDouble")
        if ai is not None and ad is not None:
            raise fail(f"{path}.asDouble", 'Exemplar should not have multiple "value" oneof '
                       "fields")
        value = (float(jw.integer(ai, f"{path}.asInt", *jw.I64)) if ai is not None
                 else 0.0 if ad is None else jw.double(ad, f"{path}.asDouble"))
        try:  # an exemplar with a bad id is kept, just not correlated
            tid = jw.hex_id(d.get("traceId"), "traceId", 16)
            sid = jw.hex_id(d.get("spanId"), "spanId", 8)
        except BadRecord:
            tid = sid = b""
        rows.append(exemplar_row(jw.u64(d.get("timeUnixNano"), f"{path}.timeUnixNano"), value,
                                 tid, sid))
    return rows or None
