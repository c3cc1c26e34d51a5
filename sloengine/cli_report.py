"""CLI command ``sloengine report``: the period report per SLO and across SLOs, as HTML pages,
one Markdown file or JSON (``"schema": "sloengine.report/v1"``, sloengine/compute/report_doc.py).

Parses the period and options, calls ``Engine.report`` and prints the files written; the
queries live in compute/, the templates in report/ (ARCHITECTURE.md rule 1).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from sloengine.cli_common import ConfigOpt, DbOpt, settings_from
from sloengine.cli_slo import parse_time
from sloengine.errors import ConfigError

# The engine and the stages behind it are imported in the command bodies: every CLI start
# imports this module to register its commands, and most runs use one command.

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")


def register(app: typer.Typer) -> None:
    app.command()(report)


def _next_month(y: int, m: int) -> datetime:
    return datetime(y + m // 12, m % 12 + 1, 1, tzinfo=UTC)


def parse_period(period: str) -> tuple[datetime, datetime]:
    """``2026-10`` (a month), ``2026-Q4``, ``2026``, ``2026-11-21`` (a day): [start, end) UTC."""
    try:
        if mt := _MONTH.match(period):
            y, m = int(mt[1]), int(mt[2])
            return datetime(y, m, 1, tzinfo=UTC), _next_month(y, m)
        if mt := _QUARTER.match(period):
            y, q = int(mt[1]), int(mt[2])
            return datetime(y, 3 * q - 2, 1, tzinfo=UTC), _next_month(y, 3 * q)
        if mt := _DAY.match(period):
            start = datetime(int(mt[1]), int(mt[2]), int(mt[3]), tzinfo=UTC)
            return start, start + timedelta(days=1)
        if mt := _YEAR.match(period):
            return datetime(int(mt[1]), 1, 1, tzinfo=UTC), datetime(int(mt[1]) + 1, 1, 1,
                                                                     tzinfo=UTC)
    except ValueError as exc:
        raise ConfigError(f"--period {period!r}: {exc}") from None
    raise ConfigError(f"--period {period!r}: use YYYY-MM, YYYY-Qn, YYYY or YYYY-MM-DD "
                      "(or --from/--to)")


def _period(period: str | None, from_: str | None, to: str | None
            ) -> tuple[datetime, datetime, str]:
    if period is not None:
        if from_ is not None or to is not None:
            raise ConfigError("give --period or --from/--to, not both")
        a, b = parse_period(period)
        return a, b, period
    if from_ is None or to is None:
        raise ConfigError("give --period (e.g. 2026-10) or both --from and --to")
    start, end = parse_time(from_, "--from"), parse_time(to, "--to")
    assert start is not None and end is not None
    return start, end, f"{_label(start)} – {_label(end)}"


def _label(dt: datetime) -> str:
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%d") if dt.time() == datetime.min.time() else dt.strftime(
        "%Y-%m-%d %H:%M")


def report(
    period: Annotated[str | None, typer.Option(
        help="YYYY-MM, YYYY-Qn, YYYY or YYYY-MM-DD (UTC).")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Start (ISO 8601).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="End, exclusive (ISO 8601).")] = None,
    slo: Annotated[list[str] | None, typer.Option(
        help="Only this SLO (repeat for several).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="html, md or json.")] = "html",
    out: Annotated[Path | None, typer.Option(
        help="Folder to write into (default: settings reports_dir).")] = None,
    auditor: Annotated[bool, typer.Option(
        "--auditor", help="Add SLO versions in force and the audit chain head.")] = False,
    step: Annotated[str, typer.Option(help="Step of the SLI and budget series.")] = "1h",
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write the SLO report of a period: per SLO the SLI and error-budget burn-down (inline
    SVG), alerts, corrections, top error contributors and exemplar requests; a summary
    across SLOs; with --auditor the SLO versions in force and the audit chain head."""
    from sloengine.engine import Engine
    from sloengine.spec import parse_duration

    t_from, t_to, label = _period(period, from_, to)
    try:
        step_min = int(parse_duration(step).total_seconds()) // 60
    except ValueError as exc:
        raise ConfigError(f"--step: {exc}") from None
    settings = settings_from(config, db=db)
    target = out if out is not None else settings.reports_dir
    with Engine(settings) as engine:
        files = engine.report(t_from, t_to, target, fmt, slos=slo or None, auditor=auditor,
                              label=label, step_minutes=step_min)
    print(f"report {label}: wrote {len(files)} file(s) to {target}")
    for f in files:
        print(f"  {f}")
