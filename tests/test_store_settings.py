"""Store settings that reach DuckDB: the WAL checkpoint threshold (settings
``db_checkpoint_threshold``) is set on the writer's connection, and only sizes are accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from sloengine.engine import Engine
from sloengine.errors import ConfigError
from sloengine.settings import load_settings


# DuckDB reads MB as 10^6 bytes and shows MiB
@pytest.mark.parametrize(("value", "duckdb_says"), [(None, "244.1 MiB"),
                                                    ("64MB", "61.0 MiB")])
def test_checkpoint_threshold_reaches_duckdb(tmp_path: Path, value: str | None,
                                             duckdb_says: str) -> None:
    extra = {} if value is None else {"db_checkpoint_threshold": value}
    with Engine(load_settings(None, db=tmp_path / "c.duckdb", **extra)) as engine:
        assert engine.store.one("SELECT current_setting('checkpoint_threshold')") == \
            duckdb_says


def test_checkpoint_threshold_must_be_a_size() -> None:
    with pytest.raises(ConfigError, match="db_checkpoint_threshold"):
        load_settings(None, db_checkpoint_threshold="1'; DROP TABLE spans; --")
