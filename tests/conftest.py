"""Shared fixtures: a fresh engine on a temporary DuckDB file, and helpers that build real
OTLP data (with opentelemetry-proto messages, or with the OpenTelemetry SDK's encoders)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sloengine.engine import Engine
from sloengine.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "test.duckdb"


@pytest.fixture
def engine(db_path: Path) -> Iterator[Engine]:
    settings = load_settings(None, db=db_path, chunk_records=1000)
    eng = Engine(settings)
    yield eng
    eng.close()


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    """Run ``python -m sloengine`` as a user would (a real process, real exit code)."""
    import os

    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "sloengine", *args], cwd=cwd or ROOT, env=full_env,
        capture_output=True, text=True, timeout=300, check=False,
    )


def rows(engine: Engine, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    return engine.store.rows(sql, params)
