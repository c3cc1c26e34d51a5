"""The CLI loads what the command it runs uses, nothing more: the cli_* modules and the
Engine import the stages in the command bodies and methods that need them. Why: every
`sloengine ingest` used to import FastAPI, httpx, requests and jinja2 (~1 s, ~5 % of the
ingest benchmark). Each test runs a real `sloengine` process and reads its sys.modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
TRACE = ROOT / "tests" / "fixtures" / "otlp" / "trace.json"

#: What ingest never uses: the HTTP API, alert delivery, SLO math, reports, PromQL pulls.
NOT_FOR_INGEST = {
    "fastapi", "starlette", "uvicorn", "httpx", "requests", "tenacity", "prometheus_api_client",
    "jinja2", "apscheduler", "sloengine.api", "sloengine.alerting", "sloengine.compute",
    "sloengine.report", "sloengine.spec", "sloengine.scheduler", "sloengine.export",
}
#: What `--help` does not need on top of that: the engine, the store and its database.
NOT_FOR_HELP = NOT_FOR_INGEST | {
    "sloengine.engine", "sloengine.ingest", "sloengine.store", "sloengine.settings",
    "duckdb", "pyarrow", "google.protobuf",
}

_RUN = """
import sys
from sloengine.cli import main
out, sys.argv = sys.argv[1], ["sloengine", *sys.argv[2:]]
try:
    main()
finally:
    with open(out, "w") as f:
        f.write("\\n".join(sorted(sys.modules)))
"""


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the CLI in a fresh interpreter; its exit and the packages it imported."""
    listing = tmp_path / "modules.txt"
    proc = subprocess.run([sys.executable, "-c", _RUN, str(listing), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    mods = set(listing.read_text().split("\n"))
    # a package counts as loaded when it or any of its submodules is
    return proc, {".".join(m.split(".")[:i]) for m in mods for i in (1, 2)}


def test_help_loads_no_stage(tmp_path: Path) -> None:
    proc, loaded = _run(tmp_path, "ingest", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "Ingest OTLP" in proc.stdout
    assert sorted(loaded & NOT_FOR_HELP) == []


def test_ingest_loads_engine_ingest_store_only(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    proc, loaded = _run(tmp_path, "ingest", str(TRACE), "--db", str(db), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = orjson.loads(proc.stdout)
    assert doc["totals"]["accepted"] == {"spans": 1}
    assert {"duckdb", "pyarrow", "sloengine.ingest", "sloengine.store"} <= loaded
    assert sorted(loaded & NOT_FOR_INGEST) == []


def test_usage_errors_are_one_message_and_exit_2() -> None:
    """typer ≥ 0.2x raises its own copy of click's usage errors: they must still print a usage
    message and exit 2, not a traceback."""
    for args in (["ingest"], ["ingest", "--no-such-option", "x"], ["no-such-command"]):
        p = subprocess.run([sys.executable, "-m", "sloengine", *args], capture_output=True,
                           text=True, cwd=ROOT, check=False)
        assert p.returncode == 2, (args, p.stderr)
        assert "Traceback" not in p.stderr and "Error:" in p.stderr, (args, p.stderr)
