"""load_paths on native sloengine/v1 files: errors and warnings that name file, line and field;
duplicate names across files; the version hash of a definition."""

from __future__ import annotations

from pathlib import Path

from sloengine.spec import LoadResult, load_paths

NATIVE = """\
apiVersion: sloengine/v1
kind: SLO
metadata:
  name: checkout-availability
  service: checkout
  team: payments
  runbook: https://runbooks.example.com/checkout
spec:
  indicator:
    kind: ratio
    total:
      source: spans
      where: {service: checkout, kind: server}
    bad: {status_code: {gte: 500}}
  objectives:
    - target: 0.999
  window: {rolling: 30d}
"""


def write(tmp_path: Path, text: str, name: str = "slo.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load_text(tmp_path: Path, text: str) -> LoadResult:
    return load_paths([write(tmp_path, text)])


def where(result: LoadResult) -> list[tuple[str, int | None, str, str]]:
    return [(Path(d.file).name, d.line, d.field, d.message) for d in result.errors]


def test_valid_native_file(tmp_path: Path) -> None:
    r = load_text(tmp_path, NATIVE)
    assert r.diagnostics == []
    (loaded,) = r.slos
    assert (loaded.origin, loaded.line, Path(loaded.file).name) == ("sloengine/v1", 1, "slo.yaml")
    assert len(loaded.version) == 16 and int(loaded.version, 16) >= 0


def test_percentage_target_names_file_line_and_field(tmp_path: Path) -> None:
    r = load_text(tmp_path, NATIVE.replace("target: 0.999", "target: 99.9"))
    assert r.slos == []
    assert where(r) == [("slo.yaml", 16, "spec.objectives.0.target",
                         "target 99.9 looks like a percentage; write it as a ratio (0.999)")]
    assert str(r.errors[0]) == (f"{tmp_path / 'slo.yaml'}:16: spec.objectives.0.target: error: "
                                "target 99.9 looks like a percentage; write it as a ratio (0.999)")


def test_unknown_key(tmp_path: Path) -> None:
    r = load_text(tmp_path, NATIVE.replace("  window: {rolling: 30d}\n",
                                           "  window: {rolling: 30d}\n  windw: 7d\n"))
    assert where(r) == [("slo.yaml", 18, "spec.windw", "unknown key 'windw'")]


def test_unknown_key_in_a_filter_source(tmp_path: Path) -> None:
    r = load_text(tmp_path, NATIVE.replace("      where:", "      wher:"))
    assert where(r) == [("slo.yaml", 13, "spec.indicator.total.wher", "unknown key 'wher'")]


def test_missing_field_is_reported_at_its_parent(tmp_path: Path) -> None:
    r = load_text(tmp_path, NATIVE.replace("  service: checkout\n", ""))
    assert where(r) == [("slo.yaml", 3, "metadata.service", "Field required")]


def test_missing_window(tmp_path: Path) -> None:
    r = load_text(tmp_path, NATIVE.replace("  window: {rolling: 30d}\n", ""))
    assert where(r) == [("slo.yaml", 8, "spec.window", "Field required")]


def test_bad_duration(tmp_path: Path) -> None:
    r = load_text(tmp_path, NATIVE.replace("rolling: 30d", "rolling: 30 days"))
    (err,) = r.errors
    assert (err.line, err.field) == (17, "spec.window.rolling")
    assert "'30 days' is not a duration" in err.message


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    a = write(tmp_path, NATIVE, "team-a/slo.yaml")
    b = write(tmp_path, "# the same SLO again\n" + NATIVE, "team-b/slo.yml")
    r = load_paths([tmp_path])
    assert [Path(s.file).parent.name for s in r.slos] == ["team-a", "team-b"]
    assert where(r) == [("slo.yml", 2, "metadata.name",
                         f"duplicate SLO name 'checkout-availability' (also in {a}:1)")]
    assert r.errors[0].file == str(b)


def test_version_changes_with_the_definition_only(tmp_path: Path) -> None:
    def version(text: str, name: str) -> str:
        r = load_paths([write(tmp_path, text, name)])
        assert r.errors == []
        return r.slos[0].version

    base = version(NATIVE, "a.yaml")
    reformatted = """\
# Checkout availability, reformatted: comments, key order, flow vs block style, quoting
kind: SLO
apiVersion: "sloengine/v1"
metadata: {service: checkout, name: checkout-availability,   # trailing comment
           runbook: "https://runbooks.example.com/checkout", team: payments}
spec:
  window:
    rolling: 30d
  objectives: [{target: 0.9990}]
  indicator:
    bad:
      status_code:
        gte: 500
    total: {where: {kind: server, service: checkout}, source: spans}
    kind: ratio
"""
    assert version(reformatted, "b.yaml") == base
    assert version(NATIVE.replace("rolling: 30d", "rolling: 720h"), "c.yaml") == base
    assert version(NATIVE.replace("0.999", "0.9995"), "d.yaml") != base
    assert version(NATIVE.replace("gte: 500", "gte: 502"), "e.yaml") != base
    assert version(NATIVE.replace("team: payments", "team: billing"), "f.yaml") != base


def test_file_problems_are_diagnostics(tmp_path: Path) -> None:
    bad_yaml = write(tmp_path, "apiVersion: sloengine/v1\nkind: [SLO\n", "broken.yaml")
    not_slo = write(tmp_path, "apiVersion: apps/v1\nkind: Deployment\n", "deploy.yaml")
    a_list = write(tmp_path, "- 1\n- 2\n", "list.yaml")
    r = load_paths([bad_yaml, not_slo, a_list, tmp_path / "missing.yaml"])
    assert r.slos == []
    got = [(Path(d.file).name, d.line, d.field) for d in r.errors]
    assert got == [("missing.yaml", None, ""), ("broken.yaml", None, ""),
                   ("deploy.yaml", 1, "apiVersion"), ("list.yaml", 1, ""),
                   ("list.yaml", 2, "")]  # a YAML list is a list of documents
    assert r.errors[0].message == "no such file"
    assert r.errors[1].message.startswith("not valid YAML")
    assert r.errors[2].message == (
        "not an SLO document: unknown apiVersion 'apps/v1' (kind 'Deployment')")


def test_multi_document_native_file_and_warnings(tmp_path: Path) -> None:
    second = NATIVE.replace("checkout-availability", "checkout-latency").replace(
        "  team: payments\n", "").replace("target: 0.999", "target: 0.4")
    r = load_text(tmp_path, NATIVE + "---\n" + second)
    assert [(s.slo.metadata.name, s.line) for s in r.slos] == [
        ("checkout-availability", 1), ("checkout-latency", 19)]
    got = {(d.line, d.field, d.message.split(":")[0]) for d in r.warnings}
    assert (33, "spec.objectives.0.target", "target 0.4 is below 50 %") in got
    assert (21, "metadata", "no owner or team") in got
