"""Options and output helpers shared by the CLI modules."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

if TYPE_CHECKING:
    from sloengine.settings import Settings

DbOpt = Annotated[
    Path | None,
    typer.Option("--db", help="DuckDB file (default ./sloengine.duckdb, env SLOENGINE_DB)."),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Settings file (default ./sloengine.yaml if present)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the versioned JSON shape.")]


def settings_from(config: Path | None, **overrides: Any) -> Settings:
    # imported here, not at the top: `--help` needs no settings (pydantic-settings)
    from sloengine.settings import load_settings

    return load_settings(config, **overrides)


def print_json(obj: Any) -> None:
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode() + "\n")
