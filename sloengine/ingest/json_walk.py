"""Reading OTLP/JSON values straight from orjson-loaded dicts, by the proto3 JSON mapping.

Why not ``json_format.ParseDict``: building a protobuf message per span and reading it back
runs ~4k spans/s; walking the dicts runs at protobuf-ingest speed. The rules are the ones
ParseDict applies (and the ones OTLP adds, OTLP-NOTES.md §1, §4, §5):

- field names in lowerCamelCase or the proto name (``traceId`` / ``trace_id``); unknown
  fields are ignored; ``null`` means absent; of two spellings of one field the later wins;
- 64- and 32-bit integers as JSON numbers or strings (``"1e3"`` and ``5.0`` are integers,
  ``1.5``, ``true`` and ``" 5"`` are not), range-checked for the field's type;
- doubles as numbers or strings, including ``"NaN"``, ``"Infinity"``, ``"-Infinity"``;
- enums as integers, integer strings or value names; an unknown name is the default (0);
- bytes as base64 (standard or URL-safe alphabet), except the ids, which OTLP encodes as hex.

A wrong type raises ``BadRecord`` with the field's JSON path inside the record, in
ParseDict's words (``Failed to parse startTimeUnixNano field: ...``).
"""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor


class BadRecord(ValueError):
    """One record (span, log record, data point) that cannot be read."""


def fail(path: str, detail: str) -> BadRecord:
    return BadRecord(f"Failed to parse {path} field: {detail}.")


def aliases(desc: Descriptor) -> tuple[dict[str, str], frozenset[str]]:
    """Both accepted spellings of every field of a message → its JSON name, and the set of
    JSON names (a dict whose keys are all in it needs no renaming)."""
    names = {f.json_name: f.json_name for f in desc.fields}
    names.update({f.name: f.json_name for f in desc.fields})
    return names, frozenset(f.json_name for f in desc.fields)


def canon(d: Any, names: tuple[dict[str, str], frozenset[str]], path: str) -> dict[str, Any]:
    """``d`` with its keys as JSON names and unknown keys dropped (usually ``d`` itself)."""
    if type(d) is not dict:
        raise fail(path, f"expected a JSON object, got {_tname(d)}")
    if d.keys() <= names[1]:
        return d
    table = names[0]
    out: dict[str, Any] = {}
    for k, v in d.items():
        j = table.get(k)
        if j is not None:
            out[j] = v
    return out


def enum_names(desc: EnumDescriptor) -> dict[str, int]:
    return {v.name: v.number for v in desc.values}


def _tname(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(v), type(v).__name__)


def integer(v: Any, path: str, lo: int, hi: int) -> int:
    """An integer field (int32 … fixed64) as ParseDict reads it, range-checked."""
    if type(v) is not int:
        if isinstance(v, bool):
            raise fail(path, f"Bool value {v} is not acceptable for integer field")
        if isinstance(v, float):
            if not v.is_integer():
                raise fail(path, f"Couldn't parse integer: {v}")
            v = int(v)
        elif isinstance(v, str):
            if " " in v:
                raise fail(path, f'Couldn\'t parse integer: "{v}"')
            try:
                v = int(v)
            except ValueError as exc:
                try:
                    f = float(v)
                except ValueError:
                    raise fail(path, str(exc)) from None
                if not f.is_integer():
                    raise fail(path, f'Couldn\'t parse non-integer string: "{v}"') from None
                v = int(f)
        else:
            raise fail(path, f"expected an integer, got {_tname(v)}")
    if not lo <= v <= hi:
        raise fail(path, f"Value out of range: {v}")
    return v  # type: ignore[no-any-return]


U64 = (0, 2**64 - 1)
I64 = (-(2**63), 2**63 - 1)
U32 = (0, 2**32 - 1)
I32 = (-(2**31), 2**31 - 1)


def u64(v: Any, path: str) -> int:
    if type(v) is str and v.isdigit() and len(v) < 20:  # the common case: "1544712660300…"
        return int(v)
    if v is None:
        return 0
    return integer(v, path, *U64)


def u32(v: Any, path: str) -> int:
    if v is None:
        return 0
    if type(v) is int and 0 <= v < 2**32:
        return v
    return integer(v, path, *U32)


def double(v: Any, path: str) -> float:
    """A double as ParseDict reads it: numbers, numeric strings, "NaN", "±Infinity"."""
    t = type(v)
    if t is float:
        return v  # type: ignore[no-any-return]
    if t is int or t is bool:
        return float(v)
    if t is str:
        if v == "nan":
            raise fail(path, 'Couldn\'t parse float "nan", use "NaN" instead')
        try:
            return float(v)
        except ValueError:
            special = {"NaN": float("nan"), "Infinity": float("inf"),
                       "-Infinity": float("-inf")}.get(v)
            if special is None:
                raise fail(path, f"Couldn't parse float: {v}") from None
            return special
    raise fail(path, f"expected a number, got {_tname(v)}")


def text(v: Any, path: str) -> str:
    if type(v) is str:
        return v
    if v is None:
        return ""
    raise fail(path, f"expected string or bytes-like object, got '{type(v).__name__}'")


def boolean(v: Any, path: str) -> bool:
    if v is None:
        return False
    if type(v) is not bool:
        raise fail(path, "Expected true or false without quotes")
    return v


def enum(v: Any, names: dict[str, int], path: str) -> int:
    """An enum: its number, an integer string or a name; unknown names are the default."""
    if type(v) is int and -(2**31) <= v < 2**31:
        return v
    if v is None:
        return 0
    if type(v) is str:
        n = names.get(v)
        if n is not None:
            return n
    if type(v) in (dict, list):
        raise fail(path, f"expected an enum name or number, got {_tname(v)}")
    try:
        n = int(v)
    except ValueError:
        return 0  # an unknown name: ParseDict with ignore_unknown_fields leaves the default
    if not I32[0] <= n <= I32[1]:
        raise fail(path, f"Value out of range: {n}")
    return n


def b64(v: Any, path: str) -> bytes:
    """A bytes field (other than the ids) as ParseDict decodes it."""
    if type(v) is not str:
        raise fail(path, f"expected a base64 string, got {_tname(v)}")
    enc = v.encode()
    return base64.urlsafe_b64decode(enc + b"=" * (4 - len(enc) % 4))


def items(v: Any, path: str) -> list[Any]:
    """A repeated field: a list without nulls (absent or null: empty)."""
    if type(v) is list:
        if None in v:
            raise fail(f"{path}[{v.index(None)}]",
                       "null is not allowed to be used as an element in a repeated field")
        return v
    if v is None:
        return []
    raise fail(path, f"repeated field {path.rsplit('.', 1)[-1]} must be in [] which is {v!r}")


def hex_id(value: Any, field: str, size: int) -> bytes:
    """Decode a hex id of ``size`` bytes (either case); "" or absent means b"" (no id)."""
    if value is None or value == "":
        return b""
    if type(value) is not str:
        raise BadRecord(f"{field} must be a hex string, got {type(value).__name__}")
    if len(value) != size * 2:
        raise BadRecord(f"{field} {value!r} must be {size * 2} hex characters, got {len(value)}")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise BadRecord(f"{field} {value!r} is not hex") from None


_ANY_NAMES = {
    "stringValue": "s", "string_value": "s", "boolValue": "b", "bool_value": "b",
    "intValue": "i", "int_value": "i", "doubleValue": "d", "double_value": "d",
    "arrayValue": "a", "array_value": "a", "kvlistValue": "k", "kvlist_value": "k",
    "bytesValue": "y", "bytes_value": "y", "stringValueStrindex": "x",
    "string_value_strindex": "x",
}


def any_value(v: Any, path: str) -> Any:
    """One OTLP/JSON AnyValue as the Python value ``anyvalue.any_value`` gives for the same
    protobuf AnyValue: bytes → ``{"bytes": base64}``, empty (or a string-table index) → None.
    Two members of the oneof are an error, as in ParseDict."""
    if type(v) is not dict:
        if v is None:
            return None
        raise fail(path, f"expected a JSON object, got {_tname(v)}")
    kind = None
    x: Any = None
    for k, val in v.items():
        c = _ANY_NAMES.get(k)
        if c is None or val is None:
            continue
        if kind is not None:
            raise fail(path, 'AnyValue should not have multiple "value" oneof fields')
        kind, x = c, val
    if kind == "s":
        return text(x, f"{path}.stringValue")
    if kind == "i":
        return integer(x, f"{path}.intValue", *I64)
    if kind == "d":
        return double(x, f"{path}.doubleValue")
    if kind == "b":
        return boolean(x, f"{path}.boolValue")
    if kind == "a":
        p = f"{path}.arrayValue"
        vals = _values(x, p)
        return [any_value(e, f"{p}.values[{i}]") for i, e in enumerate(vals)]
    if kind == "k":
        return attributes(_values(x, f"{path}.kvlistValue"), f"{path}.kvlistValue.values")
    if kind == "y":
        return {"bytes": base64.b64encode(b64(x, f"{path}.bytesValue")).decode()}
    if kind == "x":
        integer(x, f"{path}.stringValueStrindex", *I32)
    return None


def _values(x: Any, path: str) -> list[Any]:
    if type(x) is not dict:
        raise fail(path, f"expected a JSON object, got {_tname(x)}")
    return items(x.get("values"), f"{path}.values")


def attributes(kvs: Any, path: str) -> dict[str, Any]:
    """A KeyValue list → dict, as ``anyvalue.attributes_dict``: the last duplicate key wins."""
    out: dict[str, Any] = {}
    if type(kvs) is not list:
        if kvs is None:
            return out
        items(kvs, path)  # raises the repeated-field error
    for i, kv in enumerate(kvs):
        if type(kv) is not dict:
            if kv is None:
                raise fail(f"{path}[{i}]", "null is not allowed to be used as an element in "
                           "a repeated field")
            raise fail(f"{path}[{i}]", f"expected a JSON object, got {_tname(kv)}")
        key = kv.get("key")
        val = kv.get("value")
        if type(key) is not str:
            key = text(key, f"{path}[{i}].key")
            if "keyStrindex" in kv or "key_strindex" in kv:
                integer(kv.get("keyStrindex", kv.get("key_strindex")) or 0,
                        f"{path}[{i}].keyStrindex", *I32)
        if type(val) is dict and len(val) == 1:
            s = val.get("stringValue")
            if type(s) is str:
                out[key] = s
                continue
        out[key] = any_value(val, f"{path}[{i}].value")
    return out
