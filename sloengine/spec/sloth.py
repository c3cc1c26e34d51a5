"""Sloth (github.com/slok/sloth, ``pkg/prometheus/api/v1``) → native SLO dicts.

Accepts ``version: "prometheus/v1"`` files and the Kubernetes CRD (``apiVersion:
sloth.slok.dev/v1``, ``kind: PrometheusServiceLevel``) whose ``spec`` holds the same
``service``/``labels``/``slos``; keys may be snake_case or camelCase (``error_query`` or
``errorQuery``, ``page_alert`` or ``pageAlert``) as Sloth reads both.

Mapping rules, one native SLO per entry of ``slos``:

- name ``<service>-<name>``; metadata.service = ``service``; labels = the file's labels
  overlaid by the SLO's (as Sloth merges them; ``owner``/``team`` also fill metadata);
  ``description`` → description; ``alerting.annotations.runbook`` (or ``runbook_url``) →
  metadata.runbook.
- ``objective`` is a percentage: 99.9 → target 0.999.
- ``sli.events`` → ratio indicator, total = prometheus ``total_query``, bad = prometheus
  ``error_query``; the queries are kept verbatim, ``{{.window}}`` placeholder included.
- Sloth's period is 30 days unless its CLI says otherwise: window rolling 30d.
- Alerting: Sloth's multi-window multi-burn-rate table (2 %/1h/5m, 5 %/6h/30m page; 10 %/1d/2h,
  10 %/3d/6h ticket, the SRE workbook table) as explicit tiers; ``page_alert`` /
  ``ticket_alert`` ``disable`` → tiers of that severity disabled, their ``labels`` → tier labels
  and ``for`` → tier ``for``; ``alerting.labels`` → alerting.labels.

Unsupported (errors): ``sli.raw`` (a precomputed error ratio) and ``sli.plugin`` (Go code).
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field

from sloengine.spec.importers import (
    CamelForeign,
    Foreign,
    Lines,
    Native,
    Source,
    Text,
    labels_to_owner,
    parse,
    percent,
)
from sloengine.spec.loader import DocContext

#: Sloth's window table for a 30-day period: (name, severity, long, short, budget %).
SLOTH_TIERS = (
    ("page-fast", "page", "1h", "5m", 2.0),
    ("page-slow", "page", "6h", "30m", 5.0),
    ("ticket-fast", "ticket", "1d", "2h", 10.0),
    ("ticket-slow", "ticket", "3d", "6h", 10.0),
)
RUNBOOK_KEYS = ("runbook", "runbook_url", "runbookUrl")


def _both(snake: str) -> Any:
    head, *rest = snake.split("_")
    return Field(default=None, validation_alias=AliasChoices(
        snake, head + "".join(p.title() for p in rest)))


class SSpec(Foreign):
    service: Text
    labels: dict[str, Text] = Field(default_factory=dict)
    slos: list[dict[str, Any]] = Field(min_length=1)
    slo_plugins: Any = _both("slo_plugins")


class SFile(SSpec):
    version: Text | None = None
    api_version: Text | None = Field(default=None, alias="apiVersion")


class SK8s(CamelForeign):
    api_version: Text
    kind: Text
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: dict[str, Any]


class SEvents(Foreign):
    error_query: Text = _both("error_query")
    total_query: Text = _both("total_query")


class SSLI(Foreign):
    events: SEvents | None = None
    raw: dict[str, Any] | None = None
    plugin: dict[str, Any] | None = None


class SAlert(Foreign):
    disable: bool = False
    labels: dict[str, Text] = Field(default_factory=dict)
    annotations: dict[str, Text] = Field(default_factory=dict)
    for_: Text | None = Field(default=None, alias="for")


class SAlerting(Foreign):
    name: Text | None = None
    labels: dict[str, Text] = Field(default_factory=dict)
    annotations: dict[str, Text] = Field(default_factory=dict)
    page_alert: SAlert | None = _both("page_alert")
    ticket_alert: SAlert | None = _both("ticket_alert")


class SSLO(Foreign):
    name: Text
    objective: float
    description: Text | None = None
    labels: dict[str, Text] = Field(default_factory=dict)
    info_labels: dict[str, Text] | None = Field(default=None, alias="infoLabels")
    sli: SSLI
    alerting: SAlerting | None = None
    interval: Any = None
    plugins: Any = None


def convert(doc: dict[str, Any], src: Source) -> list[tuple[Native, DocContext]]:
    spec: SSpec | None
    if "slos" in doc or "version" in doc:
        spec, base = parse(SFile, doc, src), src
        version = doc.get("version", doc.get("apiVersion"))
        if spec is not None and version != "prometheus/v1":
            key = "version" if "version" in doc else "apiVersion"
            src.error((key,), f"Sloth spec version {version!r} is not supported: only "
                      "prometheus/v1")
            return []
    else:
        k8s = parse(SK8s, doc, src)
        if k8s is None:
            return []
        if k8s.api_version != "sloth.slok.dev/v1":
            src.error(("apiVersion",), f"{k8s.api_version!r} is not supported: only "
                      "sloth.slok.dev/v1")
            return []
        if k8s.kind != "PrometheusServiceLevel":
            src.error(("kind",), f"Sloth kind {k8s.kind!r} is not supported (only "
                      "PrometheusServiceLevel)")
            return []
        base = src.at("spec")
        spec = parse(SSpec, k8s.spec, base)
    if spec is None:
        return []
    if spec.slo_plugins is not None:
        key = "slo_plugins" if "slo_plugins" in doc.get("spec", doc) else "sloPlugins"
        base.warn((key,), "Sloth SLO plugins are not run: ignored")
    out = []
    for i, raw in enumerate(spec.slos):
        at = base.at("slos", i)
        slo = parse(SSLO, raw, at)
        if slo is not None:
            start = at.sink.raised
            native = _slo(spec, slo, raw, at)
            if at.sink.raised == start:
                out.append(native)
    return out


def _slo(spec: SSpec, slo: SSLO, raw: dict[str, Any], s: Source) -> tuple[Native, DocContext]:
    lines = Lines(s.ctx.file, "sloth")
    lines.mark((), s)
    labels = {**spec.labels, **slo.labels}
    meta: Native = {"name": f"{spec.service}-{slo.name}", "service": spec.service}
    lines.mark(("metadata",), s)
    lines.mark(("metadata", "name"), s, ("name",))
    if slo.description:
        meta["description"] = slo.description
        lines.mark(("metadata", "description"), s, ("description",))
    if labels:
        meta["labels"] = labels
        labels_to_owner(labels, meta)
        lines.mark(("metadata", "labels"), s, ("labels",) if slo.labels else ())
    for key in ("info_labels", "interval", "plugins"):
        if getattr(slo, key) is not None:
            name = "infoLabels" if key == "info_labels" else key
            s.warn((name,), f"{name} is Sloth-specific: ignored")
    if not 0 < slo.objective < 100:
        s.error(("objective",), f"objective {slo.objective:g} must be a percentage between 0 "
                "and 100 (exclusive), e.g. 99.9")
    elif slo.objective < 1:
        s.warn(("objective",), f"Sloth objectives are percentages: {slo.objective:g} means "
               f"{slo.objective:g} %, not {slo.objective * 100:g} %")
    lines.mark(("spec",), s)
    lines.mark(("spec", "objectives"), s, ("objective",))
    lines.mark(("spec", "window"), s)
    native_spec: Native = {
        "indicator": _indicator(slo.sli, raw.get("sli", {}), s.at("sli"), lines),
        "objectives": [{"target": percent(slo.objective)}],
        "window": {"rolling": "30d"},
        "alerting": _alerting(slo.alerting, raw.get("alerting") or {}, s.at("alerting"), meta,
                              lines),
    }
    return {"apiVersion": "sloengine/v1", "kind": "SLO", "metadata": meta,
            "spec": native_spec}, lines.context()


def _indicator(sli: SSLI, raw: dict[str, Any], s: Source, lines: Lines) -> Native | None:
    lines.mark(("spec", "indicator"), s)
    if sli.raw is not None:
        s.error(("raw",), "sli.raw (a precomputed error ratio) is not supported: sloengine "
                "counts bad and total events (use sli.events)")
    if sli.plugin is not None:
        s.error(("plugin",), "sli.plugin is not supported: Sloth SLI plugins are Go code "
                "(write the queries as sli.events)")
    if sli.events is None:
        if sli.raw is None and sli.plugin is None:
            s.error(("events",), "missing sli.events (error_query and total_query)")
        return None
    if sli.raw is not None or sli.plugin is not None:
        return None
    ev = raw.get("events", {})
    e = s.at("events")
    err_key = "error_query" if "error_query" in ev else "errorQuery"
    tot_key = "total_query" if "total_query" in ev else "totalQuery"
    lines.mark(("spec", "indicator", "total"), e, (tot_key,))
    lines.mark(("spec", "indicator", "bad"), e, (err_key,))
    return {"kind": "ratio",
            "total": {"source": "prometheus", "query": sli.events.total_query},
            "bad": {"source": "prometheus", "query": sli.events.error_query}}


def _alerting(a: SAlerting | None, raw: dict[str, Any], s: Source, meta: Native,
              lines: Lines) -> Native:
    """Sloth's four tiers, explicit (so they follow Sloth even if sloengine's defaults move)."""
    a = a or SAlerting()
    lines.mark(("spec", "alerting"), s)
    if a.name:
        s.warn(("name",), f"alert name {a.name!r} is not imported: sloengine names its alerts "
               "after the SLO")
    for key, value in a.annotations.items():
        if key in RUNBOOK_KEYS:
            meta["runbook"] = value
            lines.mark(("metadata", "runbook"), s, ("annotations", key))
        else:
            s.warn(("annotations", key), f"alert annotation {key!r} is not imported")
    per: dict[str, tuple[SAlert, str]] = {}
    for severity, snake, camel in (("page", "page_alert", "pageAlert"),
                                   ("ticket", "ticket_alert", "ticketAlert")):
        key = snake if snake in raw else camel
        alert = (a.page_alert if severity == "page" else a.ticket_alert) or SAlert()
        per[severity] = (alert, key)
        for k in alert.annotations:
            s.warn((key, "annotations", k), f"alert annotation {k!r} is not imported")
    tiers = []
    for i, (name, severity, long, short, share) in enumerate(SLOTH_TIERS):
        alert, key = per[severity]
        tier: Native = {"name": name, "severity": severity, "longWindow": long,
                        "shortWindow": short, "budgetPercent": share}
        if alert.disable:
            tier["enabled"] = False
        if alert.for_:
            tier["for"] = alert.for_
            lines.mark(("spec", "alerting", "tiers", i, "for"), s, (key, "for"))
        if alert.labels:
            tier["labels"] = dict(alert.labels)
        lines.mark(("spec", "alerting", "tiers", i), s, (key,))
        tiers.append(tier)
    out: Native = {"tiers": tiers}
    if a.labels:
        out["labels"] = dict(a.labels)
        lines.mark(("spec", "alerting", "labels"), s, ("labels",))
    return out
