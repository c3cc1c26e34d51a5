"""OpenSLO v1, Sloth and slo-generator documents → the one SLO model, with exact expected
output (golden JSON files of ``SLO.model_dump(mode="json", by_alias=True)``) and diagnostics
that name file, line and field.

Regenerate the golden files after an intended model change with
``SLOENGINE_REGEN_GOLDEN=1 python -m pytest tests/test_spec_import.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from sloengine.spec import SLO, LoadResult, load_paths

FIX = Path(__file__).parent / "fixtures" / "slo"
GOLDEN = FIX / "golden"


def load(*names: str) -> LoadResult:
    return load_paths([FIX / n for n in names])


def dump(slo: SLO) -> dict[str, Any]:
    return slo.model_dump(mode="json", by_alias=True)


def by_name(result: LoadResult) -> dict[str, SLO]:
    return {s.slo.metadata.name: s.slo for s in result.slos}


def check_golden(name: str, slo: SLO) -> None:
    path = GOLDEN / f"{name}.json"
    actual = dump(slo)
    if os.environ.get("SLOENGINE_REGEN_GOLDEN"):
        path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n")
    assert actual == json.loads(path.read_text())


def found(result: LoadResult, severity: str) -> list[tuple[str, int | None, str]]:
    """(file name, line, field) of each diagnostic of a severity, in order."""
    return [(Path(d.file).name, d.line, d.field) for d in result.diagnostics
            if d.severity == severity]


def message(result: LoadResult, field: str) -> str:
    (d,) = [d for d in result.diagnostics if d.field == field]
    return d.message


def write(tmp_path: Path, text: str, name: str = "slo.yaml") -> LoadResult:
    path = tmp_path / name
    path.write_text(text)
    return load_paths([path])


# --- OpenSLO ----------------------------------------------------------------------------


def test_openslo_multi_document_by_reference() -> None:
    """Service + DataSource + SLI + AlertCondition + AlertPolicy + SLO, all by name."""
    r = load("openslo-checkout.yaml")
    assert r.errors == []
    (loaded,) = r.slos
    assert (loaded.origin, loaded.line) == ("openslo/v1", 65)
    check_golden("openslo-checkout-availability", loaded.slo)
    assert found(r, "warning") == [
        ("openslo-checkout.yaml", 15, "spec"),
        ("openslo-checkout.yaml", 48, "spec.condition"),
        ("openslo-checkout.yaml", 99, "spec.alertPolicies.1.spec.conditions.0.spec.condition"),
    ]
    assert "only its type is used" in r.warnings[0].message
    assert message(r, "spec.condition") == (
        "burn-rate condition 'checkout-fast-burn' mapped approximately: OpenSLO checks one "
        "window (1h); sloengine also requires a short window of 5m (lookbackWindow/12, SRE "
        "workbook) to exceed 14.4")


def test_openslo_alert_condition_becomes_a_tier() -> None:
    tiers = load("openslo-checkout.yaml").slos[0].slo.spec.alerting.tiers
    assert tiers is not None
    fast, slow = tiers
    assert (fast.name, fast.severity, fast.burn_rate, str(fast.long_window),
            str(fast.short_window), str(fast.for_)) == (
        "checkout-fast-burn", "page", 14.4, "1:00:00", "0:05:00", "0:02:00")
    # alertAfter: 0m is no delay; 3d / 12 = 6h
    assert (slow.severity, slow.burn_rate, str(slow.short_window), slow.for_) == (
        "ticket", 1.0, "6:00:00", None)


def test_openslo_inline_indicator_timeslices_calendar_target_percent() -> None:
    r = load("openslo-search.yaml")
    assert r.errors == []
    slos = by_name(r)
    check_golden("openslo-search-availability", slos["search-availability"])
    check_golden("openslo-search-latency", slos["search-latency"])
    avail = slos["search-availability"].spec
    assert avail.objectives[0].target == 0.995  # targetPercent 99.5, exactly
    assert avail.objectives[0].time_slice_target == 0.95
    assert (avail.window.calendar, avail.window.time_zone) == ("month", "Europe/Berlin")
    assert (avail.budgeting.method, str(avail.budgeting.time_slice_window)) == (
        "Timeslices", "0:01:00")
    latency = slos["search-latency"].spec
    assert latency.indicator.kind == "latency"
    assert str(latency.indicator.threshold) == "0:00:00.300000"
    # timeSliceWindow: 5 is five minutes (OpenSLO README); 2w rolling is 14 days
    assert (latency.budgeting.method, str(latency.budgeting.time_slice_window)) == (
        "RatioTimeslices", "0:05:00")
    assert str(latency.window.rolling) == "14 days, 0:00:00"


def _without_metadata(slo: SLO) -> dict[str, Any]:
    return {k: v for k, v in dump(slo).items() if k != "metadata"}


def test_imported_openslo_equals_native() -> None:
    imported = by_name(load("openslo-search.yaml"))
    native = by_name(load("native-search.yaml"))
    for name in ("search-availability", "search-latency"):
        assert _without_metadata(imported[name]) == _without_metadata(native[f"{name}-native"])


def test_imported_sloth_equals_native(tmp_path: Path) -> None:
    native = write(tmp_path, """\
apiVersion: sloengine/v1
kind: SLO
metadata: {name: payments-requests-latency, service: payments}
spec:
  indicator:
    kind: ratio
    total:
      source: prometheus
      query: sum(rate(http_request_duration_seconds_count{job="payments"}[{{.window}}]))
    bad:
      source: prometheus
      query: |
        (
          sum(rate(http_request_duration_seconds_count{job="payments"}[{{.window}}]))
          -
          sum(rate(http_request_duration_seconds_bucket{le="0.4",job="payments"}[{{.window}}]))
        )
  objectives: [{target: 0.99}]
  window: {rolling: 30d}
  alerting:
    tiers:
      - {name: page-fast, severity: page, longWindow: 1h, shortWindow: 5m, budgetPercent: 2,
         for: 5m, labels: {severity: critical}}
      - {name: page-slow, severity: page, longWindow: 6h, shortWindow: 30m, budgetPercent: 5,
         for: 5m, labels: {severity: critical}}
      - {name: ticket-fast, severity: ticket, longWindow: 1d, shortWindow: 2h,
         budgetPercent: 10, enabled: false}
      - {name: ticket-slow, severity: ticket, longWindow: 3d, shortWindow: 6h,
         budgetPercent: 10, enabled: false}
""")
    assert native.errors == []
    imported = by_name(load("sloth-payments.yaml"))["payments-requests-latency"]
    assert _without_metadata(imported) == _without_metadata(native.slos[0].slo)


def test_openslo_errors_name_file_line_and_field() -> None:
    r = load("bad/openslo-unsupported.yaml")
    assert r.slos == []
    name = "openslo-unsupported.yaml"
    assert found(r, "error") == [
        (name, 15, "spec.indicator.spec.ratioMetric.raw"),
        (name, 46, "spec.indicator.spec.ratioMetric.total.metricSource.type"),
        (name, 41, "spec.indicator.spec.ratioMetric.good.metricSource.type"),
        (name, 78, "spec.timeWindow.0.duration"),
        (name, 100, "spec.objectives.0.indicatorRef"),
        (name, 115, "spec.indicator.spec.thresholdMetric.metricSource.type"),
        (name, 119, "spec.timeWindow.0.duration"),
        (name, 170, "spec.alertPolicies.0.spec.conditions.0.spec.condition.kind"),
    ]
    messages = [d.message for d in r.errors]
    assert messages[0].startswith("raw (precomputed ratio) metrics are not supported")
    assert messages[1].startswith("metric source type 'Datadog' is not supported")
    assert messages[3] == "calendar window '1Y' is not supported: use 1w (or 7d), 1M or 1Q"
    assert messages[4].startswith("composite SLOs")
    assert messages[5].startswith("thresholdMetric: sloengine reads a latency threshold only")
    assert messages[6].startswith("a rolling window of 1M has no fixed length")
    assert messages[7] == "alert condition kind 'budgetremaining' is not supported (only burnrate)"


def test_native_error_inside_a_referenced_sli_points_into_the_sli() -> None:
    r = load("bad/openslo-native-typo.yaml")
    assert r.slos == []
    assert found(r, "error") == [("openslo-native-typo.yaml", 21, "spec.indicator.total.whre")]
    assert r.errors[0].message == "unknown key 'whre'"


OPENSLO_HEAD = """\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: api-availability
  labels: {team: api}
spec:
  service: api
  indicator:
    metadata: {name: api-errors}
    spec:
      ratioMetric:
        bad:
          metricSource: {type: Prometheus, spec: {query: 'sum(api_requests{code=~"5.."})'}}
        total:
          metricSource: {type: Prometheus, spec: {query: sum(api_requests)}}
"""


def test_openslo_percent_target_in_target_field_is_reported_at_its_line(tmp_path: Path) -> None:
    r = write(tmp_path, OPENSLO_HEAD + """\
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives:
    - target: 99.95
""")
    assert found(r, "error") == [("slo.yaml", 19, "spec.objectives.0.target")]
    assert r.errors[0].message == (
        "target 99.95 looks like a percentage; write it as a ratio (0.9995)")


def test_openslo_target_percent_is_exact(tmp_path: Path) -> None:
    r = write(tmp_path, OPENSLO_HEAD + """\
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives:
    - targetPercent: 99.95
    - targetPercent: 99.5
""")
    assert r.errors == []
    assert [o.target for o in r.slos[0].slo.spec.objectives] == [0.9995, 0.995]


def test_openslo_rules_with_lines(tmp_path: Path) -> None:
    """Different slice windows, both target forms, an unknown key, a missing policy, an
    unaligned calendar start: each reported where it was written."""
    r = write(tmp_path, OPENSLO_HEAD + """\
  timeWindow:
    - duration: 1w
      isRolling: false
      calendar: {startTime: "2024-01-03 09:00:00", timeZone: UTC}
  budgetingMethod: Timeslices
  budgetMethod: typo
  objectives:
    - {target: 0.99, targetPercent: 99, timeSliceWindow: 1m}
    - {target: 0.95, timeSliceTarget: 0.9, timeSliceWindow: 2m}
  alertPolicies:
    - alertPolicyRef: nowhere
""")
    assert r.slos == []
    assert found(r, "warning") == [
        ("slo.yaml", 21, "spec.budgetMethod"),
        ("slo.yaml", 19, "spec.timeWindow.0.calendar.startTime"),
    ]
    assert r.warnings[0].message == "unknown key 'budgetMethod' ignored"
    assert r.warnings[1].message.startswith(
        "startTime 2024-01-03 09:00:00 is not the start of a week: ignored")
    assert found(r, "error") == [
        ("slo.yaml", 24, "spec.objectives.1.timeSliceWindow"),
        ("slo.yaml", 23, "spec.objectives.0"),
        ("slo.yaml", 26, "spec.alertPolicies.0.alertPolicyRef"),
    ]
    assert [d.message for d in r.errors] == [
        "timeSliceWindow 2m differs from 1m (objective 0): sloengine has one slice size per SLO",
        "give exactly one of target or targetPercent",
        "no AlertPolicy named 'nowhere' in this file",
    ]


def test_openslo_unreferenced_documents_and_duplicates(tmp_path: Path) -> None:
    r = write(tmp_path, OPENSLO_HEAD + """\
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.99}]
---
apiVersion: openslo/v1
kind: SLI
metadata: {name: orphan}
spec:
  ratioMetric:
    good: {metricSource: {type: Prometheus, spec: {query: a}}}
    total: {metricSource: {type: Prometheus, spec: {query: b}}}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: api-availability}
spec: {}
---
apiVersion: openslo/v1alpha
kind: SLO
metadata: {name: old}
spec: {}
""")
    assert [s.slo.metadata.name for s in r.slos] == ["api-availability"]
    assert found(r, "error") == [("slo.yaml", 30, "metadata.name"),
                                 ("slo.yaml", 33, "apiVersion")]
    assert r.errors[0].message == "duplicate SLO name 'api-availability' (also at line 1)"
    assert r.errors[1].message == "'openslo/v1alpha' is not supported: only openslo/v1"
    (orphan,) = [d for d in r.warnings if d.line == 22]
    assert (orphan.field, orphan.message) == (
        "metadata.name", "SLI 'orphan' is not referenced by any SLO in this file: not imported")


def test_openslo_policy_flags_and_short_window_rounding(tmp_path: Path) -> None:
    r = write(tmp_path, OPENSLO_HEAD + """\
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.99}]
  alertPolicies:
    - kind: AlertPolicy
      metadata: {name: quiet}
      spec:
        alertWhenBreaching: false
        alertWhenNoData: true
        notificationTargets: [{targetRef: email}]
        conditions:
          - kind: AlertCondition
            metadata: {name: half-hour}
            spec:
              severity: sev2
              condition: {kind: burnrate, op: lte, threshold: 6, lookbackWindow: 30m}
""")
    assert r.errors == []
    (tier,) = r.slos[0].slo.spec.alerting.tiers or []
    # 30m / 12 = 2.5 min, rounded up to whole minutes
    assert (tier.name, tier.severity, tier.enabled, str(tier.short_window)) == (
        "half-hour", "sev2", False, "0:03:00")
    base = "spec.alertPolicies.0.spec"
    assert [d.field for d in r.warnings] == [
        f"{base}.alertWhenNoData", f"{base}.notificationTargets",
        f"{base}.conditions.0.spec.condition.op", f"{base}.conditions.0.spec.condition",
        "metadata"]


def test_openslo_malformed_documents_never_raise(tmp_path: Path) -> None:
    r = write(tmp_path, """\
apiVersion: openslo/v1
kind: SLO
metadata: {displayName: no name}
spec: {}
---
apiVersion: openslo/v1
kind: Gadget
metadata: {name: g}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: x}
spec:
  objectives: nope
""")
    assert r.slos == []
    assert found(r, "error") == [("slo.yaml", 3, "metadata.name"), ("slo.yaml", 7, "kind"),
                                 ("slo.yaml", 14, "spec.objectives")]


# --- Sloth ------------------------------------------------------------------------------


def test_sloth_two_slos_ticket_disabled() -> None:
    r = load("sloth-payments.yaml")
    assert r.errors == []
    slos = by_name(r)
    assert [s.line for s in r.slos] == [11, 33]
    assert {s.origin for s in r.slos} == {"sloth"}
    check_golden("sloth-payments-requests-availability", slos["payments-requests-availability"])
    check_golden("sloth-payments-requests-latency", slos["payments-requests-latency"])
    latency = slos["payments-requests-latency"].spec.alerting.tiers or []
    assert [(t.severity, t.enabled) for t in latency] == [
        ("page", True), ("page", True), ("ticket", False), ("ticket", False)]
    assert found(r, "warning") == [("sloth-payments.yaml", 19, "slos.0.alerting.name"),
                                   ("sloth-payments.yaml", 33, "metadata")]


def test_sloth_tiers_are_the_workbook_table() -> None:
    from sloengine.spec import resolve

    slo = by_name(load("sloth-payments.yaml"))["payments-requests-availability"]
    assert [round(t.burn_rate, 9) for t in resolve(slo)] == [14.4, 6.0, 3.0, 1.0]


def test_sloth_kubernetes_crd_camel_case() -> None:
    r = load("sloth-k8s.yaml")
    assert r.errors == []
    check_golden("sloth-ledger-requests-availability", r.slos[0].slo)


def test_sloth_unsupported_slis() -> None:
    r = load("bad/sloth-unsupported.yaml")
    assert [s.slo.metadata.name for s in r.slos] == ["home-wifi-dhcp-availability"]
    name = "sloth-unsupported.yaml"
    assert found(r, "error") == [(name, 11, "slos.0.sli.raw"), (name, 21, "slos.1.sli.plugin"),
                                 (name, 26, "slos.2.objective")]
    assert r.errors[0].message.startswith("sli.raw (a precomputed error ratio) is not supported")
    assert r.errors[1].message.startswith("sli.plugin is not supported")
    assert r.errors[2].message.startswith("objective 100 must be a percentage")


def test_sloth_name_error_reported_at_the_slo(tmp_path: Path) -> None:
    r = write(tmp_path, """\
version: prometheus/v1
service: Payments
slos:
  - name: availability
    objective: 0.999
    sli:
      events: {error_query: a, total_query: b}
    alerting:
      page_alert: {lables: {x: y}}
""")
    assert found(r, "warning")[:2] == [("slo.yaml", 9, "slos.0.alerting.page_alert.lables"),
                                       ("slo.yaml", 5, "slos.0.objective")]
    assert r.warnings[1].message == (
        "Sloth objectives are percentages: 0.999 means 0.999 %, not 99.9 %")
    assert found(r, "error") == [("slo.yaml", 4, "metadata.name")]


# --- slo-generator ----------------------------------------------------------------------


def test_slo_generator_good_bad_ratio() -> None:
    r = load("slogen-prom-availability.yaml")
    assert r.errors == []
    (loaded,) = r.slos
    assert loaded.origin == "slo-generator"
    check_golden("slogen-prom-metrics-availability", loaded.slo)
    assert found(r, "warning")[:2] == [("slogen-prom-availability.yaml", 20, "spec.goal"),
                                       ("slogen-prom-availability.yaml", 15, "spec.exporters")]


def test_slo_generator_distribution_cut() -> None:
    r = load("slogen-prom-latency.yaml")
    assert r.errors == []
    check_golden("slogen-prom-metrics-latency", r.slos[0].slo)
    assert message(r, "spec.error_budget_policy").startswith(
        "error budget policy 'default' lives in slo-generator's shared config and is not read")


def test_slo_generator_filter_bad_makes_total_good_plus_bad(tmp_path: Path) -> None:
    r = write(tmp_path, """\
apiVersion: sre.google.com/v2
kind: ServiceLevelObjective
metadata:
  name: flask-availability
  labels: {service_name: flask, team: web}
spec:
  description: Flask answers
  backend: prometheus
  method: good_bad_ratio
  service_level_indicator:
    filter_good: flask_http_request_total{status!~"5.."}[window]
    filter_bad: flask_http_request_total{status=~"5.."}
    operators: [rate, sum]
  goal: 0.99
""")
    assert r.errors == []
    ind = dump(r.slos[0].slo)["spec"]["indicator"]
    good = 'sum(rate(flask_http_request_total{status!~"5.."}[{{.window}}]))'
    bad = 'sum(rate(flask_http_request_total{status=~"5.."}[{{.window}}]))'
    assert ind["total"] == {"source": "prometheus", "query": f"({good}) + ({bad})"}
    assert ind["bad"] == {"source": "prometheus", "query": bad}
    assert ind["good"] is None


def test_slo_generator_unsupported() -> None:
    r = load("bad/slogen-cloud-monitoring.yaml", "bad/slogen-query-sli.yaml")
    assert r.slos == []
    assert found(r, "error") == [("slogen-cloud-monitoring.yaml", 13, "spec.backend"),
                                 ("slogen-query-sli.yaml", 14, "spec.method")]
    assert r.errors[0].message.startswith("backend 'cloud_monitoring' is not supported")
    assert r.errors[1].message.startswith("method query_sli is not supported")


def test_slo_generator_distribution_cut_needs_threshold(tmp_path: Path) -> None:
    r = write(tmp_path, """\
apiVersion: sre.google.com/v2
kind: ServiceLevelObjective
metadata: {name: lat, labels: {service_name: web}}
spec:
  backend: prometheus
  method: distribution_cut
  service_level_indicator:
    expression: http_request_duration_seconds_bucket{job="web"}
  goal: 0.99
""")
    assert r.slos == []
    # the missing key is reported at its parent's line
    assert found(r, "error") == [("slo.yaml", 7, "spec.service_level_indicator.threshold_bucket")]


@pytest.mark.parametrize("text", ["apiVersion: sre.google.com/v2\nkind: ServiceLevelObjective\n",
                                  "apiVersion: sre.google.com/v2\nkind: Other\nmetadata: {name: a}"
                                  "\nspec: {}\n",
                                  "version: prometheus/v1\nservice: s\nslos: [{name: 3}]\n",
                                  "apiVersion: sloth.slok.dev/v1\nkind: Other\nspec: {}\n"])
def test_malformed_foreign_documents_never_raise(tmp_path: Path, text: str) -> None:
    r = write(tmp_path, text)
    assert r.slos == []
    assert r.errors
    assert all(d.line is not None for d in r.errors)
