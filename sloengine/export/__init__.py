"""Export SLOs to the systems a team grows into: Prometheus recording + multi-window
multi-burn-rate alert rules (checked by ``promtool``) and Grafana dashboards over them.

Pure functions from SLO models to file contents, plus writers; no database (the rules
recompute in Prometheus what the engine computes in DuckDB). The mapping of every SLO kind
to PromQL is documented in promql.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sloengine.export.grafana import DashboardsExport, grafana_dashboards, uid_for
from sloengine.export.prometheus_rules import RulesExport, Skipped, alert_name, prometheus_rules
from sloengine.export.promql import EVENTS_METRIC
from sloengine.spec import SLO

SCHEMA = "sloengine.export/v1"


@dataclass(slots=True)
class Written:
    """What an export wrote, for the CLI's text and ``sloengine.export/v1`` JSON."""

    files: list[Path]
    skipped: list[Skipped]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "files": [str(f) for f in self.files],
                "skipped": [{"slo": s.slo, "reason": s.reason} for s in self.skipped],
                "notes": list(self.notes)}


def write_prometheus_rules(slos: list[SLO], out: Path) -> Written:
    """Write the rule file to ``out`` (parent folders are created)."""
    rules = prometheus_rules(slos)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(rules.text, encoding="utf-8")
    return Written([out], rules.skipped, rules.notes)


def write_grafana(slos: list[SLO], out_dir: Path) -> Written:
    """Write the overview and per-SLO dashboards into ``out_dir``; other files stay."""
    dash = grafana_dashboards(slos)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for name, text in sorted(dash.files.items()):
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        files.append(path)
    return Written(files, dash.skipped)


__all__ = [
    "EVENTS_METRIC",
    "SCHEMA",
    "DashboardsExport",
    "RulesExport",
    "Skipped",
    "Written",
    "alert_name",
    "grafana_dashboards",
    "prometheus_rules",
    "uid_for",
    "write_grafana",
    "write_prometheus_rules",
]
