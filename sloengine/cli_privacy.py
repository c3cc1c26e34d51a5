"""CLI commands for privacy duties: ``erase`` (GDPR erasure of one person's raw records) and
``db rekey`` (copy the database under a new encryption key).

JSON shape ``sloengine.erase/v1``: {key, dry_run, counts: {table: rows}, total,
by_batch: {batch_id: {table: rows}}}. The value is never printed, logged or audited (the
audit entry holds its keyed HMAC). Exit code 0 whether or not anything matched.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from sloengine.cli_common import ConfigOpt, DbOpt, JsonOpt, print_json, settings_from

# The engine and the stages behind it are imported in the command bodies: every CLI start
# imports this module to register its commands, and most runs use one command.

AttributeOpt = Annotated[str, typer.Option(
    "--attribute", help="KEY=VALUE: erase every span, span event, log record, metric point "
    "and dead letter that carries it (also in its redacted form).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Count what would go; delete "
                                         "nothing (still audited).")]


db_app = typer.Typer(help="The database file itself (encryption at rest).",
                     no_args_is_help=True)
NEW_KEY_ENV = "SLOENGINE_DB_NEW_ENCRYPTION_KEY"


def register(app: typer.Typer) -> None:
    app.command()(erase)
    app.add_typer(db_app, name="db")


@db_app.command("rekey")
def rekey(to: Annotated[Path, typer.Option("--to", help="The new database file.")],
          db: DbOpt = None, config: ConfigOpt = None) -> None:
    """Copy the database into a new file under the key in SLOENGINE_DB_NEW_ENCRYPTION_KEY
    (unset: not encrypted). The current key comes from SLOENGINE_DB_ENCRYPTION_KEY. Stop
    `sloengine run` first, then move the new file over the old one."""
    from sloengine.engine_privacy import rekey_database

    rekey_database(settings_from(config, db=db), to, os.environ.get(NEW_KEY_ENV))
    print(f"copied into {to}; move it over the old file while nothing runs")


def erase(attribute: AttributeOpt, dry_run: DryRunOpt = False, db: DbOpt = None,
          config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Erase one person's raw records (GDPR); SLO buckets, evaluations, alerts, lineage and
    the audit trail stay, and the erasure itself is audited."""
    from sloengine.engine import Engine
    from sloengine.engine_privacy import parse_attribute

    key, value = parse_attribute(attribute)
    with Engine(settings_from(config, db=db)) as engine:
        report = engine.erase(key, value, dry_run=dry_run)
    if as_json:
        print_json({"schema": "sloengine.erase/v1", "key": key, "dry_run": dry_run,
                    "counts": report.counts, "total": report.total,
                    "by_batch": {str(b): c for b, c in sorted(report.by_batch.items())}})
        return
    verb = "would erase" if dry_run else "erased"
    print(f"{verb} {report.total} record(s) carrying {key}=<value> from "
          f"{len(report.by_batch)} lineage batch(es)")
    for table, n in report.counts.items():
        print(f"  {table:<14} {n:>8}")
    if dry_run:
        print("dry run: nothing was deleted")
