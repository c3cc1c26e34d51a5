"""Keeps the boundary table of ../shared/ARCHITECTURE.md true (an AST walk over imports)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "sloengine"

#: module → sloengine modules it may import (ARCHITECTURE.md "Boundaries"; settings and
#: sample are leaf helpers: settings feeds the front doors, sample writes files only).
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "model": set(),
    "settings": {"errors", "sources"},
    "spec": {"errors", "model"},
    "ingest": {"errors", "model"},
    "sources": {"errors", "model", "spec"},
    "sample": {"errors", "model"},
    "store": {"errors", "model", "spec"},
    "compute": {"errors", "model", "spec", "store"},
    "alerting": {"errors", "model", "spec", "store"},
    "forensics": {"errors", "model", "spec", "store"},
    "report": {"errors", "model", "spec"},
    "export": {"errors", "model", "spec"},
    "engine": {"errors", "model", "spec", "settings", "ingest", "sources", "store", "compute",
               "alerting", "forensics", "report", "export", "engine_receive",
               "engine_privacy", "engine_parts", "engine_ingest", "engine_views"},
    # the parts of the one façade (engine.py says why it is split)
    "engine_parts": {"ingest", "model", "settings", "spec", "store"},
    "engine_ingest": {"errors", "model", "spec", "settings", "ingest", "store", "forensics",
                      "engine_parts", "engine_receive", "engine_privacy"},
    "engine_views": {"errors", "model", "spec", "settings", "store", "compute", "alerting",
                     "forensics", "report", "engine_parts"},
    "engine_receive": {"engine", "engine_ingest", "errors", "model", "store", "forensics"},
    "engine_privacy": {"engine", "engine_ingest", "errors", "model", "ingest", "store",
                       "forensics", "settings"},
    "cli": {"engine", "errors", "model", "spec", "settings", "sample", "cli_slo", "cli_common",
            "cli_audit", "cli_trace", "cli_alerts", "cli_export", "cli_report", "scheduler",
            "telemetry", "cli_privacy", "cli_keys"},
    "cli_keys": {"engine", "errors", "model", "spec", "settings", "cli_common", "api"},
    "cli_privacy": {"engine", "engine_privacy", "errors", "model", "settings", "cli_common"},
    "cli_alerts": {"engine", "errors", "model", "spec", "settings", "cli_common", "cli_slo",
                   "alerting"},
    "cli_export": {"engine", "errors", "model", "spec", "settings", "cli_common", "cli_slo",
                   "export"},
    "cli_report": {"engine", "errors", "model", "spec", "settings", "cli_common", "cli_slo",
                   "report"},
    "cli_trace": {"engine", "errors", "model", "spec", "settings", "cli_common", "cli_slo",
                  "forensics"},
    "cli_audit": {"engine", "errors", "model", "spec", "settings", "cli_common", "cli_slo",
                  "forensics"},
    "cli_slo": {"engine", "errors", "model", "spec", "settings", "cli_common"},
    "cli_common": {"settings"},
    "api": {"engine", "errors", "model", "spec", "settings", "telemetry"},
    "scheduler": {"api", "engine", "errors", "model", "spec", "settings", "telemetry"},
    "telemetry": set(),
    "__main__": {"cli"},
    "__init__": set(),
}
#: third-party modules only one stage may import
OWNED = {"duckdb": {"store"}, "prometheus_api_client": {"sources"}, "jinja2": {"report"}}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def _stage(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py")


def test_boundaries() -> None:
    problems = []
    for path in sorted(PKG.rglob("*.py")):
        stage = _stage(path)
        assert stage in ALLOWED, f"{path}: stage {stage!r} is not in the boundary table"
        for mod in _imports(path):
            top = mod.split(".")[0]
            if top == "sloengine":
                parts = mod.split(".")
                if len(parts) == 1:
                    continue
                target = parts[1]
                if target != stage and target not in ALLOWED[stage]:
                    problems.append(f"{path.relative_to(PKG)} imports {mod}")
            elif top in OWNED and stage not in OWNED[top]:
                problems.append(f"{path.relative_to(PKG)} imports {top} (owned by {OWNED[top]})")
    assert problems == []


def test_public_surfaces_exist() -> None:
    import sloengine.ingest as ingest
    import sloengine.store as store

    for mod in (ingest, store):
        for name in mod.__all__:
            assert hasattr(mod, name), (mod.__name__, name)
