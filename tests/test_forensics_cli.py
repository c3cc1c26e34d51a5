"""The forensics front doors as a user runs them (a real process, real exit codes):
``sloengine trace`` (--json, --tree, --html), ``traces`` and ``compare``.

Skipped until the wiring of sloengine/forensics/frontdoor_snippets.md is pasted in
(sloengine/cli_trace.py, sloengine/report/trace.py, the Engine methods)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli
from test_forensics import h, queue_story_files

from sloengine.engine import Engine

pytest.importorskip("sloengine.cli_trace", reason="CLI wiring not pasted yet")
pytest.importorskip("sloengine.report.trace", reason="report renderer not pasted yet")


@pytest.fixture
def db(engine: Engine, tmp_path: Path) -> str:
    engine.ingest(queue_story_files(tmp_path))
    engine.close()
    return str(engine.settings.db)


def test_trace_json_tree_and_html(db: str, tmp_path: Path) -> None:
    proc = run_cli("trace", "req-2", "--db", db, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["schema"] == "sloengine.trace/v1"
    assert out["error_origin"]["span_id"] == h(0x36)
    tree = run_cli("trace", h(0x36), "--db", db, "--tree")
    assert tree.returncode == 0 and "error origin: orders-service: SELECT orders" in tree.stdout
    page = tmp_path / "story.html"
    proc = run_cli("trace", "req-1", "--db", db, "--html", str(page))
    assert proc.returncode == 0, proc.stderr
    assert 'class="span critical"' in page.read_text()
    missing = run_cli("trace", "no-such-id", "--db", db)
    assert missing.returncode == 2 and "no span or log record" in missing.stderr


def test_compare_cli(db: str) -> None:
    proc = run_cli("compare", "req-1", "req-2", "--db", db, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["schema"] == "sloengine.compare/v1"


def test_traces_cli_lists_the_bad_events_of_an_slo(db: str) -> None:
    proc = run_cli("traces", "--slo", "gateway-availability", "--from", "2025-11-24T16:00:00Z",
                   "--to", "2025-11-24T17:00:00Z", "--status", "error", "--db", db, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["schema"] == "sloengine.traces/v1"
    assert [(e["span_id"], e["correlation_id"]) for e in out["exemplars"]] == [
        (h(0x31), "req-2")]
    text = run_cli("traces", "--slo", "gateway-availability", "--from", "2025-11-24T16:00Z",
                   "--to", "2025-11-24T17:00Z", "--db", db)
    assert text.returncode == 0 and "correlation req-2" in text.stdout
