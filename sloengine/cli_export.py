"""CLI commands ``sloengine export prometheus-rules`` and ``sloengine export grafana``.

They read the SLO definitions (no database: the rules and dashboards are derived from the
SLOs alone) and write files. JSON shape ``sloengine.export/v1``: ``{"schema", "files",
"skipped": [{"slo", "reason"}], "notes": ["<slo>: <what Prometheus does differently>"]}``.
Skipped SLOs and notes are also reported on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sloengine.cli_common import ConfigOpt, JsonOpt, print_json, settings_from
from sloengine.errors import ConfigError

if TYPE_CHECKING:  # spec (pydantic models, YAML) is imported when a command runs
    from sloengine.spec import SLO

PathsArg = Annotated[list[Path] | None, typer.Argument(
    help="SLO files or folders (default: settings slo_dir, ./slo_definitions).")]

export_app = typer.Typer(
    no_args_is_help=True,
    help="Export SLOs as Prometheus rules or Grafana dashboards.",
)


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")


def _slos(paths: list[Path] | None, config: Path | None, only: str | None) -> list[SLO]:
    from sloengine.spec import load_paths

    settings = settings_from(config)
    result = load_paths(paths or [settings.slo_dir])
    if result.errors:
        raise ConfigError(f"{len(result.errors)} error(s) in the SLO definitions, first: "
                          f"{result.errors[0]} (see `sloengine validate`)")
    slos = [s.slo for s in result.slos]
    if only is not None:
        slos = [s for s in slos if s.metadata.name == only]
        if not slos:
            raise ConfigError(f"--slo: no SLO named {only!r}")
    return slos


def _report(skipped: list[dict[str, str]], notes: list[str]) -> None:
    for s in skipped:
        sys.stderr.write(f"sloengine: warning: skipped SLO {s['slo']}: {s['reason']}\n")
    for n in notes:
        sys.stderr.write(f"sloengine: note: {n}\n")


@export_app.command("prometheus-rules")
def prometheus_rules(
    paths: PathsArg = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Rule file to write (default: print to stdout).")] = None,
    slo: Annotated[str | None, typer.Option(help="Only this SLO.")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Prometheus recording rules and multi-window multi-burn-rate alert rules.

    The engine's error ratios and alerts for Prometheus, Thanos or Mimir; check the file with
    `promtool check rules`."""
    from sloengine import export

    slos = _slos(paths, config, slo)
    if out is None:
        if as_json:
            raise ConfigError("--json needs --out (the rules would mix with the JSON)")
        rules = export.prometheus_rules(slos)
        sys.stdout.write(rules.text)
        _report([{"slo": s.slo, "reason": s.reason} for s in rules.skipped], rules.notes)
        return
    written = export.write_prometheus_rules(slos, out)
    doc = written.to_json()
    _report(doc["skipped"], doc["notes"])
    if as_json:
        print_json(doc)
    else:
        print(f"wrote {out}: {len(slos) - len(written.skipped)} SLO(s), "
              f"{len(written.skipped)} skipped")


@export_app.command("grafana")
def grafana(
    paths: PathsArg = None,
    out: Annotated[Path, typer.Option(
        "--out", help="Folder for the dashboard JSON files.")] = Path("dashboards"),
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Grafana dashboards over the exported recording rules.

    An overview and one dashboard per SLO, querying the data source variable
    ${DS_PROMETHEUS}."""
    from sloengine import export

    written = export.write_grafana(_slos(paths, config, None), out)
    doc = written.to_json()
    _report(doc["skipped"], [])
    if as_json:
        print_json(doc)
    else:
        print(f"wrote {len(written.files)} dashboard(s) into {out}/")
