"""The store: the only package that imports duckdb."""

from sloengine.store.database import BatchRow, Store
from sloengine.store.layout import LayoutReport, LayoutState, key_hash, span_int

__all__ = ["BatchRow", "LayoutReport", "LayoutState", "Store", "key_hash", "span_int"]
