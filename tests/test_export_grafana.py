"""Grafana dashboards: dashboards/ is kept in sync with slo_definitions/ (regenerated into a
temporary folder and compared byte for byte), and every dashboard is structurally sound and
only queries series the exported rules record.

After changing the SLOs or the generator: ``sloengine export grafana`` (or
``SLOENGINE_UPDATE_GOLDEN=1 python -m pytest tests/test_export_grafana.py``), then commit.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import typer
import yaml
from typer.testing import CliRunner

from sloengine import cli_export
from sloengine.export import grafana_dashboards, prometheus_rules, uid_for, write_grafana
from sloengine.spec import SLO, load_paths

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "dashboards"


def shipped() -> list[SLO]:
    result = load_paths([ROOT / "slo_definitions"])
    assert not result.errors
    return [s.slo for s in result.slos]


def panels(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in doc["panels"] if p["type"] != "row"]


def test_dashboards_in_sync_with_slo_definitions(tmp_path: Path) -> None:
    if os.environ.get("SLOENGINE_UPDATE_GOLDEN") == "1":  # regenerate, review, commit
        write_grafana(shipped(), DASHBOARDS)
    written = write_grafana(shipped(), tmp_path / "dashboards")
    fresh = {p.name: p.read_text() for p in written.files}
    committed = {p.name: p.read_text() for p in sorted(DASHBOARDS.glob("*.json"))}
    assert sorted(committed) == sorted(fresh), "dashboards/ has missing or stale files"
    for name, text in fresh.items():
        assert committed[name] == text, f"dashboards/{name} is out of date"


def test_generation_is_deterministic() -> None:
    assert grafana_dashboards(shipped()).files == grafana_dashboards(
        list(reversed(shipped()))).files


def test_dashboard_structure() -> None:
    slos = shipped()
    docs = {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}
    uids = [d["uid"] for d in docs.values()]
    assert len(set(uids)) == len(uids) and all(len(u) <= 40 for u in uids)
    for name, doc in docs.items():
        assert doc["schemaVersion"] == 39, name
        assert json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n" == (
            DASHBOARDS / name).read_text(), f"{name}: keys not sorted"
        (var,) = doc["templating"]["list"]
        assert (var["name"], var["type"], var["query"]) == (
            "DS_PROMETHEUS", "datasource", "prometheus")
        ids = [p["id"] for p in doc["panels"]]
        assert ids == list(range(1, len(ids) + 1))
        for p in panels(doc):
            assert p["targets"], f"{name}: panel {p['title']!r} has no targets"
            assert p["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
            for t in p["targets"]:
                assert t["datasource"]["uid"] == "${DS_PROMETHEUS}" and t["expr"]
            g = p["gridPos"]
            assert g["x"] + g["w"] <= 24
    for slo in slos:
        doc = docs[f"slo-{slo.metadata.name}.json"]
        assert doc["uid"] == uid_for(slo.metadata.name)
        titles = [p["title"] for p in panels(doc)]
        for want in ("SLI over time", "Error budget remaining", "Burn rate per window",
                     "Firing alerts by tier"):
            assert want in titles, (slo.metadata.name, want)
    overview = docs["sloengine-overview.json"]
    rows = [p["title"].split(" — ")[0] for p in overview["panels"] if p["type"] == "row"]
    assert rows == sorted(s.metadata.name for s in slos)
    links = {p["links"][0]["url"] for p in panels(overview)}
    assert links == {f"/d/{uid_for(s.metadata.name)}" for s in slos}


def test_dashboards_query_only_recorded_series() -> None:
    """Every slo:* series a panel reads is recorded by the exported rules for that SLO."""
    rules = yaml.safe_load(prometheus_rules(shipped()).text)
    recorded = {(g["name"].removeprefix("sloengine-"), r["record"])
                for g in rules["groups"] for r in g["rules"] if "record" in r}
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    for path in sorted(DASHBOARDS.glob("*.json")):
        for p in panels(json.loads(path.read_text())):
            for t in p["targets"]:
                for metric, slo in re.findall(r'(slo:[a-z_:0-9]+)\{sloengine_slo="([^"]+)"',
                                              t["expr"]):
                    assert (slo, metric) in recorded, (path.name, t["expr"])
                for name in re.findall(r'ALERTS\{alertname="([^"]+)"', t["expr"]):
                    assert name in alerts


def test_cli_grafana_json(tmp_path: Path) -> None:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """sloengine"""

    cli_export.register(app)
    out = tmp_path / "dash"
    r = CliRunner().invoke(app, ["export", "grafana", str(ROOT / "slo_definitions"),
                                 "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["schema"] == "sloengine.export/v1" and doc["skipped"] == []
    assert sorted(Path(f).name for f in doc["files"]) == sorted(
        p.name for p in DASHBOARDS.glob("*.json"))
