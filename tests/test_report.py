"""``sloengine report`` over the checked-in sample data: the Markdown golden file, the JSON
contract (sloengine.report/v1) and its agreement with evaluate/replay, well-formed HTML with an
<svg> per chart, the auditor variant, corrections, and — when Chromium is installed and not on
CI — a real browser rendering the page."""

from __future__ import annotations

import os
import struct
import subprocess
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import ROOT, run_cli
from servers import need

from sloengine.engine import Engine
from sloengine.settings import load_settings

FROM, TO = datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC)
TWO = ["gateway-availability", "gateway-latency"]
LABEL = "2026-11-20 – 2026-11-24"
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
GOLDEN = ROOT / "tests" / "golden" / "report-sample.md"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The sample data in a fresh store; cwd is the repo so SLO file paths are relative
    (``slo_definitions/gateway.yaml``) and the golden file does not depend on the checkout."""
    db = tmp_path_factory.mktemp("report") / "sample.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        settings = load_settings(None, db=db, slo_dir=Path("slo_definitions"))
        engine = Engine(settings, clock=lambda: NOW)
        results = engine.ingest([ROOT / "sample_data"])
        assert sum(r.counts.rejected for r in results) == 0
        yield engine
        engine.close()


def _doc(engine: Engine, out: Path, **kw: Any) -> dict[str, Any]:
    [f] = engine.report(FROM, TO, out, "json", slos=TWO, label=LABEL, **kw)
    assert f.name == "report.json"
    doc: dict[str, Any] = orjson.loads(f.read_bytes())
    return doc


def test_markdown_golden(sample: Engine, tmp_path: Path) -> None:
    [f] = sample.report(FROM, TO, tmp_path, "md", slos=TWO, label=LABEL)
    assert f == tmp_path / "report.md"
    text = f.read_text(encoding="utf-8")
    if os.environ.get("SLOENGINE_UPDATE_GOLDEN") == "1":  # regenerate, review, commit
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")
    # deterministic: the same store renders the same bytes
    [again] = sample.report(FROM, TO, tmp_path / "again", "md", slos=TWO, label=LABEL)
    assert again.read_bytes() == f.read_bytes()


def test_json_shape(sample: Engine, tmp_path: Path) -> None:
    doc = _doc(sample, tmp_path)
    assert list(doc) == ["schema", "generated_at", "period", "summary", "slos", "auditor"]
    assert doc["schema"] == "sloengine.report/v1"
    assert doc["generated_at"] == "2026-11-25T08:00:00Z"
    assert doc["period"] == {"from": "2026-11-20T00:00:00Z", "to": "2026-11-24T00:00:00Z",
                             "label": LABEL, "minutes": 5760, "step_minutes": 60}
    assert doc["auditor"] is None
    assert [s["name"] for s in doc["slos"]] == TWO
    assert {tuple(r) for r in doc["summary"]} == {(
        "slo", "service", "objective", "target", "group", "status", "good", "total", "sli",
        "window_sli", "budget_unit", "budget_remaining_start", "budget_remaining_end",
        "alerts")}
    for s in doc["slos"]:
        assert set(s) == {
            "name", "service", "display_name", "team", "owner", "runbook", "description",
            "version", "origin", "file", "window", "budgeting_method", "source", "indicator",
            "objectives", "tiers", "totals", "at_end", "series", "alerts", "corrections",
            "contributors", "exemplars"}
        [series] = s["series"]
        assert len(series["points"]) == 97  # hourly, both ends included
        assert set(series["points"][0]) == {"t", "status", "sli", "remaining_ratio",
                                            "consumed_ratio", "step_good", "step_total",
                                            "step_sli"}
        assert [d["date"] for d in series["days"]] == [
            "2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23"]
        [tot] = s["totals"]
        # the steps add up to the period, and so do the days
        assert sum(p["step_total"] for p in series["points"]) == tot["total"]
        assert sum(d["good"] for d in series["days"]) == tot["good"]
        # contributors count exactly the bad events the budget counts
        k = s["contributors"]
        assert k["available"] and k["bad_events"] == tot["total"] - tot["good"] > 0
        assert sum(r["bad"] for r in k["by_route"]) == k["bad_events"]
        assert k["by_route"] == sorted(k["by_route"], key=lambda r: -r["bad"])
        assert 0 < len(s["exemplars"]) <= 5
        for e in s["exemplars"]:
            assert e["command"] == f"sloengine trace {e['trace_id']}"
            assert e["time"].endswith("Z") and e["time_unix_nano"].isdigit()
        assert s["exemplars"] == sorted(s["exemplars"], key=lambda e: int(e["time_unix_nano"]))
        # the last point is the state at the end, which is what evaluate says
        [end] = s["at_end"]
        assert series["points"][-1]["sli"] == end["sli"]
        assert series["points"][-1]["remaining_ratio"] == end["budget"]["remaining_ratio"]
    ga = doc["slos"][0]
    assert ga["contributors"]["by_route"][0]["route"] == "POST /orders"
    services = [r["service"] for r in ga["contributors"]["by_service"]]
    assert services[:3] == ["api-gateway", "orders-service", "payments-service"]
    lat = doc["slos"][1]
    assert lat["indicator"] == {"kind": "latency", "threshold": "500ms"}
    assert lat["contributors"]["by_service"][1]["service"] == "orders-service"


def test_alerts_agree_with_replay(sample: Engine, tmp_path: Path) -> None:
    doc = _doc(sample, tmp_path)
    rep = sample.replay(FROM, TO, 1, "gateway-availability", incidents=[])
    ids = [f"{a.slo}/{a.objective}/{a.group or '-'}/{a.tier}@"
           f"{datetime.fromtimestamp(a.pending * 60, UTC):%Y-%m-%dT%H:%M:%SZ}"
           for a in rep["alerts"]]
    ga = doc["slos"][0]
    assert sorted(a["id"] for a in ga["alerts"]) == sorted(ids)
    assert doc["summary"][0]["alerts"] == {"page": 3, "ticket": 2}
    assert {a["severity"] for a in doc["slos"][1]["alerts"]} == {"ticket"}
    # the report is in the audit trail with the sha256 of every file it wrote
    detail = orjson.loads(sample.store.one(
        "SELECT detail FROM audit_log WHERE action = 'report' ORDER BY seq DESC LIMIT 1"))
    assert detail["slos"] == TWO and detail["format"] == "json"
    assert [len(f["sha256"]) for f in detail["files"]] == [64]


class _Checker(HTMLParser):
    """Tags must nest and close (void elements excepted); counts tags."""

    VOID = frozenset({"meta", "br", "img", "input", "hr", "link", "wbr", "col", "source"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.counts: dict[str, int] = {}
        self.problems: list[str] = []
        self.attrs: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self.attrs.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self.attrs.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'} at "
                                 f"line {self.getpos()[0]}")
            return
        self.stack.pop()


def _check(path: Path) -> _Checker:
    c = _Checker()
    c.feed(path.read_text())
    c.close()
    assert c.problems == [], path.name
    assert c.stack == [], f"{path.name}: unclosed {c.stack}"
    assert c.counts.get("script", 0) == 0  # no JavaScript
    assert not [a for _, a in c.attrs if a.get("src")]  # nothing loaded from elsewhere
    return c


def test_html_well_formed_with_a_chart_per_svg(sample: Engine, tmp_path: Path) -> None:
    files = sample.report(FROM, TO, tmp_path, "html", slos=TWO, label=LABEL, auditor=True)
    assert [f.name for f in files] == ["auditor.html", "index.html",
                                       "slo-gateway-availability.html",
                                       "slo-gateway-latency.html"]
    for f in files:
        _check(f)
    for name in TWO:
        c = _check(tmp_path / f"slo-{name}.html")
        charts = [a for tag, a in c.attrs if tag == "svg" and a.get("class") == "chart"]
        # SLI over the window, SLI per step, budget burn-down, alert timeline
        assert len(charts) == 4
        assert all(a.get("viewbox") for a in charts)
        text = (tmp_path / f"slo-{name}.html").read_text()
        assert "budget exhausted" in text  # the zero line of the burn-down
        assert text.count('class="bar firing') >= 2  # alert bars on the time axis
    index = _check(tmp_path / "index.html")
    assert index.counts["svg"] == 2  # one burn-down sparkline per summary row
    links = {a.get("href") for tag, a in index.attrs if tag == "a"}
    assert {"slo-gateway-availability.html", "auditor.html"} <= links


def test_auditor_versions_and_chain_head(sample: Engine, tmp_path: Path) -> None:
    sample.evaluate(datetime(2026, 11, 21, 14, 25, tzinfo=UTC), "gateway-availability")
    head_before = sample.store.meta("audit_head")
    doc = _doc(sample, tmp_path, auditor=True)
    a = doc["auditor"]
    assert a["audit_head"] == head_before and a["chain_verified"] is True
    assert a["entries"] == int(head_before.split(":")[0])
    ga = [v for v in a["versions"] if v["slo"] == "gateway-availability"]
    assert len(ga) == 1 and ga[0]["current"] and ga[0]["recorded"]
    assert ga[0]["version"] == doc["slos"][0]["version"]
    assert ga[0]["evaluations"] == 1 and ga[0]["first_eval"] == "2026-11-21T14:25:00Z"
    assert {v["slo"] for v in a["versions"]} == set(TWO)
    assert sample.store.meta("audit_head") != head_before  # the report itself was audited


def test_corrections_are_excluded_and_listed(sample: Engine, tmp_path: Path) -> None:
    """A correction over the fast-burn incident takes its minutes and bad events out."""
    slo_dir = tmp_path / "slos"
    slo_dir.mkdir()
    text = (ROOT / "slo_definitions" / "gateway.yaml").read_text().split("\n---\n")[0]
    (slo_dir / "gateway.yaml").write_text(text.rstrip() + "\n" + (
        "  corrections:\n"
        "    - {start: '2026-11-21T14:00:00Z', duration: 1h, reason: payment provider outage"
        " (vendor RFO-17), author: alice@example.com}\n"))
    settings = load_settings(None, db=sample.settings.db, slo_dir=slo_dir)
    corrected = Engine(settings, clock=lambda: NOW, store=sample.store)
    [f] = corrected.report(FROM, TO, tmp_path / "out", "json", label=LABEL)
    s = orjson.loads(f.read_bytes())["slos"][0]
    [c] = s["corrections"]
    assert c["excluded"] == [{"from": "2026-11-21T14:00:00Z", "to": "2026-11-21T15:00:00Z"}]
    assert c["minutes"] == 60 and c["author"] == "alice@example.com"
    # 10 of the period's 14 failed requests ended in that hour (the outage, 14:10-14:35)
    assert c["bad_events"] == 10 and c["events"] > c["bad_events"]
    [tot] = s["totals"]
    assert tot["total"] - tot["good"] == 14 - 10 == s["contributors"]["bad_events"]
    assert not [a for a in s["alerts"] if a["severity"] == "page"]


def test_parse_period() -> None:
    from sloengine.cli_report import parse_period
    from sloengine.errors import ConfigError

    assert parse_period("2026-10") == (datetime(2026, 10, 1, tzinfo=UTC),
                                       datetime(2026, 11, 1, tzinfo=UTC))
    assert parse_period("2026-12")[1] == datetime(2027, 1, 1, tzinfo=UTC)
    assert parse_period("2026-Q4") == (datetime(2026, 10, 1, tzinfo=UTC),
                                       datetime(2027, 1, 1, tzinfo=UTC))
    assert parse_period("2026-11-21")[1] == datetime(2026, 11, 22, tzinfo=UTC)
    for bad in ("2026-13", "Nov 2026", "2026-02-30"):
        with pytest.raises(ConfigError):
            parse_period(bad)


def _png_ok(png: Path) -> None:
    """A real rendering: the PNG is 1280 px wide and far from one flat colour."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width == 1280 and height > 0
    pos, idat = 8, b""
    while pos < len(data):
        (n,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = len(raw) // height
    rows = {raw[i * stride:(i + 1) * stride] for i in range(height)}
    assert len(rows) > 200, "the page rendered (nearly) blank"


def test_html_renders_in_chromium(sample: Engine, tmp_path: Path) -> None:
    """A real browser renders the pages (.ci/run installs Debian's chromium; locally a
    missing browser skips, with CI=true it fails)."""
    browser = need("chromium")
    sample.report(FROM, TO, tmp_path, "html", slos=["gateway-availability"], label=LABEL)
    for page in ("index.html", "slo-gateway-availability.html"):
        png = tmp_path / f"{page}.png"
        subprocess.run(
            [browser, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
             f"--screenshot={png}", "--window-size=1280,2000", (tmp_path / page).as_uri()],
            capture_output=True, timeout=120, check=False)
        _png_ok(png)


def test_cli_report(sample: Engine, tmp_path: Path) -> None:
    db = sample.settings.db
    sample.close()  # one writer per DuckDB file: the CLI process opens it next
    out = tmp_path / "r"
    proc = run_cli("report", "--period", "2026-11", "--slo", "gateway-availability",
                   "--format", "json", "--out", str(out), "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert str(out / "report.json") in proc.stdout
    doc = orjson.loads((out / "report.json").read_bytes())
    assert doc["period"]["label"] == "2026-11" and doc["period"]["minutes"] == 30 * 1440
    bad = run_cli("report", "--period", "2026-13", "--db", str(db), "--out", str(out))
    assert bad.returncode == 2 and "--period '2026-13'" in bad.stderr
    both = run_cli("report", "--period", "2026-11", "--from", "2026-11-01", "--db", str(db))
    assert both.returncode == 2 and "not both" in both.stderr
