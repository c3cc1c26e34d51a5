"""OTLP/JSON building blocks (proto3 JSON mapping with the OTLP exceptions).

OTLP spec, "JSON Protobuf Encoding": trace and span ids are lower-case hex strings (not
base64), 64-bit integers are decimal strings, enums are integers, field names lowerCamelCase,
and fields left at their default are omitted.
"""

from __future__ import annotations

import json
from typing import Any

from .records import Attrs, AttrValue
from .topology import SCHEMA_URL, SCOPE_NAME, SCOPE_VERSION, resource_attrs

Json = dict[str, Any]


def value(v: AttrValue) -> Json:
    """An ``AnyValue``; ints become decimal strings (int64)."""
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, str):
        return {"stringValue": v}
    return {"arrayValue": {"values": [{"stringValue": item} for item in v]}}


def attributes(attrs: Attrs) -> list[Json]:
    return [{"key": k, "value": value(v)} for k, v in attrs]


def resource(service: str, host: str) -> Json:
    return {"attributes": attributes(resource_attrs(service, host))}


def scope() -> Json:
    return {"name": SCOPE_NAME, "version": SCOPE_VERSION}


def schema_url() -> str:
    return SCHEMA_URL


def compact(obj: Any) -> str:
    """One-line JSON, stable key order (insertion order)."""
    return json.dumps(obj, separators=(",", ":"))


def readable(obj: Any, compact_keys: frozenset[str], pad: str = "") -> str:
    """Indented JSON whose lists under ``compact_keys`` put one compact item per line."""
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = []
        for k, v in obj.items():
            if k in compact_keys and isinstance(v, list) and v:
                inner = ",\n".join(f"{pad}    {compact(x)}" for x in v)
                text = f"[\n{inner}\n{pad}  ]"
            else:
                text = readable(v, compact_keys, pad + "  ")
            items.append(f"{pad}  {json.dumps(k)}: {text}")
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(obj, list):
        if not obj:
            return "[]"
        inner = ",\n".join(f"{pad}  {readable(x, compact_keys, pad + '  ')}" for x in obj)
        return f"[\n{inner}\n{pad}]"
    return json.dumps(obj)
