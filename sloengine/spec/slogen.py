"""Google slo-generator (github.com/google/slo-generator, ``apiVersion: sre.google.com/v2``,
``kind: ServiceLevelObjective``) → native SLO dicts.

Mapping rules:

- ``metadata.name`` → name; ``metadata.labels`` → labels; service = label ``service_name``
  (or ``service``); ``spec.description`` → description; ``spec.goal`` → the one objective.
- ``backend: prometheus`` (or an alias ``prometheus/<suffix>``) only; the filters become
  PromQL exactly as slo-generator's Prometheus backend formats them (``_fmt_query``): the
  ``[window]`` placeholder (appended when missing) becomes ``[{{.window}}]``, wrapped in the
  ``operators`` (default ``increase`` then ``sum``) — the same placeholder Sloth queries use.
- ``method: good_bad_ratio``: ``filter_good`` with ``filter_valid`` → ratio good/total;
  with ``filter_bad`` (which slo-generator prefers over ``filter_valid``) → bad, total =
  good + bad.
- ``method: distribution_cut``: latency indicator over the histogram selector
  ``expression``; ``threshold_bucket`` (the ``le`` bound, in seconds) is the threshold.
- slo-generator has no SLO period and keeps its error budget policy (burn-rate steps) in its
  shared config: the window is rolling 28 days (the longest step of its default policy) and
  alerting uses sloengine's default policy; both reported as warnings.

Unsupported (errors): ``query_sli`` (a precomputed SLI), other methods, other backends.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field

from sloengine.spec.durations import format_duration
from sloengine.spec.importers import (
    Foreign,
    Lines,
    Native,
    Source,
    Text,
    labels_to_owner,
    parse,
)
from sloengine.spec.loader import DocContext

PERIOD = "28d"
DEFAULT_OPERATORS = ["increase", "sum"]


class GMeta(Foreign):
    name: Text
    labels: dict[str, Text] = Field(default_factory=dict)


class GSpec(Foreign):
    description: Text | None = None
    backend: Text
    method: Text
    exporters: list[Any] = Field(default_factory=list)
    service_level_indicator: dict[str, Any]
    goal: float
    error_budget_policy: Text | None = None
    frequency: Any = None


class GDoc(Foreign):
    api_version: Text = Field(alias="apiVersion")
    kind: Text
    metadata: GMeta
    spec: dict[str, Any]


class GRatio(Foreign):
    filter_good: Text
    filter_bad: Text | None = None
    filter_valid: Text | None = None
    operators: list[Text] | None = None


class GCut(Foreign):
    expression: Text
    threshold_bucket: float | Text | None = None
    operators: list[Text] | None = None


def convert(doc: dict[str, Any], src: Source) -> list[tuple[Native, DocContext]]:
    env = parse(GDoc, doc, src)
    if env is None:
        return []
    if env.api_version != "sre.google.com/v2":
        src.error(("apiVersion",), f"{env.api_version!r} is not supported: only "
                  "sre.google.com/v2 (convert v1 files with `slo-generator migrate`)")
        return []
    if env.kind != "ServiceLevelObjective":
        src.error(("kind",), f"slo-generator kind {env.kind!r} is not supported (only "
                  "ServiceLevelObjective)")
        return []
    sp = src.at("spec")
    spec = parse(GSpec, env.spec, sp)
    if spec is None:
        return []
    start = src.sink.raised
    lines = Lines(src.ctx.file, "slo-generator")
    lines.mark((), src)
    meta = _metadata(env.metadata, spec, src, lines)
    indicator = _indicator(spec, sp, lines)
    if src.sink.raised != start:
        return []
    lines.mark(("spec",), sp)
    lines.mark(("spec", "objectives"), sp, ("goal",))
    lines.mark(("spec", "objectives", 0, "target"), sp, ("goal",))
    lines.mark(("spec", "window"), sp)
    if spec.error_budget_policy is not None:
        sp.warn(("error_budget_policy",), f"error budget policy {spec.error_budget_policy!r} "
                "lives in slo-generator's shared config and is not read: sloengine's default "
                "policy is used (SRE workbook tiers for the period)")
    sp.warn(("goal",), f"slo-generator has no SLO period: a rolling {PERIOD} window is assumed "
            "(the longest step of its default error budget policy)")
    if spec.exporters:
        sp.warn(("exporters",), "exporters are slo-generator-specific: ignored (sloengine "
                "exports through its own export stage)")
    if spec.frequency is not None:
        sp.warn(("frequency",), "frequency is ignored: the sloengine scheduler evaluates")
    native = {"apiVersion": "sloengine/v1", "kind": "SLO", "metadata": meta,
              "spec": {"indicator": indicator, "objectives": [{"target": spec.goal}],
                       "window": {"rolling": PERIOD}}}
    return [(native, lines.context())]


def _metadata(m: GMeta, spec: GSpec, src: Source, lines: Lines) -> Native:
    service_key = next((k for k in ("service_name", "service") if m.labels.get(k)), None)
    lines.mark(("metadata",), src, ("metadata",))
    lines.mark(("metadata", "name"), src, ("metadata", "name"))
    if service_key is None:
        src.warn(("metadata", "labels"), "no service_name label: the SLO name is used as the "
                 "service")
        service = m.name
    else:
        service = m.labels[service_key]
        lines.mark(("metadata", "service"), src, ("metadata", "labels", service_key))
    meta: Native = {"name": m.name, "service": service}
    if spec.description:
        meta["description"] = spec.description
        lines.mark(("metadata", "description"), src, ("spec", "description"))
    if m.labels:
        meta["labels"] = dict(m.labels)
        labels_to_owner(m.labels, meta)
        lines.mark(("metadata", "labels"), src, ("metadata", "labels"))
    return meta


def _indicator(spec: GSpec, sp: Source, lines: Lines) -> Native | None:
    backend = spec.backend.split("/", 1)[0]
    if backend != "prometheus":
        sp.error(("backend",), f"backend {spec.backend!r} is not supported: only prometheus "
                 "(sloengine reads OTLP data and Prometheus)")
        return None
    sli = sp.at("service_level_indicator")
    lines.mark(("spec", "indicator"), sp, ("service_level_indicator",))
    if spec.method == "good_bad_ratio":
        r = parse(GRatio, spec.service_level_indicator, sli)
        return None if r is None else _ratio(r, sli, lines)
    if spec.method == "distribution_cut":
        c = parse(GCut, spec.service_level_indicator, sli)
        return None if c is None else _cut(c, sli, lines)
    if spec.method == "query_sli":
        sp.error(("method",), "method query_sli is not supported: the expression yields a "
                 "precomputed SLI, sloengine needs event counts (use good_bad_ratio)")
    else:
        sp.error(("method",), f"method {spec.method!r} is not supported (good_bad_ratio, "
                 "distribution_cut)")
    return None


def promql(selector: str, operators: list[str] | None) -> str:
    """slo-generator's ``PrometheusBackend._fmt_query`` with the window left as Sloth's
    ``{{.window}}`` placeholder."""
    query = selector.strip()
    if "[window" in query:
        query = query.replace("[window", "[{{.window}}")
    else:
        query += "[{{.window}}]"
    for op in DEFAULT_OPERATORS if operators is None else operators:
        query = f"{op}({query})"
    return query


def _ratio(r: GRatio, sli: Source, lines: Lines) -> Native | None:
    good = {"source": "prometheus", "query": promql(r.filter_good, r.operators)}
    if r.filter_bad is not None:
        if r.filter_valid is not None:
            sli.warn(("filter_valid",), "filter_valid is ignored when filter_bad is given (as "
                     "slo-generator does): total = good + bad")
        bad = promql(r.filter_bad, r.operators)
        lines.mark(("spec", "indicator", "total"), sli, ("filter_good",))
        lines.mark(("spec", "indicator", "bad"), sli, ("filter_bad",))
        return {"kind": "ratio",
                "total": {"source": "prometheus", "query": f"({good['query']}) + ({bad})"},
                "bad": {"source": "prometheus", "query": bad}}
    if r.filter_valid is None:
        sli.error(("filter_valid",), "good_bad_ratio needs filter_valid or filter_bad")
        return None
    lines.mark(("spec", "indicator", "total"), sli, ("filter_valid",))
    lines.mark(("spec", "indicator", "good"), sli, ("filter_good",))
    return {"kind": "ratio",
            "total": {"source": "prometheus", "query": promql(r.filter_valid, r.operators)},
            "good": good}


def _cut(c: GCut, sli: Source, lines: Lines) -> Native | None:
    """The latency of a Prometheus histogram: total = the ``_bucket`` selector as written,
    threshold = its ``le`` bound (Prometheus histograms count seconds)."""
    try:
        seconds = float(c.threshold_bucket) if c.threshold_bucket is not None else None
    except ValueError:
        seconds = None
    if seconds is None or not 0 < seconds < 1e9:
        sli.error(("threshold_bucket",), "distribution_cut needs threshold_bucket, the "
                  "histogram's le bound in seconds (e.g. 0.25)")
        return None
    if c.operators is not None:
        sli.warn(("operators",), "operators are ignored for distribution_cut")
    lines.mark(("spec", "indicator", "total"), sli, ("expression",))
    lines.mark(("spec", "indicator", "threshold"), sli, ("threshold_bucket",))
    return {"kind": "latency", "total": {"source": "prometheus", "query": c.expression},
            "threshold": format_duration(timedelta(seconds=seconds))}
