"""CLI commands for SLO definitions and evaluation: validate, schema, evaluate, replay.

JSON shapes (versioned, documented in README.md): ``sloengine.validate/v1``,
``sloengine.evaluate/v1``, ``sloengine.replay/v1``.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from sloengine.cli_common import ConfigOpt, DbOpt, JsonOpt, print_json, settings_from
from sloengine.errors import ConfigError
from sloengine.model import SloResult

# The engine and the stages behind it are imported in the command bodies: every CLI start
# imports this module to register its commands, and most runs use one command.

TimeOpt = Annotated[str | None, typer.Option(help="ISO 8601 time, e.g. 2026-11-21T15:00:00Z.")]


def parse_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{name}: {value!r} is not an ISO 8601 time") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def iso_minute(m: int | None) -> str | None:
    if m is None:
        return None
    return datetime.fromtimestamp(m * 60, UTC).isoformat().replace("+00:00", "Z")


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command()(schema)
    app.command()(evaluate)
    app.command()(replay)


def validate(
    paths: Annotated[list[Path] | None, typer.Argument(help="SLO files or folders.")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate SLO documents (native, OpenSLO, Sloth, slo-generator): errors and warnings
    with file, line and field. Exit 1 when there is an error."""
    from sloengine.spec import load_paths

    settings = settings_from(config)
    result = load_paths(paths or [settings.slo_dir])
    if as_json:
        print_json({
            "schema": "sloengine.validate/v1",
            "ok": not result.errors,
            "slos": [{"name": s.slo.metadata.name, "service": s.slo.metadata.service,
                      "file": s.file, "line": s.line, "origin": s.origin, "version": s.version}
                     for s in result.slos],
            "diagnostics": [asdict(d) for d in result.diagnostics],
        })
    else:
        for d in result.diagnostics:
            print(d)
        print(f"{len(result.slos)} SLO(s) valid, {len(result.errors)} error(s), "
              f"{len(result.warnings)} warning(s)")
    raise typer.Exit(1 if result.errors else 0)


def schema() -> None:
    """Print the JSON Schema of native sloengine/v1 SLO documents (for editors)."""
    from sloengine.spec import SLO

    doc = SLO.model_json_schema(by_alias=True)
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["$id"] = "https://sloengine.dev/schema/sloengine-v1.json"
    print_json(doc)


def result_json(r: SloResult) -> dict[str, Any]:
    out = asdict(r)
    out["evaluated_at"] = iso_minute(out.pop("eval_minute"))
    out["alerts"] = [
        {k: a[k] for k in ("tier", "severity", "long_window", "short_window", "threshold",
                           "long_burn_rate", "short_burn_rate", "state")}
        for a in out["alerts"]]
    return out


def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v * 100:.3f}%" if pct else f"{v:.2f}"


def evaluate(
    at: TimeOpt = None,
    slo: Annotated[str | None, typer.Option(help="Only this SLO.")] = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The state of every SLO now (or --at a time): SLI, error budget, burn rates, alerts."""
    from sloengine.engine import Engine

    settings = settings_from(config, db=db)
    with Engine(settings) as engine:
        results = engine.evaluate(parse_time(at, "--at"), slo)
    if as_json:
        print_json({"schema": "sloengine.evaluate/v1",
                    "evaluated_at": iso_minute(results[0].eval_minute) if results else None,
                    "results": [result_json(r) for r in results]})
        return
    if results:
        print(f"evaluated at {iso_minute(results[0].eval_minute)}")
    print_results(results)


def print_results(results: list[SloResult]) -> None:
    """A table: one line per SLO / objective / group."""
    print(f"  {'SLO':<48} {'objective':<9} {'status':<17} {'SLI':>9} {'budget left':>12} "
          f"{'burn 1h':>8}  alerts")
    for r in results:
        fire = [f"{a.severity}:{a.tier} {a.state}" for a in r.alerts
                if a.state in ("pending", "firing")]
        name = r.name + (f" [{r.group}]" if r.group else "")
        print(f"  {name:<48} {r.objective:<9} {r.status:<17} {_fmt(r.sli, True):>9} "
              f"{_fmt(r.error_budget.remaining_ratio, True):>12} "
              f"{_fmt(r.burn_rates.get('1h')):>8}  {', '.join(fire) or '-'}")


def replay(
    from_: Annotated[str, typer.Option("--from", help="Start (ISO 8601).")],
    to: Annotated[str, typer.Option("--to", help="End (ISO 8601).")],
    step: Annotated[str, typer.Option(help="Evaluation step, e.g. 1m, 5m.")] = "1m",
    slo: Annotated[str | None, typer.Option(help="Only this SLO.")] = None,
    incidents: Annotated[Path | None, typer.Option(
        help="Incidents JSON (default: settings incidents_file).")] = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Backtest the alert policy over history: the alert timeline and, for known incidents,
    detection time, reset time, missed incidents and false alerts."""
    from sloengine.engine import Engine
    from sloengine.spec import parse_duration

    overrides: dict[str, Any] = {"db": db}
    if incidents is not None:
        overrides["incidents_file"] = incidents
    settings = settings_from(config, **overrides)
    try:
        step_min = int(parse_duration(step).total_seconds()) // 60
    except ValueError as exc:
        raise ConfigError(f"--step: {exc}") from None
    if step_min < 1:
        raise ConfigError("--step must be at least 1m")
    t_from, t_to = parse_time(from_, "--from"), parse_time(to, "--to")
    assert t_from is not None and t_to is not None
    with Engine(settings) as engine:
        rep = engine.replay(t_from, t_to, step_min, slo)
    alerts = [{"slo": a.slo, "objective": a.objective, "group": a.group, "tier": a.tier,
               "severity": a.severity, "pending_at": iso_minute(a.pending),
               "firing_at": iso_minute(a.firing), "resolved_at": iso_minute(a.resolved),
               "peak_long_burn_rate": a.peak_long_burn,
               "peak_short_burn_rate": a.peak_short_burn} for a in rep["alerts"]]
    sc = rep["score"]
    incs = [{**i, "start": iso_minute(i["start"]), "end": iso_minute(i["end"])}
            for i in sc["incidents"]]
    false_alerts = [f"{a.slo}/{a.objective}/{a.group or '-'}/{a.tier}@{iso_minute(a.firing)}"
                    for a in sc["false_alerts"]]
    if as_json:
        print_json({"schema": "sloengine.replay/v1", "from": iso_minute(rep["from"]),
                    "to": iso_minute(rep["to"]), "step_minutes": rep["step"],
                    "alerts": alerts, "incidents": incs, "missed": sc["missed"],
                    "false_alerts": false_alerts})
        return
    print(f"replay {iso_minute(rep['from'])} → {iso_minute(rep['to'])} every {step}: "
          f"{len(alerts)} alert(s)")
    for a in alerts:
        grp = f" [{a['group']}]" if a["group"] else ""
        print(f"  {a['severity']:<6} {a['slo']}{grp} {a['objective']} {a['tier']:<11} "
              f"pending {a['pending_at']}  firing {a['firing_at'] or '-'}  "
              f"resolved {a['resolved_at'] or '(still firing)'}")
    for i in incs:
        if i["detected"]:
            print(f"  incident {i['id']}: detected after {i['detection_minutes']} min by "
                  f"{', '.join(i['alerts'])}; reset {i['reset_minutes']} min after it ended")
        else:
            print(f"  incident {i['id']}: MISSED")
    print(f"  false alerts: {len(false_alerts)}")
    for fa in false_alerts:
        print(f"    {fa}")
    sys.stdout.flush()
