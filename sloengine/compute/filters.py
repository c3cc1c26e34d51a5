"""SLO filters → parameterised SQL predicates over the store's tables.

Field names are an allow-list (spec/model.py SPAN_FIELDS / LOG_FIELDS / METRIC_FIELDS) or
``attr.<key>``; values always travel as parameters, never as SQL text (no injection through a
filter)."""

from __future__ import annotations

from typing import Any

from sloengine.errors import ConfigError
from sloengine.spec.model import LOG_FIELDS, METRIC_FIELDS, SPAN_FIELDS, Cmp, Filter

FIELDS = {"spans": SPAN_FIELDS, "logs": LOG_FIELDS, "metrics": METRIC_FIELDS}


def column(source: str, name: str, params: list[Any]) -> tuple[str, bool]:
    """SQL expression for a filter field, and whether it is text-typed."""
    if name.startswith("attr."):
        key = name[5:]
        if source == "metrics":
            params.append(key)
            return "attributes[?]", True
        params.extend([key, key, key, key])
        return ("coalesce(attr_str[?], CAST(attr_int[?] AS VARCHAR), "
                "CAST(attr_double[?] AS VARCHAR), CAST(attr_bool[?] AS VARCHAR))"), True
    if name.startswith("resource."):
        params.append(name[9:])
        if source == "spans":  # spans point to their resource (migrations/013_resources.sql)
            return ("(SELECT r.attributes[?] FROM resources r"
                    " WHERE r.resource_id = spans.resource_id)"), True
        return "resource_attributes[?]", True
    cols = FIELDS[source]
    if name not in cols:
        raise ConfigError(f"unknown filter field {name!r} for {source}; use one of "
                          f"{', '.join(sorted(cols))}, attr.<key> or resource.<key>")
    col = cols[name]
    return col, col not in ("http_status_code", "is_error", "severity_number")


def _value(v: Any, text: bool) -> Any:
    if text and not isinstance(v, str):
        return str(v).lower() if isinstance(v, bool) else str(v)
    return v


def predicate(source: str, flt: Filter, params: list[Any]) -> str:
    """AND of every condition; ``TRUE`` for an empty filter."""
    parts = []
    for name, cond in flt.items():
        col_params: list[Any] = []
        col, text = column(source, name, col_params)
        if isinstance(cond, Cmp):
            parts.append(_cmp(col, text, cond, col_params, params))
        elif isinstance(cond, list):
            for v in cond:
                params.extend(col_params)
                params.append(_value(v, text))
            parts.append("(" + " OR ".join(f"{col} = ?" for _ in cond) + ")" if cond else "FALSE")
        else:
            params.extend(col_params)
            params.append(_value(cond, text))
            parts.append(f"{col} = ?")
    return " AND ".join(parts) if parts else "TRUE"


def _cmp(col: str, text: bool, c: Cmp, col_params: list[Any], params: list[Any]) -> str:
    parts = []
    num = f"TRY_CAST({col} AS DOUBLE)" if text else col

    for op, sql in (("gt", ">"), ("gte", ">="), ("lt", "<"), ("lte", "<=")):
        v = getattr(c, op)
        if v is not None:
            params.extend(col_params)
            params.append(v)
            parts.append(f"{num} {sql} ?")
    if c.eq is not None:
        params.extend(col_params)
        params.append(_value(c.eq, text))
        parts.append(f"{col} = ?")
    if c.ne is not None:
        params.extend(col_params)
        params.append(_value(c.ne, text))
        parts.append(f"{col} IS DISTINCT FROM ?")
    if c.in_ is not None:
        sub = []
        for v in c.in_:
            params.extend(col_params)
            params.append(_value(v, text))
            sub.append(f"{col} = ?")
        parts.append("(" + " OR ".join(sub) + ")" if sub else "FALSE")
    if c.not_in is not None:
        for v in c.not_in:
            params.extend(col_params)
            params.append(_value(v, text))
            parts.append(f"{col} IS DISTINCT FROM ?")
    if c.prefix is not None:
        params.extend(col_params)
        params.append(c.prefix)
        parts.append(f"starts_with({col}, ?)")
    if c.regex is not None:
        params.extend(col_params)
        params.append(c.regex)
        parts.append(f"regexp_matches({col}, ?)")
    if c.exists is not None:
        params.extend(col_params)
        parts.append(f"{col} IS {'NOT ' if c.exists else ''}NULL")
    return "(" + " AND ".join(parts) + ")"


def group_expr(source: str, group_by: list[str], params: list[Any]) -> str:
    """``'route=/a,method=GET'`` (or ``''`` without grouping) as a SQL expression."""
    if not group_by:
        return "''"
    pieces = []
    for g in group_by:
        col, _ = column(source, g, params)
        pieces.append(f"'{_safe(g)}=' || coalesce(CAST({col} AS VARCHAR), '')")
    return " || ',' || ".join(pieces)


def _safe(name: str) -> str:
    if "'" in name:
        raise ConfigError(f"group-by field {name!r} may not contain a quote")
    return name
