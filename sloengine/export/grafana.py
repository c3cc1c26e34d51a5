"""Grafana dashboards over the recording rules of prometheus_rules.py: an overview (one row
per SLO: SLI, error budget remaining, burn rates) and one dashboard per SLO (SLI over time,
budget remaining, burn rate per window with the tier thresholds, firing alerts).

Every query goes to the data source variable ``${DS_PROMETHEUS}`` (type prometheus), so the
same JSON works provisioned from files or imported. Output is deterministic: uids derived from
SLO names, panel ids in order, keys sorted — regenerating changes nothing unless the SLOs did.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sloengine.export.prometheus_rules import Skipped, alert_name, plans
from sloengine.export.promql import (
    BUDGET_REMAINING,
    ObjectivePlan,
    SloPlan,
    dur,
    label_name,
    number,
    quote,
    ratio_metric,
)
from sloengine.spec import SLO

SCHEMA_VERSION = 39
DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
OVERVIEW_FILE = "sloengine-overview.json"
OVERVIEW_UID = "sloengine-overview"
TAGS = ["sloengine", "slo"]


@dataclass(slots=True)
class DashboardsExport:
    files: dict[str, str]  # file name → JSON text
    exported: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def uid_for(slo: str) -> str:
    """A stable uid (≤ 40 chars, Grafana's limit) from the SLO name."""
    return "slo-" + hashlib.sha256(slo.encode()).hexdigest()[:16]


def file_for(slo: str) -> str:
    return f"slo-{slo}.json"


class _Layout:
    """Panel ids and grid positions, in order (Grafana's grid is 24 wide)."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = self.row_h = 0

    def add(self, panel: dict[str, Any], w: int, h: int) -> None:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)

    def row(self, title: str) -> None:
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        self.add({"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)
        self.x, self.y, self.row_h = 0, self.y + 1, 0


def _target(expr: str, legend: str, i: int) -> dict[str, Any]:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "range": True,
            "refId": chr(ord("A") + i)}


def _legend(p: SloPlan, text: str) -> str:
    groups = " ".join(f"{{{{{label_name(g)}}}}}" for g in p.slo.spec.group_by)
    return f"{groups} {text}".strip()


def _steps(*steps: tuple[str, float | None]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


def _panel(kind: str, title: str, targets: list[dict[str, Any]], unit: str,
           thresholds: dict[str, Any], description: str = "", decimals: int | None = None,
           **extra: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit, "thresholds": thresholds}
    if decimals is not None:
        defaults["decimals"] = decimals
    panel: dict[str, Any] = {
        "type": kind, "title": title, "datasource": DS, "description": description,
        "targets": targets, "fieldConfig": {"defaults": defaults, "overrides": []},
    }
    if kind == "stat":
        panel["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                              "values": False},
                            "colorMode": "value", "graphMode": "area", "textMode": "auto"}
    panel.update(extra)
    return panel


def _sli(p: SloPlan, o: ObjectivePlan, w: timedelta) -> str:
    return f"1 - {ratio_metric(w)}{o.selector}"


def _burn(o: ObjectivePlan, w: timedelta) -> str:
    return f"{ratio_metric(w)}{o.selector} / {number(o.budget)}"


def _sli_thresholds(o: ObjectivePlan) -> dict[str, Any]:
    return _steps(("red", None), ("green", o.target))


BUDGET_STEPS = _steps(("red", None), ("orange", 0), ("green", 0.25))


def _dashboard(title: str, uid: str, panels: list[dict[str, Any]], description: str,
               tags: list[str]) -> dict[str, Any]:
    return {
        "annotations": {"list": []},
        "description": description,
        "editable": True,
        "graphTooltip": 1,
        "links": [{"type": "dashboards", "tags": ["sloengine"], "asDropdown": True,
                   "title": "SLO dashboards", "includeVars": True, "keepTime": True}],
        "panels": panels,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": tags,
        "templating": {"list": [{
            "name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "regex": "",
            "options": [], "includeAll": False, "multi": False}]},
        "time": {"from": "now-7d", "to": "now"},
        "timepicker": {},
        "timezone": "utc",
        "title": title,
        "uid": uid,
        "version": 1,
    }


def slo_dashboard(p: SloPlan) -> dict[str, Any]:
    lay = _Layout()
    meta = p.slo.metadata
    period = dur(p.period)
    shortest = p.windows[0] if p.windows else p.period
    for o in p.objectives:
        lay.row(f"Objective {o.label} (target {o.target:g}, {p.method}, {period})")
        lay.add(_panel("stat", f"SLI ({period})", [_target(_sli(p, o, p.period),
                                                            _legend(p, "SLI"), 0)],
                       "percentunit", _sli_thresholds(o), decimals=3), 8, 5)
        lay.add(_panel("stat", f"Error budget remaining ({period})",
                       [_target(f"{BUDGET_REMAINING}{o.selector}", _legend(p, "remaining"),
                                0)], "percentunit", BUDGET_STEPS, decimals=1), 8, 5)
        firing = (f'ALERTS{{alertname={quote(alert_name(p.name))},'
                  f'{o.selector[1:-1]},alertstate="firing"}}')
        lay.add(_panel("stat", "Firing alerts", [_target(f"count({firing}) or vector(0)",
                                                         "firing", 0)],
                       "none", _steps(("green", None), ("red", 1))), 8, 5)
        lay.add(_panel("timeseries", "SLI over time",
                       [_target(_sli(p, o, w), _legend(p, f"SLI {dur(w)}"), i)
                        for i, w in enumerate(sorted({shortest, p.period}))],
                       "percentunit", _sli_thresholds(o),
                       description=f"Target {o.target:g}.", **_lines()), 12, 8)
        lay.add(_panel("timeseries", "Error budget remaining",
                       [_target(f"{BUDGET_REMAINING}{o.selector}", _legend(p, "remaining"),
                                0)], "percentunit", BUDGET_STEPS, **_lines()), 12, 8)
        windows = sorted({*p.windows, p.period})
        tiers = ", ".join(f"{t.name} {number(t.burn_rate)} over {dur(t.long_window)}/"
                          f"{dur(t.short_window)}" for t in p.tiers)
        lay.add(_panel("timeseries", "Burn rate per window",
                       [_target(_burn(o, w), _legend(p, dur(w)), i)
                        for i, w in enumerate(windows)], "none",
                       _steps(("green", None), *sorted(
                           {("red", t.burn_rate) for t in p.tiers}, key=lambda s: s[1])),
                       description=("Error ratio / error budget. Tiers fire when both "
                                    f"windows exceed the threshold: {tiers or 'none'}."),
                       **_lines()), 24, 8)
        lay.add(_panel("state-timeline", "Firing alerts by tier",
                       [_target(firing, _legend(p, "{{sloengine_tier}} ({{severity}})"), 0)],
                       "none", _steps(("red", None)),
                       options={"showValue": "never", "mergeValues": True}), 24, 6)
    desc = meta.description or f"SLO {p.name} of {meta.service}"
    return _dashboard(f"SLO / {meta.display_name or p.name}", uid_for(p.name), lay.panels,
                      desc, [*TAGS, meta.service])


def _lines() -> dict[str, Any]:
    return {"options": {"legend": {"displayMode": "list", "placement": "bottom"},
                        "tooltip": {"mode": "multi", "sort": "none"}}}


def overview(ps: Sequence[SloPlan]) -> dict[str, Any]:
    lay = _Layout()
    for p in ps:
        link = [{"title": f"SLO {p.name}", "url": f"/d/{uid_for(p.name)}"}]
        lay.row(f"{p.name} — {p.slo.metadata.service}")
        many = len(p.objectives) > 1
        sli: list[dict[str, Any]] = []
        budget: list[dict[str, Any]] = []
        burn: list[dict[str, Any]] = []
        for o in p.objectives:
            tag = f"{o.label} " if many else ""
            sli.append(_target(_sli(p, o, p.period), _legend(p, f"{tag}SLI"), len(sli)))
            budget.append(_target(f"{BUDGET_REMAINING}{o.selector}",
                                  _legend(p, f"{tag}remaining"), len(budget)))
            longs = sorted({t.long_window for t in p.tiers}) or [p.period]
            burn.extend(_target(_burn(o, w), _legend(p, f"{tag}{dur(w)}"), len(burn) + i)
                        for i, w in enumerate(longs))
        o0 = p.objectives[0]
        lay.add(_panel("stat", f"SLI ({dur(p.period)})", sli, "percentunit",
                       _sli_thresholds(o0), decimals=3, links=link), 6, 4)
        lay.add(_panel("stat", "Error budget remaining", budget, "percentunit",
                       BUDGET_STEPS, decimals=1, links=link), 6, 4)
        lay.add(_panel("stat", "Burn rates", burn, "none", _steps(("green", None),
                                                                   ("red", 1)),
                       decimals=2, links=link), 12, 4)
    return _dashboard("SLO overview", OVERVIEW_UID, lay.panels,
                      "Every exported SLO: SLI, error budget remaining and burn rates.", TAGS)


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def grafana_dashboards(slos: Sequence[SLO]) -> DashboardsExport:
    """The overview and one dashboard per exportable SLO, as JSON texts by file name."""
    ps, skipped = plans(slos)
    files = {OVERVIEW_FILE: render(overview(ps))}
    for p in ps:
        files[file_for(p.name)] = render(slo_dashboard(p))
    return DashboardsExport(files, [p.name for p in ps], skipped)
