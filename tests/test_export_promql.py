"""PromQL mappings evaluated by ``promtool test rules``: the recordings compute, from the
series a Prometheus holds, the numbers the engine computes (per group, per window, per
budgeting method). Values are compared exactly as Prometheus prints them."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

from servers import need

from sloengine.export import prometheus_rules
from sloengine.spec import SLO, load_paths


def load_text(tmp_path: Path, text: str) -> list[SLO]:
    f = tmp_path / "slo.yaml"
    f.write_text(textwrap.dedent(text))
    result = load_paths([f])
    assert not result.errors, result.errors
    return [s.slo for s in result.slos]


def promtool_test(tmp_path: Path, rules: str, test: str) -> None:
    (tmp_path / "rules.yml").write_text(rules)
    (tmp_path / "test.yml").write_text(test)
    r = subprocess.run([need("promtool"), "test", "rules", str(tmp_path / "test.yml")],
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


PROM_SLOS = """\
    apiVersion: sloengine/v1
    kind: SLO
    metadata: {name: counters, service: gw}
    spec:
      indicator:
        kind: ratio
        total: {source: prometheus, query: 'requests_total{job="gw"}'}
        bad: {source: prometheus, query: 'requests_total{job="gw",code="500"}'}
      groupBy: [route]
      objectives: [{target: 0.99}]
      window: {rolling: 30d}
    ---
    apiVersion: sloengine/v1
    kind: SLO
    metadata: {name: histogram, service: gw}
    spec:
      indicator:
        kind: latency
        total: {source: prometheus, query: 'duration_seconds_bucket{job="gw"}'}
        threshold: 1s
      objectives: [{target: 0.99}]
      window: {rolling: 30d}
    """

PROM_TEST = """\
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - {series: 'requests_total{job="gw",route="/a",code="200"}', values: '0+99x120'}
      - {series: 'requests_total{job="gw",route="/a",code="500"}', values: '0+1x120'}
      - {series: 'duration_seconds_bucket{job="gw",le="0.5"}', values: '0+80x120'}
      - {series: 'duration_seconds_bucket{job="gw",le="1.0"}', values: '0+95x120'}
      - {series: 'duration_seconds_bucket{job="gw",le="+Inf"}', values: '0+100x120'}
      - {series: 'duration_seconds_count{job="gw"}', values: '0+100x120'}
    promql_expr_test:
      - expr: slo:sli_error:ratio_rate1h
        eval_time: 2h
        exp_samples:
          - {labels: 'slo:sli_error:ratio_rate1h{route="/a",
                      sloengine_objective="0.99",sloengine_slo="counters"}',
             value: 0.01}
          - {labels: 'slo:sli_error:ratio_rate1h{sloengine_objective="0.99",
                      sloengine_slo="histogram"}',
             value: %(hist)s}
      - expr: slo:sli_total:increase1h
        eval_time: 2h
        exp_samples:
          - {labels: 'slo:sli_total:increase1h{route="/a",
                      sloengine_objective="0.99",sloengine_slo="counters"}',
             value: 6000}
          - {labels: 'slo:sli_total:increase1h{sloengine_objective="0.99",
                      sloengine_slo="histogram"}',
             value: 6000}
"""


def test_promql_counters_and_histogram_evaluated_by_promtool(tmp_path: Path) -> None:
    """Queries without the placeholder are counters (increase over the window, summed by the
    group-by labels); latency over a histogram reads the bucket at the threshold (``le="1.0"``
    from a Python client matches a 1 s threshold) over the count."""
    out = prometheus_rules(load_text(tmp_path, PROM_SLOS))
    assert out.skipped == []
    promtool_test(tmp_path, out.text, PROM_TEST % {"hist": repr(1 - 5700 / 6000)})


ENGINE_SLOS = """\
    apiVersion: sloengine/v1
    kind: SLO
    metadata: {name: routes, service: gw}
    spec:
      indicator: {kind: ratio, total: {source: spans}, bad: {error: true}}
      groupBy: [route]
      objectives: [{target: 0.99}]
      window: {rolling: 30d}
      alerting: {minEvents: 20, minBadEvents: 2}
    ---
    apiVersion: sloengine/v1
    kind: SLO
    metadata: {name: slices, service: inv}
    spec:
      indicator: {kind: ratio, total: {source: spans}, bad: {error: true}}
      objectives: [{target: 0.99, timeSliceTarget: 0.95}]
      window: {rolling: 7d}
      budgeting: {method: Timeslices, timeSliceWindow: 10m}
    """

ENGINE_TEST = """\
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - {series: 'sloengine_slo_events_total{slo="routes",route="/a",good="true"}',
         values: '0+100x200'}
      - {series: 'sloengine_slo_events_total{slo="routes",route="/a",good="false"}',
         values: '0+1x200'}
      - {series: 'sloengine_slo_events_total{slo="routes",route="/b",good="true"}',
         values: '0+100x200'}
      - {series: 'sloengine_slo_events_total{slo="routes",route="/b",good="false"}',
         values: '0x200'}
      - {series: 'sloengine_slo_events_total{slo="slices",good="true"}', values: '0+100x200'}
      - {series: 'sloengine_slo_events_total{slo="slices",good="false"}',
         values: '0x60 10+10x9 100x130'}
    promql_expr_test:
      - expr: slo:sli_error:ratio_rate1h{sloengine_slo="routes"}
        eval_time: 2h5m
        exp_samples:
          - {labels: 'slo:sli_error:ratio_rate1h{route="/a",
                      sloengine_objective="0.99",sloengine_slo="routes"}',
             value: %(a)s}
          - {labels: 'slo:sli_error:ratio_rate1h{route="/b",
                      sloengine_objective="0.99",sloengine_slo="routes"}',
             value: 0}
      - expr: slo:sli_bad:increase5m{route="/a"}
        eval_time: 2h5m
        exp_samples:
          - {labels: 'slo:sli_bad:increase5m{route="/a",
                      sloengine_objective="0.99",sloengine_slo="routes"}',
             value: 5}
      - expr: slo:sli_total:increase1h{route="/a"}
        eval_time: 2h5m
        exp_samples:
          - {labels: 'slo:sli_total:increase1h{route="/a",
                      sloengine_objective="0.99",sloengine_slo="routes"}',
             value: 6060}
      # slices of 10 m: only (60m, 70m] is bad (100 of 1100 events fail: 90.9 %% < 95 %%);
      # at 1h15m the 30 m window holds the 3 whole slices ending 50m, 1h, 1h10m; at 2h5m
      # the 2 h window the 12 ending 10m ... 2h; the 5 m page tier is not exported (no slice)
      - expr: slo:sli_error:ratio_rate30m{sloengine_slo="slices"}
        eval_time: 1h15m
        exp_samples:
          - {labels: 'slo:sli_error:ratio_rate30m{sloengine_objective="0.99",
                      sloengine_slo="slices"}',
             value: %(third)s}
      - expr: slo:sli_error:ratio_rate30m{sloengine_slo="slices"}
        eval_time: 2h5m
        exp_samples:
          - {labels: 'slo:sli_error:ratio_rate30m{sloengine_objective="0.99",
                      sloengine_slo="slices"}',
             value: 0}
      - expr: slo:sli_error:ratio_rate2h{sloengine_slo="slices"}
        eval_time: 2h5m
        exp_samples:
          - {labels: 'slo:sli_error:ratio_rate2h{sloengine_objective="0.99",
                      sloengine_slo="slices"}',
             value: %(twelfth)s}
"""


def test_engine_counter_mapping_evaluated_by_promtool(tmp_path: Path) -> None:
    """The recordings of engine SLOs compute the engine's numbers from the counter: per-route
    error ratio, bad and total events, and Timeslices as bad slices / slices with data."""
    out = prometheus_rules(load_text(tmp_path, ENGINE_SLOS))
    promtool_test(tmp_path, out.text, ENGINE_TEST % {
        "a": repr(60 / 6060), "third": repr(1 / 3), "twelfth": repr(1 / 12)})
