"""CLI commands for request forensics: ``trace``, ``traces``, ``compare``.

JSON shapes (versioned, documented where they are built): ``sloengine.trace/v1``
(forensics/contract.py), ``sloengine.traces/v1`` (forensics/exemplars.py),
``sloengine.compare/v1`` (forensics/compare.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from sloengine.cli_common import ConfigOpt, DbOpt, JsonOpt, print_json, settings_from
from sloengine.cli_slo import parse_time
from sloengine.errors import ConfigError

# The engine and the stages behind it are imported in the command bodies: every CLI start
# imports this module to register its commands, and most runs use one command.

AdjustOpt = Annotated[bool, typer.Option(
    "--adjust-skew", help="Shift children that clock skew put outside their parent (and say "
                          "by how much) instead of only flagging them.")]
MaxTracesOpt = Annotated[int, typer.Option(
    "--max-traces", min=1, help="Stop following links and correlation ids after N traces.")]


def register(app: typer.Typer) -> None:
    app.command()(trace)
    app.command()(traces)
    app.command()(compare)


def trace(
    ident: Annotated[str, typer.Argument(help="Trace id, span id or correlation id.")],
    tree: Annotated[bool, typer.Option("--tree", help="A terminal waterfall.")] = False,
    html: Annotated[Path | None, typer.Option(
        "--html", help="Write a self-contained HTML page to FILE.")] = None,
    adjust_skew: AdjustOpt = False,
    max_traces: MaxTracesOpt = 50,
    log_window: Annotated[float, typer.Option(
        "--log-window", help="Error origin: logs of its trace within ± this many seconds.")
    ] = 5.0,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One request across every layer and trace: its spans and logs as a tree with self
    times, the critical path, the error origin, and flags for orphans and clock skew."""
    from sloengine.engine import Engine
    from sloengine.forensics import render_tree, story_json

    if as_json and tree:
        raise ConfigError("give at most one of --json and --tree")
    with Engine(settings_from(config, db=db)) as engine:
        story = engine.trace(ident, adjust_skew=adjust_skew, max_traces=max_traces,
                             log_window_s=log_window)
        page = engine.trace_html(story) if html is not None else None
    if html is not None and page is not None:
        html.write_text(page, encoding="utf-8")
        if not (as_json or tree):
            print(f"wrote {html}")
    if as_json:
        print_json(story_json(story))
    elif tree or html is None:
        sys.stdout.write(render_tree(story))


def traces(
    slo: Annotated[str, typer.Option("--slo", help="The SLO whose bad events to list.")],
    from_: Annotated[str, typer.Option("--from", help="Start (ISO 8601).")],
    to: Annotated[str, typer.Option("--to", help="End (ISO 8601).")],
    status: Annotated[str | None, typer.Option(
        help="'error': only failed requests (not merely slow ones).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most N requests.")] = 20,
    newest: Annotated[bool, typer.Option(
        "--newest", help="Newest first (default: worst first: failed, then slowest).")
    ] = False,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Example requests that burned an SLO's error budget (the bad events of its SLI), each
    with the ids to open it with ``sloengine trace``."""
    from sloengine.engine import Engine
    from sloengine.forensics import TRACES_SCHEMA

    if status not in (None, "error"):
        raise ConfigError("--status: only 'error' is supported")
    t_from, t_to = parse_time(from_, "--from"), parse_time(to, "--to")
    assert t_from is not None and t_to is not None
    order: Literal["worst", "newest"] = "newest" if newest else "worst"
    with Engine(settings_from(config, db=db)) as engine:
        found = engine.trace_exemplars(slo, t_from, t_to, errors_only=status == "error",
                                       limit=limit, order=order)
    if as_json:
        print_json({"schema": TRACES_SCHEMA, "slo": slo, "from": t_from.isoformat(),
                    "to": t_to.isoformat(), "order": order,
                    "exemplars": [e.to_json() for e in found]})
        return
    print(f"{len(found)} bad event(s) of {slo} from {t_from.isoformat()} to {t_to.isoformat()}"
          f" ({order} first)")
    for e in found:
        d = e.to_json()
        dur = f"{e.duration_ns / 1e6:.1f} ms" if e.duration_ns is not None else "-"
        print(f"  {d['time'][:23]}Z  {e.status or '-':<6} {dur:>10}  {e.route or '-':<24} "
              f"trace {e.trace_id or '-'}  span {e.span_id or '-'}  "
              f"correlation {e.correlation_id or '-'}")


def compare(
    first: Annotated[str, typer.Argument(help="Trace id, span id or correlation id (A).")],
    second: Annotated[str, typer.Argument(help="Trace id, span id or correlation id (B).")],
    top: Annotated[int, typer.Option(min=1, help="Largest N duration differences.")] = 10,
    adjust_skew: AdjustOpt = False,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """How two requests of the same route differ: spans in one only, the biggest duration
    differences, and spans that failed in one only."""
    from sloengine.engine import Engine
    from sloengine.forensics import render_comparison

    with Engine(settings_from(config, db=db)) as engine:
        result = engine.compare_requests(first, second, top=top, adjust_skew=adjust_skew)
    if as_json:
        print_json(result)
    else:
        sys.stdout.write(render_comparison(result))
