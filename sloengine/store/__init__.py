"""The store: the only package that imports duckdb."""

from sloengine.store.database import BatchRow, Store
from sloengine.store.layout import (
    LayoutReport,
    LayoutState,
    corr_key,
    key_hash,
    span_key,
    span_str,
    trace_key,
    trace_str,
)

__all__ = ["BatchRow", "LayoutReport", "LayoutState", "Store", "corr_key", "key_hash",
           "span_key", "span_str", "trace_key", "trace_str"]
