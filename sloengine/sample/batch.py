"""The nightly legacy settlement batch (02:00 UTC) and its warehouse load (data layer)."""

from __future__ import annotations

import random
from datetime import datetime

from .builder import TraceBuilder
from .identity import IdSource
from .records import CLIENT, INFO, INTERNAL, Attrs
from .schedule import utc_ns

PARTITION_COUNT = 4


def nightly(ids: IdSource, rng: random.Random, at: datetime) -> TraceBuilder:
    """One settlement run: a root INTERNAL span, one child per partition, a warehouse load."""
    origin = utc_ns(at) + rng.randrange(2_000_000) * 1000
    b = TraceBuilder(ids, rng, origin, ids.correlation_id(), sampled=True)
    csv = f"settlement-{at:%Y-%m-%d}.csv"
    root_attrs: Attrs = [
        ("batch.file", csv),
        ("batch.partitions", PARTITION_COUNT),
        ("correlation.id", b.correlation_id),
    ]
    root = b.open("legacy-batch", "batch-01", "nightly-settlement", INTERNAL, 0.0, None, root_attrs)
    b.emit(root, INFO, f"nightly settlement started: {csv}", [])
    b.logs[-1].time_ns = root.start_ns
    at_ms = rng.uniform(200.0, 900.0)
    rows_total = 0
    for part in range(PARTITION_COUNT):
        rows = rng.randrange(8_000, 20_000)
        rows_total += rows
        attrs: Attrs = [("batch.partition", part), ("batch.rows", rows), ("batch.file", csv)]
        span = b.open("legacy-batch", "batch-01", "settle-partition", INTERNAL, at_ms, root, attrs)
        at_ms += rng.uniform(120_000.0, 360_000.0)
        b.close(span, at_ms)
        b.emit(span, INFO, f"partition {part} settled: {rows} rows from {csv}", [])
        at_ms += rng.uniform(50.0, 500.0)
    load_attrs: Attrs = [
        ("db.system.name", "bigquery"),
        ("db.namespace", "warehouse"),
        ("db.collection.name", "fact_orders"),
        ("db.operation.name", "LOAD"),
        ("batch.file", csv),
        ("correlation.id", b.correlation_id),
    ]
    load = b.open("warehouse-loader", "etl-01", "warehouse-load", CLIENT, at_ms, root, load_attrs)
    at_ms += rng.uniform(60_000.0, 240_000.0)
    b.close(load, at_ms)
    b.emit(load, INFO, f"loaded {rows_total} rows into warehouse.fact_orders", [])
    at_ms += rng.uniform(100.0, 1000.0)
    b.close(root, at_ms)
    b.emit(root, INFO, f"nightly settlement finished: {csv}, {rows_total} rows", [])
    return b
