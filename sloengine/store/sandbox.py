"""Queries typed by people, run on the writer's own connection (the HTTP API inside
``sloengine run``, where a second, sandboxed connection to the same file cannot be opened:
DuckDB refuses two configurations of one database in a process).

What the sandboxed connection gets from ``enable_external_access = false`` is checked here on
the statement's syntax tree (``json_serialize_sql``) instead: one SELECT, reading only the
engine's own tables and views (or its CTEs), no table functions but ``range``,
``generate_series`` and ``unnest`` (so no ``read_csv``, ``read_text``, ``glob``, no
replacement scan of a file path), no ``getenv`` or ``current_setting``, and not the tables
that hold secrets (``api_keys``, ``engine_meta``). The statement then runs through
``Store.user_query`` (which drains and bounds its result).
"""

from __future__ import annotations

from typing import Any

import orjson

from sloengine.errors import QueryRefused
from sloengine.store.database import Store

_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
_DENIED = frozenset({"getenv", "current_setting", "duckdb_secrets", "duckdb_settings"})
#: tables that hold secrets (key hashes, the redaction key): never readable over the API
_HIDDEN = frozenset({"api_keys", "engine_meta"})


def guarded_query(store: Store, sql: str, limit: int | None = None
                  ) -> tuple[list[str], list[tuple[Any, ...]]]:
    raw = store.one("SELECT json_serialize_sql(?::VARCHAR)", [sql])
    tree = orjson.loads(raw)
    if tree.get("error"):
        raise QueryRefused(f"only one SELECT statement is accepted here: "
                           f"{tree.get('error_message', 'not valid SQL')}")
    if len(tree.get("statements", [])) != 1:
        raise QueryRefused("exactly one statement please")
    tables = {str(r[0]).lower() for r in store.rows(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")
        } - _HIDDEN
    ctes: set[str] = set()
    _collect_ctes(tree, ctes)
    _check(tree, tables | (ctes - _HIDDEN))  # a CTE may not borrow a hidden name
    return store.user_query(sql, limit)


def _collect_ctes(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            out.update(str(e.get("key", "")).lower() for e in cte_map.get("map", []))
        for v in node.values():
            _collect_ctes(v, out)
    elif isinstance(node, list):
        for v in node:
            _collect_ctes(v, out)


def _check(node: Any, readable: set[str]) -> None:
    if isinstance(node, list):
        for v in node:
            _check(v, readable)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind == "TABLE_FUNCTION":
        name = str(node.get("function", {}).get("function_name", "")).lower()
        if name not in _TABLE_FUNCTIONS:
            raise QueryRefused(f"table function {name}() is refused: this query may only "
                               "read the engine's tables")
    elif kind == "BASE_TABLE":
        name = str(node.get("table_name", "")).lower()
        if node.get("catalog_name") or node.get("schema_name") not in ("", "main") or (
                name not in readable):
            raise QueryRefused(f"{node.get('table_name')!r} is not a table of the engine")
    elif kind == "FUNCTION" or node.get("class") == "FUNCTION":
        name = str(node.get("function_name", "")).lower()
        if name in _DENIED or name.startswith(("read_", "glob")):
            raise QueryRefused(f"function {name}() is refused here")
    for v in node.values():
        _check(v, readable)
