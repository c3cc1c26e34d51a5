"""OTLP metrics (protobuf messages) → metric point columns.

Sum, Gauge, Histogram, ExponentialHistogram and Summary points keep their aggregation
temporality and monotonicity: a cumulative counter and a delta counter need different math
downstream, so the store must not lose which is which.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sloengine.ingest.anyvalue import attributes_dict, resource_columns
from sloengine.ingest.columns import POINT_SCHEMA, STR_MAP, MapColumn, table, to_text
from sloengine.ingest.context import DecodeState, span_id_problem, trace_id_problem
from sloengine.ingest.logs import record_id
from sloengine.model import Chunk

TEMPORALITY = ("unspecified", "delta", "cumulative")
_DATA_KINDS = {
    "gauge": "gauge",
    "sum": "sum",
    "histogram": "histogram",
    "exponential_histogram": "exponential_histogram",
    "summary": "summary",
}
_NULL_FIELDS = (
    "value", "value_int", "count", "sum", "min", "max", "bucket_counts", "explicit_bounds",
    "scale", "zero_count", "zero_threshold", "positive_offset", "positive_bucket_counts",
    "negative_offset", "negative_bucket_counts", "quantiles",
)


class PointColumns:
    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {f.name: [] for f in POINT_SCHEMA}
        self.attrs = MapColumn()
        self.resource = MapColumn()
        self.n = 0

    def table(self) -> Any:
        cols: dict[str, Any] = dict(self.cols)
        cols["attributes"] = self.attrs.array(STR_MAP)
        cols["resource_attributes"] = self.resource.array(STR_MAP)
        return table(POINT_SCHEMA, cols)


def _exemplars(exs: Any) -> list[dict[str, Any]] | None:
    if not exs:
        return None
    out = []
    for e in exs:
        tid = e.trace_id.hex() if e.trace_id and trace_id_problem(e.trace_id) is None else None
        sid = e.span_id.hex() if e.span_id and span_id_problem(e.span_id) is None else None
        w = e.WhichOneof("value")
        value = float(e.as_int) if w == "as_int" else e.as_double
        out.append({"time_unix_nano": e.time_unix_nano, "value": value, "trace_id": tid,
                    "span_id": sid})
    return out


def _point_values(kind: str, p: Any) -> tuple[dict[str, Any], str | None]:
    """The kind-specific fields of one data point, or a reason it is invalid."""
    v: dict[str, Any] = {}
    if kind in ("gauge", "sum"):
        w = p.WhichOneof("value")
        if w == "as_int":
            v["value_int"] = p.as_int
            v["value"] = float(p.as_int)
        elif w == "as_double":
            v["value"] = p.as_double
        else:
            return v, "number data point has neither asInt nor asDouble"
    elif kind == "histogram":
        counts, bounds = list(p.bucket_counts), list(p.explicit_bounds)
        if counts and len(counts) != len(bounds) + 1:
            return v, (
                f"histogram has {len(counts)} bucket counts for {len(bounds)} explicit bounds "
                "(must be bounds + 1)"
            )
        if any(b >= a for a, b in zip(bounds[1:], bounds, strict=False)):
            return v, "histogram explicit bounds are not strictly increasing"
        if counts and sum(counts) != p.count:
            return v, f"histogram count {p.count} != sum of bucket counts {sum(counts)}"
        v.update(count=p.count, bucket_counts=counts, explicit_bounds=bounds)
        v["sum"] = p.sum if p.HasField("sum") else None
        v["min"] = p.min if p.HasField("min") else None
        v["max"] = p.max if p.HasField("max") else None
    elif kind == "exponential_histogram":
        pos, neg = list(p.positive.bucket_counts), list(p.negative.bucket_counts)
        total = sum(pos) + sum(neg) + p.zero_count
        if total != p.count:
            return v, f"exponential histogram count {p.count} != buckets + zero count {total}"
        v.update(
            count=p.count, scale=p.scale, zero_count=p.zero_count,
            zero_threshold=p.zero_threshold, positive_offset=p.positive.offset,
            positive_bucket_counts=pos, negative_offset=p.negative.offset,
            negative_bucket_counts=neg,
        )
        v["sum"] = p.sum if p.HasField("sum") else None
        v["min"] = p.min if p.HasField("min") else None
        v["max"] = p.max if p.HasField("max") else None
    else:  # summary
        v.update(count=p.count, sum=p.sum,
                 quantiles=[{"quantile": q.quantile, "value": q.value}
                            for q in p.quantile_values])
    return v, None


def decode_metrics_request(req: Any, state: DecodeState) -> Iterator[Chunk]:
    """Yield chunks of metric points from an ExportMetricsServiceRequest."""
    limit = state.options.chunk_records
    out = PointColumns()
    for ri, rm in enumerate(req.resource_metrics):
        service, res_keys, res_vals = resource_columns(rm.resource)
        for si, sm in enumerate(rm.scope_metrics):
            scope = sm.scope.name or None
            for mi, m in enumerate(sm.metrics):
                which = m.WhichOneof("data")
                where = f"resourceMetrics[{ri}].scopeMetrics[{si}].metrics[{mi}] ({m.name!r})"
                if which is None or which not in _DATA_KINDS:
                    state.reject(where, "metric has no data (gauge/sum/histogram/...)",
                                 m.SerializeToString(), "metrics")
                    continue
                if not m.name:
                    state.reject(where, "metric has no name", m.SerializeToString(), "metrics")
                    continue
                data = getattr(m, which)
                temporality = TEMPORALITY[getattr(data, "aggregation_temporality", 0) or 0]
                monotonic = data.is_monotonic if which == "sum" else None
                for pi, p in enumerate(data.data_points):
                    vals, problem = _point_values(which, p)
                    if problem is not None:
                        state.reject(f"{where}.dataPoints[{pi}]", problem,
                                     p.SerializeToString(), "metrics")
                        continue
                    attrs = attributes_dict(p.attributes)
                    c = out.cols
                    c["point_id"].append(record_id(
                        m.name, which, service, res_vals, sorted(attrs.items()),
                        p.start_time_unix_nano, p.time_unix_nano,
                        {k: val for k, val in vals.items() if k != "quantiles"},
                        vals.get("quantiles")))
                    c["metric_name"].append(m.name)
                    c["description"].append(m.description or None)
                    c["unit"].append(m.unit or None)
                    c["metric_type"].append(which)
                    c["temporality"].append(temporality if which in ("sum", "histogram",
                                            "exponential_histogram") else None)
                    c["is_monotonic"].append(monotonic)
                    c["service_name"].append(service)
                    c["scope_name"].append(scope)
                    c["start_time_unix_nano"].append(p.start_time_unix_nano or None)
                    c["time_unix_nano"].append(p.time_unix_nano)
                    for f in _NULL_FIELDS:
                        c[f].append(vals.get(f))
                    c["flags"].append(p.flags)
                    c["exemplars"].append(
                        _exemplars(p.exemplars) if which != "summary" else None)
                    for k, val in attrs.items():
                        out.attrs.keys.append(k)
                        out.attrs.values.append(to_text(val))
                    out.attrs.close_row()
                    out.resource.keys.extend(res_keys)
                    out.resource.values.extend(res_vals)
                    out.resource.close_row()
                    out.n += 1
                    if out.n >= limit:
                        yield _finish(out, state)
                        out = PointColumns()
    if out.n or state.dead_letters or state.warnings:
        yield _finish(out, state)


def _finish(out: PointColumns, state: DecodeState) -> Chunk:
    dead, warnings = state.take()
    return Chunk(metric_points=out.table(), dead_letters=dead, warnings=warnings)

