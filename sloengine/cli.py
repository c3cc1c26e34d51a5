"""The command line: parse arguments, call the Engine, format the result (ARCHITECTURE.md
rule 1). Every command that prints results has ``--json`` with a versioned shape
(``"schema": "sloengine.<command>/v<N>"``), documented in README.md.

Exit codes: 0 success; 1 the command ran but found a problem (rejected records);
2 bad usage, settings or input that stops the command.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from sloengine import (
    cli_alerts,
    cli_audit,
    cli_export,
    cli_keys,
    cli_privacy,
    cli_report,
    cli_slo,
    cli_trace,
)
from sloengine.cli_common import ConfigOpt, DbOpt, JsonOpt, print_json, settings_from
from sloengine.errors import SloEngineError
from sloengine.model import IngestResult

# Commands import the engine (and through it duckdb, pyarrow, ...) in their bodies, so that
# `--help` and each command load only what that command uses.

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="sloengine: OTLP ingest, SLOs, error budgets and burn-rate alerts in DuckDB.",
)



INGEST_SCHEMA = "sloengine.ingest/v1"
SUMMARY_SCHEMA = "sloengine.summary/v1"
MAX_ERRORS_SHOWN = 20


def _err(msg: str) -> None:
    sys.stderr.write(msg + "\n")


def _result_json(r: IngestResult) -> dict[str, Any]:
    return {
        "path": r.info.source,
        "format": r.info.format,
        "signal": r.info.signal,
        "sha256": r.info.sha256,
        "size_bytes": r.info.size_bytes,
        "batch_id": r.batch_id,
        "duplicate_of": r.duplicate_of,
        "accepted": {k: r.counts.accepted.get(k, 0)
                     for k in ("spans", "span_events", "logs", "metric_points")},
        "duplicates": sum(r.counts.duplicates.values()),
        "rejected": r.counts.rejected,
        "errors": [{"location": e.location, "reason": e.reason} for e in r.errors],
        "warnings": r.warnings,
    }


def _file_line(r: IngestResult) -> str:
    if r.duplicate_of is not None:
        return (f"{r.info.source}: already ingested as batch {r.duplicate_of} "
                f"(same sha256), nothing stored")
    acc = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in r.counts.accepted.items() if v)
    dup = sum(r.counts.duplicates.values())
    parts = [f"{r.info.source}: {r.info.format} {r.info.signal}", f"stored {acc or 'nothing'}"]
    if dup:
        parts.append(f"{dup} duplicate(s) skipped")
    if r.counts.rejected:
        parts.append(f"{r.counts.rejected} REJECTED")
    return "; ".join(parts)


@contextmanager
def _progress(enabled: bool) -> Iterator[tuple[Callable[[int], None] | None,
                                              Callable[[IngestResult], None] | None]]:
    """A progress bar on a terminal (rich), one line per file otherwise, nothing for --json."""
    if not enabled:
        yield None, None
        return
    if not sys.stderr.isatty():
        yield None, lambda r: _err(_file_line(r))
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("ingest"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.description}"), console=Console(stderr=True),
                  transient=False) as bar:
        task = bar.add_task("", total=None)

        def total(n: int) -> None:
            bar.update(task, total=n)

        def done(r: IngestResult) -> None:
            bar.update(task, advance=1, description=Path(r.info.source).name)
            if r.counts.rejected:
                bar.console.print(_file_line(r))

        yield total, done


def _ingest_report(results: list[IngestResult], db: str, as_json: bool) -> int:
    rejected = sum(r.counts.rejected for r in results)
    if as_json:
        totals: dict[str, int] = {}
        for r in results:
            for k, v in r.counts.accepted.items():
                totals[k] = totals.get(k, 0) + v
        print_json({
            "schema": INGEST_SCHEMA,
            "db": db,
            "files": [_result_json(r) for r in results],
            "totals": {
                "files": len(results),
                "accepted": totals,
                "duplicates": sum(sum(r.counts.duplicates.values()) for r in results),
                "rejected": rejected,
            },
        })
    elif rejected:
        _err(f"{rejected} record(s) rejected and kept in table dead_letters:")
        shown = 0
        for r in results:
            for e in r.errors:
                if shown < MAX_ERRORS_SHOWN:
                    _err(f"  {r.info.source}: {e.location}: {e.reason}")
                shown += 1
        if shown > MAX_ERRORS_SHOWN:
            _err(f"  ... and {shown - MAX_ERRORS_SHOWN} more "
                 "(sloengine ingest --json, or SELECT * FROM dead_letters)")
    return 1 if rejected else 0


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files, folders or globs (.gz is read).")],
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest OTLP (protobuf, JSON, JSON Lines) and JSON-lines access logs into the store."""
    from sloengine.engine import Engine

    settings = settings_from(config, db=db)
    with Engine(settings) as engine, _progress(enabled=not as_json) as (on_total, on_file):
        results = engine.ingest(paths, on_file=on_file, on_total=on_total)
        skipped = engine.last_skipped
    if skipped and not as_json:
        _err(f"skipped {len(skipped)} file(s) that are not telemetry: "
             + ", ".join(str(p) for p in skipped))
    raise typer.Exit(_ingest_report(results, str(settings.db), as_json))


def _ns_to_iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="seconds")


def _summary_text(summary: dict[str, Any], db: str) -> str:
    t = summary["tables"]
    lines = [
        f"store {db} (schema v{summary['schema_version']})",
        f"  spans {t['spans']:,}  span events {t['span_events']:,}  logs {t['logs']:,}  "
        f"metric points {t['metric_points']:,}",
        f"  ingest batches {t['ingest_batches']:,} (complete {summary['batches']['complete']}, "
        f"duplicate {summary['batches']['duplicate']}, incomplete "
        f"{summary['batches']['incomplete']})  dead letters {t['dead_letters']:,}",
    ]
    if summary["spans_from"]:
        lines.append(f"  spans from {summary['spans_from']} to {summary['spans_to']}")
    if summary["services"]:
        lines.append("  service                      spans   errors   traces")
        for s in summary["services"]:
            lines.append(f"  {s['service']:<24} {s['spans']:>9,} {s['errors']:>8,} "
                         f"{s['traces']:>8,}")
    return "\n".join(lines)


def _summary_json(summary: dict[str, Any]) -> dict[str, Any]:
    out = dict(summary)
    out["spans_from"] = _ns_to_iso(summary.pop("spans_from_unix_nano"))
    out["spans_to"] = _ns_to_iso(summary.pop("spans_to_unix_nano"))
    out.pop("spans_from_unix_nano", None)
    out.pop("spans_to_unix_nano", None)
    return out


@app.command()
def run(
    once: Annotated[bool, typer.Option(
        "--once", help="Run one full cycle (ingest, evaluate, ...) and exit.")] = False,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The main job: the scheduled engine. Watches the input folders (default sample_data/),
    evaluates every SLO in slo_definitions/ every minute, and serves its own metrics.
    With --once: one full cycle, a summary of where everything went, and exit."""
    from sloengine.scheduler import EngineService
    from sloengine.telemetry import setup_logging

    settings = settings_from(config, db=db)
    service = EngineService(settings)
    if not once:
        setup_logging(settings.log_format)
        service.serve()
        return
    try:
        on_file = None if as_json else (lambda r: _err(_file_line(r)))
        cycle = service.run_once(on_file)
        skipped = service.engine.last_skipped
        summary = _summary_json(service.engine.summary())
    finally:
        service.close()
    results, evaluations = cycle.ingested, cycle.evaluations
    rejected = sum(r.counts.rejected for r in results)
    if as_json:
        print_json({
            "schema": SUMMARY_SCHEMA,
            "db": str(settings.db),
            "inputs": [str(p) for p in settings.inputs],
            "ingested_files": len(results),
            "skipped_files": [str(p) for p in skipped],
            "rejected": rejected,
            **summary,
            "slos": [cli_slo.result_json(r) for r in evaluations],
            **cycle.extra,
        })
        return
    print(_summary_text(summary, str(settings.db)))
    if not results:
        print("  no new input files (already ingested)")
    if skipped:
        print(f"  skipped (not telemetry): {', '.join(str(p) for p in skipped)}")
    if rejected:
        print(f"  {rejected} record(s) rejected this cycle: see table dead_letters")
    if evaluations:
        print(f"SLOs at {cli_slo.iso_minute(evaluations[0].eval_minute)} "
              f"({settings.slo_dir}):")
        cli_slo.print_results(evaluations)
    delivery = cycle.extra.get("delivery")
    if delivery:
        sent = {t["target"]: t["delivered"] for t in delivery.get("targets", [])}
        print(f"alerts: {cycle.extra.get('caught_up_evaluations', 0)} past evaluation(s) "
              f"replayed through the alert state machine; {delivery.get('delivered', 0)} "
              f"notification(s) delivered ("
              + (", ".join(f"{k}: {v}" for k, v in sorted(sent.items())) or "none") + "); "
              f"notify file {settings.notify_file}"
              + ("" if settings.notify_file.exists() else " (absent: console + "
                 f"{settings.reports_dir / 'alerts.jsonl'})"))
    if cycle.extra.get("reports"):
        print(f"reports: {settings.reports_dir / 'latest' / 'index.html'} "
              f"({len(cycle.extra['reports'])} files)")


@app.command()
def sample(
    out: Annotated[Path, typer.Option("--out", help="Folder to write into.")] = Path("sample_data"),
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = 7,
    days: Annotated[float, typer.Option(help="Days of traffic.")] = 4.0,
    rate: Annotated[float, typer.Option(help="Gateway requests per minute (average).")] = 2.0,
    as_json: JsonOpt = False,
) -> None:
    """Generate the deterministic sample platform data (see sample_data/README.md)."""
    from sloengine.sample import generate

    manifest = generate(out, seed=seed, days=days, rate_per_min=rate)
    if as_json:
        print_json({"schema": "sloengine.sample/v1", **manifest.to_json()})
    else:
        print(manifest.describe())


cli_slo.register(app)
cli_audit.register(app)
cli_trace.register(app)
cli_export.register(app)
cli_alerts.register(app)
cli_report.register(app)
cli_keys.register(app)
cli_privacy.register(app)


def main() -> None:
    """Console entry point: one clear line and exit 2 for the engine's own errors."""
    try:
        rc = app(standalone_mode=False)
        sys.exit(rc if isinstance(rc, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except SloEngineError as exc:
        _err(f"sloengine: error: {exc}")
        sys.exit(2)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:
        # usage errors: typer ≥ 0.2x raises its own copy of click's (typer._click), older
        # ones click's; both have show() and exit_code
        import click

        if isinstance(exc, click.exceptions.ClickException | typer.TyperException):
            exc.show()  # type: ignore[union-attr]
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        raise
