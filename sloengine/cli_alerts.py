"""CLI commands for the on-call engineer: ``alerts`` (what is firing or pending, and what the
outbox still has to deliver), ``alerts ack|unack`` (acknowledge an alert's current episode)
and ``deliver`` (one delivery pass over the outbox).

JSON shapes: ``sloengine.alerts/v1`` ({alerts, targets, not_routed, no_route, dead}; each
alert has ``acknowledged``), ``sloengine.alert-ack/v1`` ({dedup_key, state, acknowledged,
already_acknowledged | removed}) and ``sloengine.deliver/v1`` ({routed, no_route, ok,
delivered, attempts, targets}).
Exit codes: ``deliver`` exits 1 when something is left to retry, dead or skipped; ``alerts
ack|unack`` exit 2 when no pending or firing alert has the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sloengine.cli_common import ConfigOpt, DbOpt, JsonOpt, print_json, settings_from
from sloengine.errors import ConfigError

# The engine and the stages behind it are imported in the command bodies: every CLI start
# imports this module to register its commands, and most runs use one command.

NotifyOpt = Annotated[Path, typer.Option(
    "--notify", help="Notifiers and routes (YAML; see sloengine/alerting/config.py).")]


alerts_app = typer.Typer(help="Alerts firing or pending, the outbox; ack and unack.")


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
    app.command()(deliver)


@alerts_app.callback(invoke_without_command=True)
def alerts(ctx: typer.Context, db: DbOpt = None, config: ConfigOpt = None,
           as_json: JsonOpt = False) -> None:
    """Alerts firing or pending, and the outbox: per notifier what is pending, delivered or
    dead, its circuit breaker and its last error."""
    if ctx.invoked_subcommand is not None:
        return
    from sloengine.alerting import overview
    from sloengine.engine import Engine

    with Engine(settings_from(config, db=db)) as engine:
        view = overview(engine.store, engine.clock())
    if as_json:
        print_json({"schema": "sloengine.alerts/v1", **view})
        return
    for line in alerts_text(view):
        print(line)


def alerts_text(view: dict[str, Any]) -> list[str]:
    shown = view["alerts"]
    n_firing = sum(a["state"] == "firing" for a in shown)
    out = [f"ALERTS: {n_firing} firing, {len(shown) - n_firing} pending"]
    for a in shown:
        since = a["firing_since"] or a["pending_since"]
        out.append(f"  {a['state']:<8} {a['severity']:<7} since {since}  {a['dedup_key']}")
        if a.get("acknowledged"):
            out.append("    " + ack_text(a["acknowledged"]))
    out.append(f"OUTBOX: {view['not_routed']} not routed yet, {view['no_route']} matched no "
               "route")
    if view["targets"]:
        out.append(f"  {'notifier':<20} {'pending':>7} {'delivered':>9} {'dead':>5}  "
                   f"{'breaker':<9} {'next retry':<20} last error")
    for t in view["targets"]:
        out.append(f"  {t['target']:<20} {t['pending']:>7} {t['delivered']:>9} {t['dead']:>5}  "
                   f"{t['breaker']:<9} {t['next_attempt_at'] or '-':<20} "
                   f"{t['last_error'] or '-'}")
        if t["breaker"] != "closed":
            out.append(f"    circuit {t['breaker']} (until {t['open_until']}) after "
                       f"{t['consecutive_failures']} failed attempts in a row")
    if view["dead"]:
        out.append("DEAD (refused by the receiver; not retried):")
        out.extend(f"  #{d['notification_id']} {d['target']} {d['dedup_key']} "
                   f"{d['to_state']}: {d['last_error']}" for d in view["dead"])
    return out


def ack_text(ack: dict[str, Any]) -> str:
    return (f"acknowledged by {ack['by']} at {ack['at']}"
            + (f" until {ack['until']}" if ack["until"] else "")
            + (f": {ack['note']}" if ack["note"] else ""))


KeyArg = Annotated[str, typer.Argument(help="The alert's dedup key: slo/objective/group/tier.")]


@alerts_app.command("ack")
def ack(key: KeyArg,
        note: Annotated[str | None, typer.Option("--note", help="Why, or what is being done "
                                                 "(at most 500 characters).")] = None,
        until: Annotated[str | None, typer.Option(
            "--until", help="The ack lapses after this long, e.g. 2h, 30m.")] = None,
        db: DbOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Acknowledge an alert's current firing (or pending) episode. Acking again keeps the
    first ack; PagerDuty targets get an acknowledge event at the next delivery pass."""
    from sloengine.engine import Engine
    from sloengine.spec import parse_duration

    lapse = None
    if until is not None:
        try:
            lapse = parse_duration(until)
        except ValueError as exc:
            raise ConfigError(f"--until: {exc}") from None
    with Engine(settings_from(config, db=db)) as engine:
        doc = engine.ack_alert(key, note, None if lapse is None else engine.clock() + lapse)
    if as_json:
        print_json(doc)
    elif doc["already_acknowledged"]:
        print(f"{key} ({doc['state']}) was already {ack_text(doc['acknowledged'])}")
    else:
        print(f"{key} ({doc['state']}) {ack_text(doc['acknowledged'])}")


@alerts_app.command("unack")
def unack(key: KeyArg, db: DbOpt = None, config: ConfigOpt = None,
          as_json: JsonOpt = False) -> None:
    """Take back the ack of an alert's current episode (nothing is sent to receivers)."""
    from sloengine.engine import Engine

    with Engine(settings_from(config, db=db)) as engine:
        doc = engine.unack_alert(key)
    if as_json:
        print_json(doc)
    else:
        print(f"{key} ({doc['state']}) "
              + ("is no longer acknowledged" if doc["removed"] else "was not acknowledged"))


def deliver(notify: NotifyOpt = Path("notify.yaml"), db: DbOpt = None,
            config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Send what the alert outbox holds, once: each notifier in parallel, with retries
    (exponential backoff with jitter) and a circuit breaker per notifier."""
    from sloengine.engine import Engine

    with Engine(settings_from(config, db=db)) as engine:
        report = engine.deliver(notify)
    if as_json:
        print_json({"schema": "sloengine.deliver/v1", **report.to_json()})
    else:
        print(f"routed {report.routed} new notification(s) ({report.no_route} matched no "
              "route)")
        for t in report.targets.values():
            print(f"  {t.target:<20} delivered {t.delivered}  retrying {t.retrying}  dead "
                  f"{t.dead}  skipped {t.skipped}  attempts {t.attempts}  breaker {t.breaker}"
                  + (f"  last error: {t.last_error}" if t.last_error else ""))
    raise typer.Exit(0 if report.ok else 1)
