"""OTLP traces (protobuf messages) → span and span-event columns.

The hot path of ingest: each field of each span is read once (OTLP-NOTES.md, "Parsing in
Python": pulling fields out of upb messages is the cost, not parsing).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from sloengine.ingest.anyvalue import attributes_dict, resource_columns
from sloengine.ingest.columns import (
    LINK_TYPE,
    SPAN_EVENT_SCHEMA,
    SPAN_SCHEMA,
    STR_MAP,
    AttributeColumns,
    MapColumn,
    table,
    to_text,
)
from sloengine.ingest.context import ZERO_SPAN, DecodeState, span_id_problem, trace_id_problem
from sloengine.ingest.semconv import (
    INT_COLUMNS,
    SPAN_KINDS,
    SPAN_PROMOTED,
    STATUS_CODES,
    grpc_code_name,
    is_error,
)
from sloengine.model import Chunk

_PROMOTED_COLUMNS = sorted({col for col, _ in SPAN_PROMOTED.values()})


class SpanColumns:
    """Accumulates spans of one chunk."""

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {
            f.name: [] for f in SPAN_SCHEMA if f.name not in ("resource_attributes",)
        }
        self.attrs = AttributeColumns()
        self.resource = MapColumn()
        self.ev: dict[str, list[Any]] = {f.name: [] for f in SPAN_EVENT_SCHEMA}
        self.ev_attrs = MapColumn()
        self.n = 0

    def tables(self) -> tuple[Any, Any]:
        cols: dict[str, Any] = dict(self.cols)
        (
            cols["attr_str"],
            cols["attr_int"],
            cols["attr_double"],
            cols["attr_bool"],
            cols["attr_json"],
        ) = self.attrs.arrays()
        cols["resource_attributes"] = self.resource.array(STR_MAP)
        cols["links"] = pa.array(self.cols["links"], LINK_TYPE)
        ev: dict[str, Any] = dict(self.ev)
        ev["attributes"] = self.ev_attrs.array(STR_MAP)
        return table(SPAN_SCHEMA, cols), table(SPAN_EVENT_SCHEMA, ev)


def decode_trace_request(req: Any, state: DecodeState) -> Iterator[Chunk]:
    """Yield chunks of at most ``chunk_records`` spans from an ExportTraceServiceRequest."""
    limit = state.options.chunk_records
    corr_rank = {k: i for i, k in enumerate(state.options.correlation_keys)}
    out = SpanColumns()
    (c_trace, c_span, c_parent, c_state, c_flags, c_name, c_kind, c_service, c_start, c_end,
     c_dur, c_status, c_msg, c_err, c_corr, c_links, c_scope, c_scope_v, c_evn) = _bind(out)
    promoted_lists = [(col, out.cols[col]) for col in _PROMOTED_COLUMNS]

    for ri, rs in enumerate(req.resource_spans):
        service, res_keys, res_vals = resource_columns(rs.resource)
        for si, ss in enumerate(rs.scope_spans):
            scope_name, scope_version = ss.scope.name or None, ss.scope.version or None
            for pi, sp in enumerate(ss.spans):
                tid = sp.trace_id
                sid = sp.span_id
                pid = sp.parent_span_id
                problem = trace_id_problem(tid) or span_id_problem(sid)
                if problem is None and pid and (len(pid) != 8 or pid == ZERO_SPAN):
                    problem = f"parent span id must be empty or 8 non-zero bytes, got {pid.hex()!r}"
                if problem is not None:
                    state.reject(
                        f"resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}]",
                        problem,
                        sp.SerializeToString(),
                        "traces",
                    )
                    continue
                attrs = attributes_dict(sp.attributes)
                promo: dict[str, Any] = {}
                ranks: dict[str, int] = {}
                corr: str | None = None
                corr_r = 1 << 30
                for key in list(attrs):
                    p = SPAN_PROMOTED.get(key)
                    if p is not None:
                        col, rank = p
                        if rank < ranks.get(col, 1 << 30):
                            promo[col] = attrs[key]
                            ranks[col] = rank
                        del attrs[key]
                        continue
                    r = corr_rank.get(key)
                    if r is not None and r < corr_r:
                        v = attrs[key]
                        if type(v) is list:
                            v = v[0] if v else None
                        if v is not None and v != "":
                            corr, corr_r = str(v), r
                kind = SPAN_KINDS[sp.kind] if 0 <= sp.kind < 6 else "UNSPECIFIED"
                st = sp.status
                status = STATUS_CODES[st.code] if 0 <= st.code < 3 else "UNSET"
                http_status = promo.get("http_status_code")
                if http_status is not None:
                    try:
                        http_status = int(http_status)
                    except (TypeError, ValueError):
                        state.warnings.append(
                            f"resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}]: "
                            f"http status code {http_status!r} is not an integer; ignored"
                        )
                        http_status = None
                    promo["http_status_code"] = http_status
                rpc_status = promo.get("rpc_status_code")
                if rpc_status is not None:
                    rpc_status = promo["rpc_status_code"] = grpc_code_name(rpc_status)
                for col, lst in promoted_lists:
                    v = promo.get(col)
                    if v is not None and col not in INT_COLUMNS and type(v) is not str:
                        v = to_text(v)
                    lst.append(v)
                start = sp.start_time_unix_nano
                end = sp.end_time_unix_nano
                c_trace.append(tid.hex())
                c_span.append(sid.hex())
                c_parent.append(pid.hex() if pid else None)
                c_state.append(sp.trace_state or None)
                c_flags.append(sp.flags)
                c_name.append(sp.name)
                c_kind.append(kind)
                c_service.append(service)
                c_start.append(start)
                c_end.append(end)
                c_dur.append(end - start)
                c_status.append(status)
                c_msg.append(st.message or None)
                c_err.append(is_error(kind, status, http_status, rpc_status))
                c_corr.append(corr)
                c_scope.append(scope_name)
                c_scope_v.append(scope_version)
                out.attrs.add_row(attrs)
                out.resource.keys.extend(res_keys)
                out.resource.values.extend(res_vals)
                out.resource.close_row()
                links = sp.links
                if links:
                    c_links.append([_link(lk) for lk in links])
                else:
                    c_links.append(None)
                events = sp.events
                c_evn.append(len(events))
                if events:
                    _add_events(out, tid.hex(), sid.hex(), events)
                out.n += 1
                if out.n >= limit:
                    yield _finish(out, state)
                    out = SpanColumns()
                    (c_trace, c_span, c_parent, c_state, c_flags, c_name, c_kind, c_service,
                     c_start, c_end, c_dur, c_status, c_msg, c_err, c_corr, c_links, c_scope,
                     c_scope_v, c_evn) = _bind(out)
                    promoted_lists = [(col, out.cols[col]) for col in _PROMOTED_COLUMNS]
    if out.n or state.dead_letters or state.warnings:
        yield _finish(out, state)


_BOUND = (
    "trace_id", "span_id", "parent_span_id", "trace_state", "flags", "name", "kind",
    "service_name", "start_time_unix_nano", "end_time_unix_nano", "duration_ns", "status_code",
    "status_message", "is_error", "correlation_id", "links", "scope_name", "scope_version",
    "event_count",
)


def _bind(out: SpanColumns) -> tuple[list[Any], ...]:
    """The column lists the hot loop appends to, bound once per chunk."""
    return tuple(out.cols[name] for name in _BOUND)


def _finish(out: SpanColumns, state: DecodeState) -> Chunk:
    spans, events = out.tables()
    dead, warnings = state.take()
    return Chunk(spans=spans, span_events=events, dead_letters=dead, warnings=warnings)


def _link(lk: Any) -> dict[str, Any]:
    attrs = attributes_dict(lk.attributes)
    return {
        "trace_id": lk.trace_id.hex() if lk.trace_id else None,
        "span_id": lk.span_id.hex() if lk.span_id else None,
        "trace_state": lk.trace_state or None,
        "attributes": [(k, to_text(v)) for k, v in attrs.items()],
    }


def _add_events(out: SpanColumns, tid: str, sid: str, events: Any) -> None:
    ev = out.ev
    for seq, e in enumerate(events):
        ev["trace_id"].append(tid)
        ev["span_id"].append(sid)
        ev["seq"].append(seq)
        ev["time_unix_nano"].append(e.time_unix_nano)
        ev["name"].append(e.name)
        for k, v in attributes_dict(e.attributes).items():
            out.ev_attrs.keys.append(k)
            out.ev_attrs.values.append(to_text(v))
        out.ev_attrs.close_row()
