"""The store: the only package that imports duckdb."""

from sloengine.store.database import BatchRow, Store

__all__ = ["BatchRow", "Store"]
