"""sloengine: observability and SLO analysis engine (OTLP ingest, SLIs, error budgets,
multi-window multi-burn-rate alerts in DuckDB, trace forensics and lineage)."""

__version__ = "0.1.0"
