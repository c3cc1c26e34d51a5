"""OTLP AnyValue / KeyValue → Python values (OTLP-NOTES.md §7, §8)."""

from __future__ import annotations

import base64
from typing import Any


def any_value(v: Any) -> Any:
    """One AnyValue as a Python value; bytes become ``{"bytes": base64}``, empty becomes None."""
    w = v.WhichOneof("value")
    if w == "string_value":
        return v.string_value
    if w == "int_value":
        return v.int_value
    if w == "double_value":
        return v.double_value
    if w == "bool_value":
        return v.bool_value
    if w == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if w == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if w == "bytes_value":
        return {"bytes": base64.b64encode(v.bytes_value).decode()}
    return None


def attributes_dict(kvs: Any) -> dict[str, Any]:
    """KeyValue list → dict. Duplicate keys: the last one wins (OTLP-NOTES.md §8)."""
    out: dict[str, Any] = {}
    for kv in kvs:
        v = kv.value
        sv = v.string_value  # "" when empty or another case of the oneof
        if sv:
            out[kv.key] = sv
            continue
        w = v.WhichOneof("value")
        if w == "string_value":
            out[kv.key] = sv
        elif w == "int_value":
            out[kv.key] = v.int_value
        elif w == "double_value":
            out[kv.key] = v.double_value
        elif w == "bool_value":
            out[kv.key] = v.bool_value
        else:
            out[kv.key] = any_value(v)
    return out


def resource_columns(resource: Any) -> tuple[str | None, list[str], list[str]]:
    """service.name and the resource attributes as text key/value lists."""
    return resource_attr_columns(attributes_dict(resource.attributes))


def resource_attr_columns(attrs: dict[str, Any]) -> tuple[str | None, list[str], list[str]]:
    """service.name and resource attributes (as Python values) as text key/value lists."""
    from sloengine.ingest.columns import to_text

    service = attrs.get("service.name")
    keys = list(attrs)
    vals = [to_text(v) for v in attrs.values()]
    return (str(service) if service is not None else None), keys, vals
