"""OpenSLO v1 (github.com/OpenSLO/OpenSLO, README "Specification") → native SLO dicts.

Mapping rules:

- SLO ``metadata.name/displayName/labels`` → metadata (list label values joined with ","; labels
  ``owner``/``team`` also fill metadata.owner/team; an annotation ``runbook``/``runbook_url``
  (any prefix) → metadata.runbook); ``spec.description`` → description; ``spec.service`` →
  metadata.service (a Service document of that name, or just the name).
- ``indicator`` (inline) or ``indicatorRef`` (an SLI document of the same file).
  ``ratioMetric`` good|bad + total → ratio indicator. Metric sources: ``type: Prometheus``
  (``spec.query``) → prometheus source, the query verbatim; ``type: sloengine`` → ``spec`` is
  one of our event sources (or, for good/bad, a filter on total), the way an OpenSLO file
  points at OTLP data. ``metricSourceRef`` takes the type of the DataSource document it names.
  ``thresholdMetric`` over a sloengine event source → latency indicator whose threshold is the
  objectives' ``value`` (seconds, or a duration like ``250ms``) with ``op: lte``.
- ``timeWindow`` rolling → ``window.rolling``; calendar 1w/7d → week, 1M → month, 1Q/3M →
  quarter in ``calendar.timeZone``.
- ``budgetingMethod`` Occurrences/Timeslices/RatioTimeslices; ``timeSliceWindow`` (a bare
  number is minutes) must agree across objectives; ``timeSliceTarget`` per objective.
- ``objectives[].target`` or ``targetPercent`` (percent → ratio), ``displayName`` → name.
- ``alertPolicies`` (inline or ``alertPolicyRef``) → conditions (inline or ``conditionRef``)
  → one alert tier each, see :func:`_tier`.

Unsupported (errors): raw ratio metrics, composite SLOs, other metric source types, other
condition kinds, threshold metrics over Prometheus, rolling windows in months/quarters/years.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from sloengine.spec.durations import format_duration, parse_duration
from sloengine.spec.importers import (
    Lines,
    Native,
    Source,
    labels_to_owner,
    parse,
    percent,
)
from sloengine.spec.loader import DocContext
from sloengine.spec.openslo_alerts import _tiers
from sloengine.spec.openslo_model import (
    CALENDAR,
    METHODS,
    SPECS,
    Index,
    ODoc,
    OMeta,
    OMetric,
    OObjective,
    ORatio,
    OSLISpec,
    OSLOSpec,
    OTimeWindow,
    Ref,
)


def convert(docs: list[tuple[dict[str, Any], Source]]) -> list[tuple[Native, DocContext]]:
    idx = Index()
    for data, src in docs:
        env = parse(ODoc, data, src)
        if env is None:
            continue
        if env.api_version != "openslo/v1":
            src.error(("apiVersion",), f"{env.api_version!r} is not supported: only openslo/v1")
            continue
        cls = SPECS.get(env.kind)
        if cls is None:
            src.error(("kind",), f"unknown OpenSLO kind {env.kind!r}")
            continue
        same = idx.docs.setdefault(env.kind, {})
        name = env.metadata.name
        if name in same:
            src.error(("metadata", "name"), f"duplicate {env.kind} name {name!r} (also at "
                      f"line {same[name].src.line()})")
            continue
        same[name] = Ref(env.metadata, src, parse(cls, env.spec, src.at("spec")))
        if env.kind == "DataSource":
            src.warn(("spec",), "DataSource connection details are not imported (sloengine "
                     "reads its sources from its settings); only its type is used")
        elif env.kind == "AlertNotificationTarget":
            src.warn(("spec",), "AlertNotificationTarget is not imported: route alerts by "
                     "severity and labels with sloengine notifiers")
    out = []
    for slo in idx.docs.get("SLO", {}).values():
        if slo.spec is not None:
            done = _slo(slo, idx)
            if done is not None:
                out.append(done)
    for kind in ("SLI", "AlertPolicy", "AlertCondition"):
        for name, ref in idx.docs.get(kind, {}).items():
            if (kind, name) not in idx.used:
                ref.src.warn(("metadata", "name"), f"{kind} {name!r} is not referenced by any "
                             "SLO in this file: not imported")
    return out


def _slo(ref: Ref[OSLOSpec], idx: Index) -> tuple[Native, DocContext] | None:
    src, spec = ref.src, ref.spec
    assert spec is not None
    sp = src.at("spec")
    start = src.sink.raised
    lines = Lines(src.ctx.file, "openslo/v1")
    lines.mark((), src)
    lines.mark(("spec",), sp)
    metadata = _metadata(ref.meta, spec, src, idx, lines)
    method = _method(spec, sp, lines)
    budgeting = _budgeting(method, spec.objectives, sp, lines) if method else None
    indicator = _indicator(spec, sp, idx, lines)
    objectives = _objectives(method, spec, sp, idx, lines)
    window = _window(spec.time_window, sp, lines)
    tiers = _tiers(spec, sp, idx, lines)
    if src.sink.raised != start:
        return None
    native_spec: Native = {"indicator": indicator, "objectives": objectives, "window": window,
                           "budgeting": budgeting}
    if tiers is not None:
        native_spec["alerting"] = {"tiers": tiers}
        lines.mark(("spec", "alerting"), sp, ("alertPolicies",))
    native = {"apiVersion": "sloengine/v1", "kind": "SLO", "metadata": metadata,
              "spec": native_spec}
    return native, lines.context()


def _metadata(meta: OMeta, spec: OSLOSpec, src: Source, idx: Index, lines: Lines) -> Native:
    out: Native = {"name": meta.name}
    lines.mark(("metadata",), src, ("metadata",))
    lines.mark(("metadata", "name"), src, ("metadata", "name"))
    if spec.service is None:
        src.error(("spec", "service"), "missing required field 'service'")
    else:
        idx.get("Service", spec.service)  # a Service document of that name: its grouping
        out["service"] = spec.service
        lines.mark(("metadata", "service"), src, ("spec", "service"))
    if meta.display_name:
        out["displayName"] = meta.display_name
    if spec.description:
        out["description"] = spec.description
        lines.mark(("metadata", "description"), src, ("spec", "description"))
    labels = {k: ",".join(v) if isinstance(v, list) else v for k, v in meta.labels.items()}
    if labels:
        out["labels"] = labels
        labels_to_owner(labels, out)
        lines.mark(("metadata", "labels"), src, ("metadata", "labels"))
    for key, value in meta.annotations.items():
        if key.rsplit("/", 1)[-1] in ("runbook", "runbook_url", "runbookUrl"):
            out["runbook"] = value
            lines.mark(("metadata", "runbook"), src, ("metadata", "annotations", key))
        else:
            src.warn(("metadata", "annotations", key), f"annotation {key!r} is not imported")
    return out


def _method(spec: OSLOSpec, sp: Source, lines: Lines) -> str | None:
    if spec.budgeting_method is None:
        sp.error(("budgetingMethod",), "missing required field 'budgetingMethod' "
                 f"({', '.join(METHODS)})")
        return None
    if spec.budgeting_method not in METHODS:
        sp.error(("budgetingMethod",), f"budgetingMethod {spec.budgeting_method!r} is not one "
                 f"of {', '.join(METHODS)}")
        return None
    lines.mark(("spec", "budgeting"), sp, ("budgetingMethod",))
    return spec.budgeting_method


def _budgeting(method: str, objectives: list[OObjective], sp: Source, lines: Lines) -> Native:
    """One time-slice window per SLO: the objectives must agree (a bare number is minutes,
    as the OpenSLO README says)."""
    given = [(i, o.time_slice_window) for i, o in enumerate(objectives)
             if o.time_slice_window is not None]
    if method == "Occurrences":
        for i, _ in given:
            sp.warn(("objectives", i, "timeSliceWindow"), "timeSliceWindow is ignored with "
                    "budgetingMethod Occurrences")
        return {"method": method}
    if not given:
        sp.error(("objectives",), f"budgetingMethod {method} needs timeSliceWindow on the "
                 "objectives (e.g. 1m)")
        return {"method": method}
    windows = {i: f"{w}m" if w.isdigit() else w for i, w in given}
    first, window = next(iter(windows.items()))
    for i, w in windows.items():
        if _same_duration(w, window) is False:
            sp.error(("objectives", i, "timeSliceWindow"), f"timeSliceWindow {w} differs from "
                     f"{window} (objective {first}): sloengine has one slice size per SLO")
    lines.mark(("spec", "budgeting", "timeSliceWindow"), sp,
               ("objectives", first, "timeSliceWindow"))
    return {"method": method, "timeSliceWindow": window}


def _same_duration(a: str, b: str) -> bool | None:
    try:
        return parse_duration(a) == parse_duration(b)
    except (ValueError, OverflowError):
        return None  # the loader reports the bad duration


def _indicator(spec: OSLOSpec, sp: Source, idx: Index, lines: Lines) -> Native | None:
    lines.mark(("spec", "indicator"), sp, ("indicator",))
    if spec.indicator is not None and spec.indicator_ref is not None:
        sp.error(("indicatorRef",), "give indicator or indicatorRef, not both")
        return None
    if spec.indicator is not None:
        sli: OSLISpec | None = spec.indicator.spec
        isrc = sp.at("indicator", "spec")
    elif spec.indicator_ref is not None:
        ref = idx.get("SLI", spec.indicator_ref)
        lines.mark(("spec", "indicator"), sp, ("indicatorRef",))
        if ref is None:
            sp.error(("indicatorRef",), f"no SLI named {spec.indicator_ref!r} in this file")
            return None
        sli, isrc = ref.spec, ref.src.at("spec")
        if sli is None:
            sp.error(("indicatorRef",), f"SLI {spec.indicator_ref!r} has errors")
            return None
    else:
        if not any(o.indicator or o.indicator_ref for o in spec.objectives):
            sp.error(("indicator",), "missing indicator or indicatorRef")
        return None  # composite SLOs are reported by _objectives
    assert sli is not None
    if (sli.ratio_metric is None) == (sli.threshold_metric is None):
        isrc.error((), "give exactly one of ratioMetric or thresholdMetric")
        return None
    if sli.ratio_metric is not None:
        return _ratio(sli.ratio_metric, isrc.at("ratioMetric"), idx, lines)
    assert sli.threshold_metric is not None
    return _threshold(sli.threshold_metric, isrc.at("thresholdMetric"), spec.objectives,
                      sp.at("objectives"), idx, lines)


def _ratio(r: ORatio, rs: Source, idx: Index, lines: Lines) -> Native | None:
    if r.raw is not None or r.raw_type is not None:
        rs.error(("raw" if r.raw is not None else "rawType",), "raw (precomputed ratio) "
                 "metrics are not supported: sloengine counts good or bad events and total")
        return None
    if r.counter is False:
        rs.warn(("counter",), "counter: false (a gauge) is not modelled: the queries are read "
                "as event counts")
    if r.total is None:
        rs.error(("total",), "missing required field 'total'")
        return None
    if (r.good is None) == (r.bad is None):
        rs.error(("good",), "give exactly one of good or bad")
        return None
    part, metric = ("good", r.good) if r.good is not None else ("bad", r.bad)
    assert metric is not None
    total = _source(r.total, rs.at("total"), ("spec", "indicator", "total"), idx, lines)
    num = _source(metric, rs.at(part), ("spec", "indicator", part), idx, lines)
    if total is None or num is None:
        return None
    return {"kind": "ratio", "total": total, part: num}


def _source(m: OMetric, ms: Source, native: tuple[str, ...], idx: Index,
            lines: Lines) -> Any:
    src, spec = ms.at("metricSource"), m.metric_source.spec
    typ = m.metric_source.type
    ref_name = m.metric_source.metric_source_ref
    if ref_name is not None:
        ds = idx.get("DataSource", ref_name)
        if ds is None and typ is None:
            src.error(("metricSourceRef",), f"no DataSource named {ref_name!r} in this file, "
                      "and no type given")
            return None
        if ds is not None and ds.spec is not None and typ is None:
            typ = ds.spec.type
    if typ is None:
        src.error(("type",), "metric source type missing (Prometheus or sloengine)")
        return None
    if typ.lower() == "prometheus":
        key = "query" if "query" in spec else "promql"
        query = spec.get(key)
        if not isinstance(query, str) or not query.strip():
            src.error(("spec", "query"), "a Prometheus metric source needs spec.query (PromQL)")
            return None
        for k in spec:
            if k != key:
                src.warn(("spec", k), f"Prometheus metric source key {k!r} ignored")
        lines.mark(native, src, ("spec",))
        lines.mark((*native, "query"), src, ("spec", key))
        return {"source": "prometheus", "query": query}
    if typ.lower() == "sloengine":
        lines.mark_tree(native, src, ("spec",), spec)
        return dict(spec)  # validated by the loader as an event source (or a filter)
    src.error(("type",), f"metric source type {typ!r} is not supported (supported: "
              "Prometheus, and sloengine for native event sources)")
    return None


def _threshold(m: OMetric, ts: Source, objectives: list[OObjective], os_: Source, idx: Index,
               lines: Lines) -> Native | None:
    """A threshold metric over raw events (spans, log records, histogram points) compares
    each event's duration with the objectives' ``value``: that is a latency indicator."""
    total = _source(m, ts, ("spec", "indicator", "total"), idx, lines)
    if total is None:
        return None
    if not (isinstance(total, dict) and total.get("source") in ("spans", "logs", "metrics")):
        ts.error(("metricSource", "type"), "thresholdMetric: sloengine reads a latency "
                 "threshold only over events (type: sloengine with source spans, logs or "
                 "metrics); over Prometheus use a ratioMetric on histogram buckets")
        return None
    found: dict[timedelta, int] = {}
    for i, o in enumerate(objectives):
        op = (o.op or "").lower()
        if o.value is None or op not in ("lte", "lt"):
            os_.error((i, "op"), "a thresholdMetric objective needs op: lte and a value "
                      "(seconds, or a duration such as 250ms)")
            continue
        if op == "lt":
            os_.warn((i, "op"), "op lt read as lte: an event is good when its duration is at "
                     "most the threshold")
        threshold = _seconds(o.value)
        if threshold is None:
            os_.error((i, "value"), f"value {o.value!r} is not a positive number of seconds "
                      "or a duration")
            continue
        found.setdefault(threshold, i)
    if len(found) != 1:
        if len(found) > 1:
            os_.error((), "objectives with different thresholds: sloengine has one latency "
                      "threshold per SLO (split it into several SLOs)")
        return None
    threshold, i = next(iter(found.items()))
    lines.mark(("spec", "indicator", "threshold"), os_, (i, "value"))
    return {"kind": "latency", "total": total, "threshold": format_duration(threshold)}


def _seconds(value: float | str) -> timedelta | None:
    try:
        seconds = float(value)
    except ValueError:
        try:
            return parse_duration(value)
        except (ValueError, OverflowError):
            return None
    return timedelta(seconds=seconds) if 0 < seconds < 1e9 else None


def _objectives(method: str | None, spec: OSLOSpec, sp: Source, idx: Index,
                lines: Lines) -> list[Native]:
    os_ = sp.at("objectives")
    if not spec.objectives:
        sp.error(("objectives",), "at least one objective is required")
    sli = spec.indicator.spec if spec.indicator is not None else None
    if spec.indicator_ref is not None:
        ref = idx.docs.get("SLI", {}).get(spec.indicator_ref)
        sli = ref.spec if ref is not None else None
    threshold = sli is None or sli.threshold_metric is not None
    out = []
    for i, o in enumerate(spec.objectives):
        composite = [k for k, v in (("indicator", o.indicator), ("indicatorRef", o.indicator_ref),
                                    ("compositeWeight", o.composite_weight)) if v is not None]
        if composite:
            os_.error((i, composite[0]), "composite SLOs (an indicator per objective) are not "
                      "supported")
            continue
        if (o.target is None) == (o.target_percent is None):
            os_.error((i,), "give exactly one of target or targetPercent")
            continue
        native = (*("spec", "objectives"), i)
        lines.mark(native, os_, (i,))
        obj: Native = {}
        if o.display_name:
            obj["name"] = o.display_name
            lines.mark((*native, "name"), os_, (i, "displayName"))
        if o.target is not None:
            obj["target"] = o.target
            lines.mark((*native, "target"), os_, (i, "target"))
        else:
            assert o.target_percent is not None
            obj["target"] = percent(o.target_percent)
            lines.mark((*native, "target"), os_, (i, "targetPercent"))
        if o.time_slice_target is not None and method is not None:
            if method == "Timeslices":
                obj["timeSliceTarget"] = o.time_slice_target
                lines.mark((*native, "timeSliceTarget"), os_, (i, "timeSliceTarget"))
            else:
                os_.warn((i, "timeSliceTarget"), f"timeSliceTarget is ignored with "
                         f"budgetingMethod {method}")
        elif method == "Timeslices":
            os_.warn((i,), "no timeSliceTarget: a slice is good when its ratio meets the "
                     "target (sloengine's default)")
        if o.value is not None and not threshold:
            os_.warn((i, "value"), "value applies to thresholdMetric only: ignored")
        out.append(obj)
    return out


def _window(windows: list[OTimeWindow], sp: Source, lines: Lines) -> Native | None:
    ws = sp.at("timeWindow")
    if len(windows) != 1:
        sp.error(("timeWindow",), "timeWindow needs exactly one item, e.g. "
                 "[{duration: 28d, isRolling: true}]")
        return None
    w = windows[0]
    lines.mark(("spec", "window"), ws, (0,))
    if w.is_rolling is None and w.calendar is None:
        ws.error((0, "isRolling"), "give isRolling: true, or a calendar")
        return None
    if w.is_rolling:
        if re.fullmatch(r"\d+[MQY]", w.duration):
            ws.error((0, "duration"), f"a rolling window of {w.duration} has no fixed length: "
                     "write it in days (e.g. 30d)")
            return None
        if w.calendar is not None:
            ws.warn((0, "calendar"), "calendar is ignored for a rolling window")
        lines.mark(("spec", "window", "rolling"), ws, (0, "duration"))
        return {"rolling": w.duration}
    period = CALENDAR.get(w.duration)
    if period is None:
        ws.error((0, "duration"), f"calendar window {w.duration!r} is not supported: use 1w "
                 "(or 7d), 1M or 1Q")
        return None
    tz = w.calendar.time_zone if w.calendar is not None else None
    if tz is None:
        ws.warn((0, "calendar"), "no calendar.timeZone: UTC assumed")
    else:
        lines.mark(("spec", "window", "timeZone"), ws, (0, "calendar", "timeZone"))
    if w.calendar is not None and w.calendar.start_time is not None:
        _start_time(w.calendar.start_time, period, ws.at(0, "calendar", "startTime"))
    lines.mark(("spec", "window", "calendar"), ws, (0, "duration"))
    return {"calendar": period, "timeZone": tz or "UTC"}


def _start_time(value: Any, period: str, src: Source) -> None:
    """sloengine aligns calendar windows to period starts (weeks on Monday 00:00): a startTime
    elsewhere would shift every window, which is not modelled."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            src.warn((), f"startTime {value!r} is not a date-time: ignored")
            return
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        src.warn((), f"startTime {value!r} is not a date-time: ignored")
        return
    midnight = value.time() == datetime.min.time()
    aligned = midnight and {"week": value.weekday() == 0, "month": value.day == 1,
                            "quarter": value.day == 1 and value.month in (1, 4, 7, 10)}[period]
    if not aligned:
        src.warn((), f"startTime {value.isoformat(sep=' ')} is not the start of a {period}: "
                 f"ignored (sloengine's calendar windows start at each {period} boundary, "
                 "weeks on Monday 00:00, in the time zone)")


