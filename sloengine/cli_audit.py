"""CLI commands for auditors: ``audit verify``, ``audit export``, ``sql``.

JSON shapes: ``sloengine.audit-verify/v1``, ``sloengine.audit-export/v1``, ``sloengine.sql/v1``.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from sloengine.cli_common import ConfigOpt, DbOpt, JsonOpt, print_json, settings_from
from sloengine.cli_slo import parse_time
from sloengine.errors import ConfigError
from sloengine.model import json_value

# The engine and the stages behind it are imported in the command bodies: every CLI start
# imports this module to register its commands, and most runs use one command.

audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
    app.command()(sql)
    app.command()(lineage)


@audit_app.command("verify")
def verify(
    head: Annotated[str | None, typer.Option(
        help="Chain head SEQ:HASH from an earlier bundle (default: the head kept in the DB).")
    ] = None,
    bundle: Annotated[Path | None, typer.Option(help="Verify an evidence bundle instead.")
                      ] = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check that no audit entry was edited, deleted or reordered. Exit 1 names the first
    bad entry."""
    from sloengine.engine import Engine

    if bundle is not None:
        from sloengine.forensics.evidence import verify_bundle

        verdict = verify_bundle(bundle)
    else:
        with Engine(settings_from(config, db=db)) as engine:
            verdict = engine.audit_verify(head)
    if as_json:
        print_json({"schema": "sloengine.audit-verify/v1", **asdict(verdict)})
    elif verdict.ok:
        print(f"audit trail intact: {verdict.entries} entries, head {verdict.head}")
    else:
        print(f"AUDIT TRAIL BROKEN at entry {verdict.first_bad_seq}: {verdict.problem}")
    raise typer.Exit(0 if verdict.ok else 1)


@audit_app.command("export")
def export(
    out: Annotated[Path, typer.Argument(help="Empty folder for the evidence bundle.")],
    from_: Annotated[str, typer.Option("--from", help="Start (ISO 8601).")],
    to: Annotated[str | None, typer.Option("--to", help="End (ISO 8601, default now).")
                  ] = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write an evidence bundle: audit entries of the period, chain head, SLO versions in
    force, report files, and a sha256 manifest (``sha256sum -c MANIFEST.sha256``)."""
    from sloengine.engine import Engine

    t_from = parse_time(from_, "--from")
    t_to = parse_time(to, "--to") or datetime.now(UTC)
    assert t_from is not None
    with Engine(settings_from(config, db=db)) as engine:
        result = engine.audit_export(t_from, t_to, out)
    if as_json:
        print_json({"schema": "sloengine.audit-export/v1", **result})
    else:
        print(f"wrote {result['files']} files to {result['dir']}: {result['entries']} audit "
              f"entries, {result['slo_versions']} SLO versions, chain head {result['head']} "
              f"({'verified' if result['chain_verified'] else 'CHAIN BROKEN'})")


def sql(
    query: Annotated[str, typer.Argument(help="One SELECT statement.")],
    limit: Annotated[int | None, typer.Option(help="At most this many rows.")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV output.")] = False,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Query the store read-only (for auditors): one SELECT; anything that writes, attaches,
    copies or loads is refused. Every query, refused or not, is in the audit trail."""
    from sloengine.engine import user_query

    if as_csv and as_json:
        raise ConfigError("choose one of --json and --csv")
    cols, rows = user_query(settings_from(config, db=db), query, limit)
    if as_json:
        print_json({"schema": "sloengine.sql/v1", "columns": cols,
                    "rows": [[json_value(v) for v in r] for r in rows]})
    elif as_csv:
        w = csv.writer(sys.stdout)
        w.writerow(cols)
        w.writerows(rows)
    else:
        widths = [max([len(c)] + [len(str(r[i])) for r in rows]) for i, c in enumerate(cols)]
        print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
        for r in rows:
            print("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)))
        print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


def _ns_iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def lineage(
    ident: Annotated[str, typer.Argument(help="Trace id, span id or correlation id.")],
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The ordered hops of one request (layer, service, operation, datasets, outcome) and
    the ingest batch — source, sha256, received time — behind every record shown."""
    from sloengine.engine import Engine

    with Engine(settings_from(config, db=db)) as engine:
        lin = engine.lineage(ident)
    if as_json:
        print_json({"schema": "sloengine.lineage/v1", **asdict(lin)})
        return
    print(f"request {lin.query}: traces {', '.join(lin.trace_ids)}; correlation ids "
          f"{', '.join(lin.correlation_ids) or '-'}")
    print(f"  {'time (UTC)':<24} {'layer':<12} {'service':<20} {'operation':<30} "
          f"{'outcome':<7} batch  datasets")
    for h in lin.hops:
        print(f"  {_ns_iso(h['start_unix_nano']):<24} {h['layer']:<12} {h['service']:<20} "
              f"{h['operation'][:30]:<30} {h['outcome']:<7} {h['batch_id']:<6} "
              f"{', '.join(h['datasets'])}")
    for lg in lin.logs:
        print(f"  {_ns_iso(lg['time_unix_nano']):<24} {'log':<12} {lg['service'] or '-':<20} "
              f"{lg['source_kind'] + ' ' + (lg['severity'] or ''):<30} {'':<7} "
              f"{lg['batch_id']:<6}")
    print("  evidence:")
    for b in lin.batches:
        print(f"    batch {b['batch_id']}: {b['source']} ({b['format']}) sha256 {b['sha256']} "
              f"received {b['received_at']}")
    for n in lin.notes:
        print(f"  note: {n}")
