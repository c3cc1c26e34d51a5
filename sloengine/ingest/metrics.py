"""OTLP metrics (protobuf messages) → metric point columns.

Sum, Gauge, Histogram, ExponentialHistogram and Summary points keep their aggregation
temporality and monotonicity: a cumulative counter and a delta counter need different math
downstream, so the store must not lose which is which.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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


def exemplar_row(time_ns: int, value: float, tid_b: bytes, sid_b: bytes) -> dict[str, Any]:
    """One exemplar as stored: an invalid id means "not correlated" (OTLP-NOTES.md §2)."""
    tid = tid_b.hex() if tid_b and trace_id_problem(tid_b) is None else None
    sid = sid_b.hex() if sid_b and span_id_problem(sid_b) is None else None
    return {"time_unix_nano": time_ns, "value": value, "trace_id": tid, "span_id": sid}


def _exemplars(exs: Any) -> list[dict[str, Any]] | None:
    if not exs:
        return None
    out = []
    for e in exs:
        w = e.WhichOneof("value")
        value = float(e.as_int) if w == "as_int" else e.as_double
        out.append(exemplar_row(e.time_unix_nano, value, e.trace_id, e.span_id))
    return out


def point_problem(kind: str, v: dict[str, Any]) -> str | None:
    """Why a data point's values (as stored, see ``_point_values``) are invalid, or None."""
    if kind in ("gauge", "sum"):
        if "value" not in v:
            return "number data point has neither asInt nor asDouble"
    elif kind == "histogram":
        counts, bounds, count = v["bucket_counts"], v["explicit_bounds"], v["count"]
        if counts and len(counts) != len(bounds) + 1:
            return (
                f"histogram has {len(counts)} bucket counts for {len(bounds)} explicit bounds "
                "(must be bounds + 1)"
            )
        if any(b >= a for a, b in zip(bounds[1:], bounds, strict=False)):
            return "histogram explicit bounds are not strictly increasing"
        if counts and sum(counts) != count:
            return f"histogram count {count} != sum of bucket counts {sum(counts)}"
    elif kind == "exponential_histogram":
        total = sum(v["positive_bucket_counts"]) + sum(v["negative_bucket_counts"]) \
            + v["zero_count"]
        if total != v["count"]:
            return f"exponential histogram count {v['count']} != buckets + zero count {total}"
    return None


def _point_values(kind: str, p: Any) -> dict[str, Any]:
    """The kind-specific fields of one protobuf data point, as stored."""
    v: dict[str, Any] = {}
    if kind in ("gauge", "sum"):
        w = p.WhichOneof("value")
        if w == "as_int":
            v["value_int"] = p.as_int
            v["value"] = float(p.as_int)
        elif w == "as_double":
            v["value"] = p.as_double
    elif kind == "histogram":
        v.update(count=p.count, bucket_counts=list(p.bucket_counts),
                 explicit_bounds=list(p.explicit_bounds))
        v["sum"] = p.sum if p.HasField("sum") else None
        v["min"] = p.min if p.HasField("min") else None
        v["max"] = p.max if p.HasField("max") else None
    elif kind == "exponential_histogram":
        v.update(
            count=p.count, scale=p.scale, zero_count=p.zero_count,
            zero_threshold=p.zero_threshold, positive_offset=p.positive.offset,
            positive_bucket_counts=list(p.positive.bucket_counts),
            negative_offset=p.negative.offset,
            negative_bucket_counts=list(p.negative.bucket_counts),
        )
        v["sum"] = p.sum if p.HasField("sum") else None
        v["min"] = p.min if p.HasField("min") else None
        v["max"] = p.max if p.HasField("max") else None
    else:  # summary
        v.update(count=p.count, sum=p.sum,
                 quantiles=[{"quantile": q.quantile, "value": q.value}
                            for q in p.quantile_values])
    return v


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """What the points of one metric share."""

    name: str
    kind: str
    description: str | None
    unit: str | None
    temporality: str | None
    monotonic: bool | None
    service: str | None
    scope: str | None
    res_keys: list[str]
    res_vals: list[str]


def metric_info(name: str, kind: str, description: str, unit: str, temporality: int,
                monotonic: bool, service: str | None, scope: str | None,
                res_keys: list[str], res_vals: list[str]) -> MetricInfo:
    t = TEMPORALITY[temporality] if 0 <= temporality < len(TEMPORALITY) else TEMPORALITY[0]
    return MetricInfo(
        name, kind, description or None, unit or None,
        t if kind in ("sum", "histogram", "exponential_histogram") else None,
        monotonic if kind == "sum" else None, service, scope, res_keys, res_vals)


def add_point(out: PointColumns, m: MetricInfo, attrs: dict[str, Any], start: int, time: int,
              vals: dict[str, Any], flags: int, exemplars: list[dict[str, Any]] | None) -> None:
    """Append one valid data point (both decoders: protobuf here, OTLP/JSON in
    otlp_json.py)."""
    c = out.cols
    c["point_id"].append(record_id(
        m.name, m.kind, m.service, m.res_vals, sorted(attrs.items()), start, time,
        {k: val for k, val in vals.items() if k != "quantiles"}, vals.get("quantiles")))
    c["metric_name"].append(m.name)
    c["description"].append(m.description)
    c["unit"].append(m.unit)
    c["metric_type"].append(m.kind)
    c["temporality"].append(m.temporality)
    c["is_monotonic"].append(m.monotonic)
    c["service_name"].append(m.service)
    c["scope_name"].append(m.scope)
    c["start_time_unix_nano"].append(start or None)
    c["time_unix_nano"].append(time)
    for f in _NULL_FIELDS:
        c[f].append(vals.get(f))
    c["flags"].append(flags)
    c["exemplars"].append(exemplars if m.kind != "summary" else None)
    for k, val in attrs.items():
        out.attrs.keys.append(k)
        out.attrs.values.append(to_text(val))
    out.attrs.close_row()
    out.resource.keys.extend(m.res_keys)
    out.resource.values.extend(m.res_vals)
    out.resource.close_row()
    out.n += 1


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
                    state.reject(where, NO_DATA, m.SerializeToString(), "metrics")
                    continue
                if not m.name:
                    state.reject(where, NO_NAME, m.SerializeToString(), "metrics")
                    continue
                data = getattr(m, which)
                info = metric_info(
                    m.name, which, m.description, m.unit,
                    getattr(data, "aggregation_temporality", 0) or 0,
                    data.is_monotonic if which == "sum" else False, service, scope,
                    res_keys, res_vals)
                for pi, p in enumerate(data.data_points):
                    vals = _point_values(which, p)
                    problem = point_problem(which, vals)
                    if problem is not None:
                        state.reject(f"{where}.dataPoints[{pi}]", problem,
                                     p.SerializeToString(), "metrics")
                        continue
                    add_point(out, info, attributes_dict(p.attributes),
                              p.start_time_unix_nano, p.time_unix_nano, vals, p.flags,
                              _exemplars(p.exemplars) if which != "summary" else None)
                    if out.n >= limit:
                        yield finish_points(out, state)
                        out = PointColumns()
    if out.n or state.dead_letters or state.warnings:
        yield finish_points(out, state)


NO_DATA = "metric has no data (gauge/sum/histogram/...)"
NO_NAME = "metric has no name"


def finish_points(out: PointColumns, state: DecodeState) -> Chunk:
    dead, warnings = state.take()
    return Chunk(metric_points=out.table(), dead_letters=dead, warnings=warnings)

