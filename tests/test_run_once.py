"""`sloengine run --once` on the embedded defaults: the sample incidents fire alerts in the
console sink and the alert file, and nothing pages outside them (issue 5, "Done when")."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from conftest import ROOT, run_cli


def test_run_once_fires_the_sample_incidents(tmp_path: Path) -> None:
    cfg = tmp_path / "sloengine.yaml"
    cfg.write_text(f"db: {tmp_path / 'e.duckdb'}\ninputs: [{ROOT / 'sample_data'}]\n"
                   f"slo_dir: {ROOT / 'slo_definitions'}\nreports_dir: {tmp_path / 'reports'}\n"
                   f"notify_file: {tmp_path / 'none.yaml'}\n"
                   f"incidents_file: {ROOT / 'sample_data' / 'incidents.json'}\n")
    p = run_cli("run", "--once", "--config", str(cfg), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "FIRING page: gateway-availability 99.9 (page-fast)" in out
    assert "RESOLVED page: gateway-availability 99.9 (page-fast)" in out
    assert "FIRING ticket: gateway-latency 99 (ticket-fast)" in out
    notices = [json.loads(x) for x in (tmp_path / "reports" / "alerts.jsonl").read_text()
               .splitlines()]
    assert notices, "the file sink got the notices"
    incidents = json.loads((ROOT / "sample_data" / "incidents.json").read_text())
    windows = [(datetime.fromisoformat(i["start"]).timestamp() // 60,
                datetime.fromisoformat(i["end"]).timestamp() // 60 + 60) for i in incidents]
    pages = [n for n in notices if n["severity"] == "page" and n["status"] == "firing"]
    assert pages
    for n in pages:  # every page fired inside an incident (or its first hour after)
        assert any(a <= n["eval_minute"] <= b for a, b in windows), n["dedup_key"]
    # each firing notice carries what on-call needs
    first = pages[0]
    assert first["runbook"].startswith("https://runbooks.example.com/")
    assert first["exemplars"] and all(e["command"].startswith("sloengine trace ")
                                      for e in first["exemplars"])
    # running it again: nothing new to ingest, no new alerts
    again = run_cli("run", "--once", "--config", str(cfg), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "FIRING" not in again.stdout
    assert "no new input files" in again.stdout
