"""Prometheus rules export: golden file of the shipped SLOs, ``promtool check rules`` on it,
``promtool test rules`` proving the page alert fires on a synthetic fast burn (and not
before, and not on a low error ratio), the mapping of each SLO kind, and the CLI.

Regenerate the golden files after an intended change with
``SLOENGINE_UPDATE_GOLDEN=1 python -m pytest tests/test_export_rules.py`` and review the diff.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest
import typer
import yaml
from servers import need
from typer.testing import CliRunner

from sloengine import cli_export
from sloengine.errors import ConfigError
from sloengine.export import alert_name, prometheus_rules
from sloengine.spec import SLO, load_paths

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "prometheus-rules.yml"
PROMTOOL_FIX = ROOT / "tests" / "fixtures" / "promtool"
SLOTH_RULES = PROMTOOL_FIX / "sloth-gateway-rules.yml"
SLOTH_SLO = "api-gateway-prometheus-availability"
FIX = ROOT / "tests" / "fixtures" / "slo"


def shipped() -> list[SLO]:
    result = load_paths([ROOT / "slo_definitions"])
    assert not result.errors
    return [s.slo for s in result.slos]


def load_text(tmp_path: Path, text: str) -> list[SLO]:
    f = tmp_path / "slo.yaml"
    f.write_text(textwrap.dedent(text))
    result = load_paths([f])
    assert not result.errors, result.errors
    return [s.slo for s in result.slos]


def check_golden(path: Path, text: str) -> None:
    if os.environ.get("SLOENGINE_UPDATE_GOLDEN") == "1":  # regenerate, review, commit
        path.write_text(text)
    assert text == path.read_text()


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([need("promtool"), *map(str, args)], capture_output=True,
                          text=True, timeout=300, check=False)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def rules_of(text: str) -> dict[str, list[dict[str, object]]]:
    doc = yaml.safe_load(text)
    return {g["name"].removeprefix("sloengine-"): g["rules"] for g in doc["groups"]}


def test_golden_rules_for_shipped_slos() -> None:
    out = prometheus_rules(shipped())
    assert out.skipped == []
    assert sorted(out.exported) == sorted(s.metadata.name for s in shipped())
    check_golden(GOLDEN, out.text)


def test_sloth_fixture_rules_in_sync() -> None:
    out = prometheus_rules([s for s in shipped() if s.metadata.name == SLOTH_SLO])
    check_golden(SLOTH_RULES, out.text)


def test_promtool_check_rules_golden(tmp_path: Path) -> None:
    fresh = tmp_path / "rules.yml"
    fresh.write_text(prometheus_rules(shipped()).text)
    for path in (GOLDEN, fresh):
        r = promtool("check", "rules", path)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "SUCCESS" in r.stdout


@pytest.mark.slow
def test_promtool_fast_burn_pages_after_one_minute_not_before() -> None:
    r = promtool("test", "rules", PROMTOOL_FIX / "fast-burn-test.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_sloth_rules_substitute_window_and_follow_sloth_tiers() -> None:
    rules = rules_of(prometheus_rules(shipped()).text)[SLOTH_SLO]
    records = {str(r["record"]): str(r["expr"]) for r in rules if "record" in r}
    assert records["slo:sli_error:ratio_rate5m"] == (
        '(sum(rate(http_requests_total{service="api-gateway",code=~"5.."}[5m])))\n/\n'
        '(sum(rate(http_requests_total{service="api-gateway"}[5m])))')
    assert {k for k in records if k.startswith("slo:sli_error:")} == {
        f"slo:sli_error:ratio_rate{w}" for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d",
                                                 "30d")}
    # rate() queries: events = rate × window seconds, for minEvents (10 by default)
    assert records["slo:sli_total:increase1h"] == (
        '(sum(rate(http_requests_total{service="api-gateway"}[1h]))) * 3600')
    alerts = [r for r in rules if "alert" in r]
    assert [(a["labels"]["sloengine_tier"], a["labels"]["severity"]) for a in alerts] == [  # type: ignore[index]
        ("page-fast", "critical"), ("page-slow", "critical"), ("ticket-fast", "warning"),
        ("ticket-slow", "warning")]
    first = alerts[0]
    assert first["alert"] == alert_name(SLOTH_SLO) == "ApiGatewayPrometheusAvailabilityBurnRate"
    sel = f'{{sloengine_slo="{SLOTH_SLO}",sloengine_objective="0.999"}}'
    assert first["expr"] == (
        f"slo:sli_error:ratio_rate1h{sel} > (14.4 * 0.001)\n"
        f"and slo:sli_error:ratio_rate5m{sel} > (14.4 * 0.001)\n"
        f"and slo:sli_total:increase1h{sel} >= 10")
    assert "for" not in first
    ann = first["annotations"]
    assert ann["runbook_url"] == "https://runbooks.example.com/edge/gateway-availability"  # type: ignore[index]
    assert SLOTH_SLO in ann["description"] and "objective 0.999" in ann["description"]  # type: ignore[index]


def test_engine_slos_read_the_events_counter_with_group_labels() -> None:
    text = prometheus_rules(shipped()).text
    rules = rules_of(text)["gateway-route-availability"]
    r5 = next(r for r in rules if r.get("record") == "slo:sli_error:ratio_rate5m")
    assert r5["expr"] == (
        'sum by (route) (increase(sloengine_slo_events_total{slo="gateway-route-availability",'
        'good="false"}[5m]))\n/\n'
        'sum by (route) (increase(sloengine_slo_events_total{slo="gateway-route-availability"}'
        '[5m]))')
    assert r5["labels"] == {"sloengine_slo": "gateway-route-availability",
                            "sloengine_objective": "0.995"}
    alerts = [r for r in rules if "alert" in r]
    # explicit tiers: page-fast and ticket-slow only; minEvents 30, minBadEvents 2
    assert [a["labels"]["sloengine_tier"] for a in alerts] == ["page-fast", "ticket-slow"]  # type: ignore[index]
    assert str(alerts[0]["expr"]).splitlines()[2:] == [
        'and slo:sli_total:increase1h{sloengine_slo="gateway-route-availability",'
        'sloengine_objective="0.995"} >= 30',
        'and slo:sli_bad:increase5m{sloengine_slo="gateway-route-availability",'
        'sloengine_objective="0.995"} >= 2']
    assert "[route={{ $labels.route }}]" in str(alerts[0]["annotations"]["summary"])  # type: ignore[index]
    # 28 d period: the SRE-workbook row 13.44 for 2 % in 1 h (SLO-MATH.md)
    assert "(13.44 * 0.005)" in str(alerts[0]["expr"])


def test_calendar_and_timeslice_notes_are_in_the_file() -> None:
    out = prometheus_rules(shipped())
    assert ("legacy-settlement-success: calendar quarter (Europe/Berlin): Prometheus has no "
            "calendar alignment, the period is a rolling 90d") in out.notes
    assert any(n.startswith("inventory-grpc-uptime: tier page-fast: the 5m window holds no "
                            "whole 10m slice") for n in out.notes)
    for n in out.notes:
        assert f"#   note: {n.split(': ', 1)[1]}" in out.text
    tiers = [r["labels"]["sloengine_tier"]  # type: ignore[index]
             for r in rules_of(out.text)["inventory-grpc-uptime"] if "alert" in r]
    assert tiers == ["page-slow", "ticket-fast", "ticket-slow"]


def test_disabled_tiers_for_and_unsupported_slos(tmp_path: Path) -> None:
    result = load_paths([FIX / "sloth-payments.yaml", FIX / "slogen-prom-latency.yaml",
                         FIX / "slogen-prom-availability.yaml"])
    slos = [s.slo for s in result.slos]
    slos += load_text(tmp_path, """\
        apiVersion: sloengine/v1
        kind: SLO
        metadata: {name: filter-on-promql, service: s}
        spec:
          indicator:
            kind: ratio
            total: {source: prometheus, query: 'sum(rate(x[{{.window}}]))'}
            bad: {error: true}
          objectives: [{target: 0.99}]
          window: {rolling: 30d}
        ---
        apiVersion: sloengine/v1
        kind: SLO
        metadata: {name: histogram-expression, service: s}
        spec:
          indicator:
            kind: latency
            total: {source: prometheus, query: 'sum(rate(h_bucket[5m]))'}
            threshold: 1s
          objectives: [{target: 0.99}]
          window: {rolling: 30d}
        """)
    out = prometheus_rules(slos)
    assert [(s.slo, s.reason.split(":")[0].split(",")[0]) for s in out.skipped] == [
        ("filter-on-promql", "PromQL total with a filter for good/bad"),
        ("histogram-expression", "latency over PromQL needs the histogram's series selector")]
    assert "# skipped filter-on-promql: PromQL total with a filter for good/bad" in out.text
    rules = rules_of(out.text)
    latency = [r for r in rules["payments-requests-latency"] if "alert" in r]
    assert [(a["labels"]["sloengine_tier"], a.get("for")) for a in latency] == [  # type: ignore[index]
        ("page-fast", "5m"), ("page-slow", "5m")]
    assert "payments-requests-latency: disabled tier(s) not exported: ticket-fast, " \
           "ticket-slow" in out.notes
    # slo-generator good/total with increase(): error = 1 - good/total, events = increase
    avail = {r.get("record"): str(r["expr"]) for r in rules["prom-metrics-availability"]}
    assert avail["slo:sli_error:ratio_rate1h"].startswith("1 - (\n  (sum(increase(")
    assert avail["slo:sli_total:increase1h"] == (
        '(sum(increase(prometheus_http_requests_total{handler="/metrics"}[1h])))')
    # slo-generator distribution_cut: the bucket at the threshold over the count
    hist = {r.get("record"): str(r["expr"]) for r in rules["prom-metrics-latency"]}
    assert 'http_request_duration_seconds_bucket{handler="/metrics", code=~"2..", ' \
           'le="0.25"}[1h]' in hist["slo:sli_error:ratio_rate1h"]
    r = promtool("check", "rules", _write(tmp_path / "r.yml", out.text))
    assert r.returncode == 0, r.stdout + r.stderr


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """sloengine"""

    cli_export.register(app)
    return app


def test_cli_prometheus_rules_json_and_slo_filter(tmp_path: Path) -> None:
    out = tmp_path / "rules" / "slo.yml"
    r = CliRunner().invoke(_app(), ["export", "prometheus-rules", str(ROOT / "slo_definitions"),
                                    "--out", str(out), "--slo", SLOTH_SLO, "--json"])
    assert r.exit_code == 0, r.output
    doc = yaml.safe_load(r.stdout)
    assert doc == {"schema": "sloengine.export/v1", "files": [str(out)], "skipped": [],
                   "notes": []}
    assert out.read_text() == SLOTH_RULES.read_text()
    r = CliRunner().invoke(_app(), ["export", "prometheus-rules", str(ROOT / "slo_definitions"),
                                    "--slo", "nope"])
    assert isinstance(r.exception, ConfigError) and "no SLO named 'nope'" in str(r.exception)


def test_cli_prometheus_rules_stdout_and_stderr_notes() -> None:
    r = CliRunner().invoke(_app(), ["export", "prometheus-rules", str(ROOT / "slo_definitions")])
    assert r.exit_code == 0, r.output
    assert r.stdout == GOLDEN.read_text()
    assert "sloengine: note: legacy-settlement-success: calendar quarter" in r.stderr
    r = CliRunner().invoke(_app(), ["export", "prometheus-rules", "--json"])
    assert isinstance(r.exception, ConfigError)
