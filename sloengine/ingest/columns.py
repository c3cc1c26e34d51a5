"""Column builders: decoded records accumulate in Python lists, one list per column, and
become one Arrow table per chunk (ARCHITECTURE.md rule 4: no object per span past this point).

The Arrow schemas here are the contract with the store's tables (store/migrations/); a test
checks that every column here exists there with the same type.
"""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa

STR_MAP = pa.map_(pa.string(), pa.string())
INT_MAP = pa.map_(pa.string(), pa.int64())
DOUBLE_MAP = pa.map_(pa.string(), pa.float64())
BOOL_MAP = pa.map_(pa.string(), pa.bool_())

LINK_TYPE = pa.list_(
    pa.struct(
        [
            ("trace_id", pa.string()),
            ("span_id", pa.string()),
            ("trace_state", pa.string()),
            ("attributes", STR_MAP),
        ]
    )
)
EXEMPLAR_TYPE = pa.list_(
    pa.struct(
        [
            ("time_unix_nano", pa.uint64()),
            ("value", pa.float64()),
            ("trace_id", pa.string()),
            ("span_id", pa.string()),
        ]
    )
)
QUANTILE_TYPE = pa.list_(pa.struct([("quantile", pa.float64()), ("value", pa.float64())]))

_ATTR_FIELDS = [
    ("attr_str", STR_MAP),
    ("attr_int", INT_MAP),
    ("attr_double", DOUBLE_MAP),
    ("attr_bool", BOOL_MAP),
    ("attr_json", pa.string()),
]

SPAN_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_span_id", pa.string()),
        ("trace_state", pa.string()),
        ("flags", pa.uint32()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("service_name", pa.string()),
        ("start_time_unix_nano", pa.uint64()),
        ("end_time_unix_nano", pa.uint64()),
        ("duration_ns", pa.int64()),
        ("status_code", pa.string()),
        ("status_message", pa.string()),
        ("is_error", pa.bool_()),
        ("http_route", pa.string()),
        ("http_method", pa.string()),
        ("http_status_code", pa.int32()),
        ("rpc_system", pa.string()),
        ("rpc_service", pa.string()),
        ("rpc_method", pa.string()),
        ("rpc_status_code", pa.string()),
        ("db_system", pa.string()),
        ("db_namespace", pa.string()),
        ("db_collection", pa.string()),
        ("db_operation", pa.string()),
        ("messaging_system", pa.string()),
        ("messaging_destination", pa.string()),
        ("messaging_operation", pa.string()),
        ("correlation_id", pa.string()),
        ("links", LINK_TYPE),
        *_ATTR_FIELDS,
        ("scope_name", pa.string()),
        ("scope_version", pa.string()),
        ("event_count", pa.int32()),
        ("resource_id", pa.uint64()),  # → resources (added by migrations/013)
    ]
)

SPAN_EVENT_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("seq", pa.int32()),
        ("time_unix_nano", pa.uint64()),
        ("name", pa.string()),
        ("attributes", STR_MAP),
    ]
)

#: One row per distinct resource of spans (migrations/013_resources.sql).
RESOURCE_SCHEMA = pa.schema(
    [
        ("resource_id", pa.uint64()),
        ("service_name", pa.string()),
        ("attributes", STR_MAP),
    ]
)

LOG_SCHEMA = pa.schema(
    [
        ("record_id", pa.string()),
        ("time_unix_nano", pa.uint64()),
        ("observed_time_unix_nano", pa.uint64()),
        ("severity_number", pa.int32()),
        ("severity_text", pa.string()),
        ("body", pa.string()),
        ("event_name", pa.string()),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("service_name", pa.string()),
        ("correlation_id", pa.string()),
        ("http_route", pa.string()),
        ("http_method", pa.string()),
        ("http_status_code", pa.int32()),
        ("duration_ns", pa.int64()),
        *_ATTR_FIELDS,
        ("resource_attributes", STR_MAP),
        ("scope_name", pa.string()),
        ("source_kind", pa.string()),
    ]
)

POINT_SCHEMA = pa.schema(
    [
        ("point_id", pa.string()),
        ("metric_name", pa.string()),
        ("description", pa.string()),
        ("unit", pa.string()),
        ("metric_type", pa.string()),
        ("temporality", pa.string()),
        ("is_monotonic", pa.bool_()),
        ("service_name", pa.string()),
        ("attributes", STR_MAP),
        ("resource_attributes", STR_MAP),
        ("scope_name", pa.string()),
        ("start_time_unix_nano", pa.uint64()),
        ("time_unix_nano", pa.uint64()),
        ("value", pa.float64()),
        ("value_int", pa.int64()),
        ("count", pa.uint64()),
        ("sum", pa.float64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("bucket_counts", pa.list_(pa.uint64())),
        ("explicit_bounds", pa.list_(pa.float64())),
        ("scale", pa.int32()),
        ("zero_count", pa.uint64()),
        ("zero_threshold", pa.float64()),
        ("positive_offset", pa.int32()),
        ("positive_bucket_counts", pa.list_(pa.uint64())),
        ("negative_offset", pa.int32()),
        ("negative_bucket_counts", pa.list_(pa.uint64())),
        ("quantiles", QUANTILE_TYPE),
        ("flags", pa.uint32()),
        ("exemplars", EXEMPLAR_TYPE),
    ]
)

SCHEMAS = {
    "spans": SPAN_SCHEMA,
    "span_events": SPAN_EVENT_SCHEMA,
    "resources": RESOURCE_SCHEMA,
    "logs": LOG_SCHEMA,
    "metric_points": POINT_SCHEMA,
}


def to_text(value: Any) -> str:
    """An attribute value as text for string-only maps (resource, event and link attributes)."""
    t = type(value)
    if t is str:
        return value  # type: ignore[no-any-return]
    if t is bool:
        return "true" if value else "false"
    if t is int or t is float:
        return repr(value)
    return orjson.dumps(value).decode()


class MapColumn:
    """A MAP column built from flat key/value lists and row offsets (no dict per row)."""

    __slots__ = ("keys", "offsets", "values")

    def __init__(self) -> None:
        self.offsets: list[int] = [0]
        self.keys: list[str] = []
        self.values: list[Any] = []

    def close_row(self) -> None:
        self.offsets.append(len(self.keys))

    def array(self, map_type: pa.MapType) -> pa.Array:
        return pa.MapArray.from_arrays(
            pa.array(self.offsets, pa.int32()),
            pa.array(self.keys, map_type.key_type),
            pa.array(self.values, map_type.item_type),
        )


class AttributeColumns:
    """Typed attribute maps (string / int / double / bool) plus a JSON column for arrays,
    key-value lists, bytes and empty values (OTLP-NOTES.md §7)."""

    __slots__ = ("b", "d", "i", "json", "s")

    def __init__(self) -> None:
        self.s = MapColumn()
        self.i = MapColumn()
        self.d = MapColumn()
        self.b = MapColumn()
        self.json: list[str | None] = []

    def bind(self) -> tuple[list[Any], ...]:
        """The flat lists of the four maps and the JSON column, for hot loops that append to
        them directly: (keys, values, offsets) of str, int, double, bool, then json."""
        s, i, d, b = self.s, self.i, self.d, self.b
        return (s.keys, s.values, s.offsets, i.keys, i.values, i.offsets, d.keys, d.values,
                d.offsets, b.keys, b.values, b.offsets, self.json)

    def add_row(self, attrs: dict[str, Any]) -> None:
        s, i, d, b = self.s, self.i, self.d, self.b
        other: dict[str, Any] | None = None
        for k, v in attrs.items():
            t = type(v)
            if t is str:
                s.keys.append(k)
                s.values.append(v)
            elif t is bool:
                b.keys.append(k)
                b.values.append(v)
            elif t is int:
                if -(2**63) <= v < 2**63:
                    i.keys.append(k)
                    i.values.append(v)
                else:
                    if other is None:
                        other = {}
                    other[k] = str(v)
            elif t is float:
                d.keys.append(k)
                d.values.append(v)
            else:
                if other is None:
                    other = {}
                other[k] = v
        s.close_row()
        i.close_row()
        d.close_row()
        b.close_row()
        self.json.append(None if other is None else orjson.dumps(other).decode())

    def arrays(self) -> list[pa.Array]:
        return [
            self.s.array(STR_MAP),
            self.i.array(INT_MAP),
            self.d.array(DOUBLE_MAP),
            self.b.array(BOOL_MAP),
            pa.array(self.json, pa.string()),
        ]


def table(schema: pa.Schema, columns: dict[str, Any]) -> pa.Table:
    """Build a table from ``columns`` (lists or Arrow arrays) in schema order.

    An array may be dictionary-encoded with the schema's type as value type (repeated maps
    such as resource attributes): same values, and the store reads each distinct map once.
    """
    arrays = []
    fields = []
    for f in schema:
        col = columns[f.name]
        arr = col if isinstance(col, pa.Array) else pa.array(col, f.type)
        if arr.type != f.type and pa.types.is_dictionary(arr.type) \
                and arr.type.value_type == f.type:
            f = f.with_type(arr.type)
        arrays.append(arr)
        fields.append(f)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=schema.metadata))
