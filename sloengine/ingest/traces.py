"""OTLP traces (protobuf messages) → span and span-event columns.

The hot path of ingest: each field of each span is read once (OTLP-NOTES.md, "Parsing in
Python": pulling fields out of upb messages is the cost, not parsing).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from sloengine.ingest.anyvalue import any_value, attributes_dict, resource_columns
from sloengine.ingest.columns import (
    LINK_TYPE,
    RESOURCE_SCHEMA,
    SPAN_EVENT_SCHEMA,
    SPAN_SCHEMA,
    STR_MAP,
    AttributeColumns,
    MapColumn,
    table,
    to_text,
)
from sloengine.ingest.context import (
    ZERO_SPAN,
    ZERO_TRACE,
    DecodeState,
    span_id_problem,
    trace_id_problem,
)
from sloengine.ingest.semconv import (
    GRPC_SERVER_ERRORS,
    SPAN_KINDS,
    SPAN_PROMOTED,
    STATUS_CODES,
    grpc_code_name,
)
from sloengine.model import Chunk

_PROMOTED_COLUMNS = sorted({col for col, _ in SPAN_PROMOTED.values()})


#: attribute key → (promoted column, priority); correlation keys map to (None, preference).
_Special = dict[str, tuple[str | None, int]]


class SpanColumns:
    """Accumulates spans of one chunk.

    Per-resource and per-scope columns are filled in runs (``close_run``), promoted columns
    sparsely (row numbers and values), so the per-span work is only what varies per span.
    """

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {name: [] for name in _BOUND}
        self.attrs = AttributeColumns()
        #: the chunk's resources (a chunk has few and many spans): their attribute maps and
        #: services, each once; spans point to them by position here until
        #: ``resources.assign_ids`` gives them their stored ids (migrations/013_resources.sql).
        self.resource = MapColumn()
        self.resource_services: list[str | None] = []
        self.resource_ids: dict[int, int] = {}
        #: runs of rows from one resource and scope: (end row, resource position, service,
        #: scope name, scope version), decoded into full columns by Arrow.
        self.runs: list[tuple[int, int, str | None, str | None, str | None]] = []
        #: promoted column → (row numbers, values); the other rows are null.
        self.promoted: dict[str, tuple[list[int], list[Any]]] = {
            col: ([], []) for col in _PROMOTED_COLUMNS
        }
        self.ev: dict[str, list[Any]] = {f.name: [] for f in SPAN_EVENT_SCHEMA}
        self.ev_attrs = MapColumn()
        self.n = 0
        #: rows already covered by the run columns (service, scope, resource attributes)
        self.run_start = 0

    def close_run(self, ri: int, service: str | None, res_keys: list[str],
                  res_vals: list[str], scope_name: str | None,
                  scope_version: str | None) -> None:
        """Record that the rows added since the last run share this resource (``ri``: its
        position in the request) and scope."""
        k = self.n - self.run_start
        if k <= 0:
            return
        self.run_start = self.n
        idx = self.resource_ids.get(ri)
        if idx is None:
            idx = self.resource_ids[ri] = len(self.resource_ids)
            res = self.resource
            res.keys.extend(res_keys)
            res.values.extend(res_vals)
            res.close_row()
            self.resource_services.append(service)
        self.runs.append((self.n, idx, service, scope_name, scope_version))

    def tables(self) -> tuple[Any, Any, Any]:
        cols: dict[str, Any] = dict(self.cols)
        n = self.n
        for col, (rows, values) in self.promoted.items():
            if not rows:
                cols[col] = pa.nulls(n, SPAN_SCHEMA.field(col).type)
            elif len(rows) == n:
                cols[col] = values
            else:
                full: list[Any] = [None] * n
                for i, v in zip(rows, values, strict=True):
                    full[i] = v
                cols[col] = full
        ends = pa.array([r[0] for r in self.runs], pa.int32())
        for i, name in ((2, "service_name"), (3, "scope_name"), (4, "scope_version")):
            cols[name] = _run_column(ends, [r[i] for r in self.runs], pa.string())
        cols["resource_id"] = _run_column(ends, [r[1] for r in self.runs], pa.uint64())
        (
            cols["attr_str"],
            cols["attr_int"],
            cols["attr_double"],
            cols["attr_bool"],
            cols["attr_json"],
        ) = self.attrs.arrays()
        cols["links"] = pa.array(self.cols["links"], LINK_TYPE)
        _span_codes(cols)
        ev: dict[str, Any] = dict(self.ev)
        ev["attributes"] = self.ev_attrs.array(STR_MAP)
        res = {"resource_id": list(range(len(self.resource_services))),
               "service_name": self.resource_services,
               "attributes": self.resource.array(STR_MAP)}
        return (table(SPAN_SCHEMA, cols), table(SPAN_EVENT_SCHEMA, ev),
                table(RESOURCE_SCHEMA, res))


_KIND_NAMES = pa.array(SPAN_KINDS)
_STATUS_NAMES = pa.array(STATUS_CODES)


def _names(codes: list[int], names: pa.Array) -> pa.Array:
    """OTLP enum numbers → names; numbers the enum does not have → its 0 name."""
    arr = pa.array(codes, pa.int64())
    known = pc.and_(pc.greater_equal(arr, 0), pc.less(arr, len(names)))
    return names.take(pc.if_else(known, arr, 0))


def _span_codes(cols: dict[str, Any]) -> None:
    """Kind and status names, duration and ``is_error`` of a chunk's spans, from the kind and
    status numbers the decoder collected: one vectorised pass instead of Python per span."""
    kind = _names(cols["kind"], _KIND_NAMES)
    status = _names(cols["status_code"], _STATUS_NAMES)
    start = pa.array(cols["start_time_unix_nano"], pa.uint64())
    end = pa.array(cols["end_time_unix_nano"], pa.uint64())
    cols["kind"], cols["status_code"] = kind, status
    cols["start_time_unix_nano"], cols["end_time_unix_nano"] = start, end
    cols["duration_ns"] = pc.subtract(end.cast(pa.int64()), start.cast(pa.int64()))
    http = cols["http_status_code"]
    rpc = cols["rpc_status_code"]
    cols["is_error"] = is_error_array(
        kind, status, http if isinstance(http, pa.Array) else pa.array(http, pa.int32()),
        rpc if isinstance(rpc, pa.Array) else pa.array(rpc, pa.string()))


def is_error_array(kind: pa.Array, status: pa.Array, http: pa.Array, rpc: pa.Array
                   ) -> pa.Array:
    """``semconv.is_error`` over columns (a test checks them equal on every combination):
    ERROR is an error, OK is not; with UNSET, HTTP 5xx, 4xx on CLIENT spans, a gRPC code
    other than OK on CLIENT spans and a server-error code on the others."""
    client = pc.equal(kind, "CLIENT")
    by_http = pc.or_(pc.greater_equal(http, 500),
                     pc.and_(pc.greater_equal(http, 400), client))
    by_rpc = pc.and_(pc.not_equal(rpc, "OK"),
                     pc.or_(client, pc.is_in(rpc, pa.array(sorted(GRPC_SERVER_ERRORS)))))
    unset = pc.equal(status, "UNSET")
    by_conv = pc.and_(unset, pc.or_(pc.fill_null(by_http, False), pc.fill_null(by_rpc, False)))
    return pc.or_(pc.equal(status, "ERROR"), by_conv)


def _run_column(ends: pa.Array, values: list[Any], typ: pa.DataType) -> pa.Array:
    """A full column from runs (each value repeated up to its end row)."""
    if not len(ends):
        return pa.array([], typ)
    return pc.run_end_decode(pa.RunEndEncodedArray.from_arrays(ends, pa.array(values, typ)))


def _special_keys(correlation_keys: tuple[str, ...]) -> _Special:
    """One lookup per attribute key. A key that is both promoted and a correlation key is
    promoted only."""
    special: _Special = {k: (None, i) for i, k in enumerate(correlation_keys)}
    special.update(SPAN_PROMOTED)
    return special


class SpanSink:
    """Where both decoders (protobuf messages here, OTLP/JSON dicts in otlp_json.py) put
    spans: the semantic-convention promotion, the correlation id, the typed attribute maps,
    kind/status/error and the chunk cut live here once.

    ``add`` is a closure over the current chunk's column lists (rebuilt per chunk): one call
    per span, no attribute lookups in it. It returns the rows in the chunk so far.
    """

    def __init__(self, state: DecodeState) -> None:
        self.state = state
        self.limit = state.options.chunk_records
        self.special = _special_keys(state.options.correlation_keys)
        self.out = SpanColumns()
        self.add = _adder(self.out, state, self.special)

    def take(self) -> Chunk:
        """The chunk so far (with the dead letters and warnings found); a new one begins."""
        chunk = _finish(self.out, self.state)
        self.out = SpanColumns()
        self.add = _adder(self.out, self.state, self.special)
        return chunk


def _adder(out: SpanColumns, state: DecodeState, special: _Special) -> Any:
    (c_trace, c_span, c_parent, c_state, c_flags, c_name, c_kind, c_start, c_end,
     c_status, c_msg, c_corr, c_links, c_evn) = _bind(out)
    (s_k, s_v, s_o, i_k, i_v, i_o, d_k, d_v, d_o, b_k, b_v, b_o, c_json) = out.attrs.bind()
    promoted = out.promoted
    special_keys = special.keys()
    warnings = state.warnings

    def add(s_attrs: dict[str, str], o_attrs: dict[str, Any] | None, th: str, sh: str,
            ph: str | None, trace_state: str, flags: int, name: str, k: int, code: int,
            message: str, start: int, end: int, links: list[dict[str, Any]] | None,
            events: list[Any] | None, where: Any) -> int:
        """One valid span. Its attributes come split (``split_attributes``): text values in
        ``s_attrs``, the others in ``o_attrs``; both are consumed (promoted keys are taken
        out). ``where``: a callable giving its location, for warnings. Kind, status,
        duration and the error flag are derived per chunk (``_span_codes``)."""
        # The few keys that are promoted or carry a correlation id, found by set
        # intersection (C): the per-attribute Python work is only for them.
        hits = s_attrs.keys() & special_keys
        if o_attrs:
            more = o_attrs.keys() & special_keys
            if more:
                hits |= more
        corr: str | None = None
        if hits:
            corr_r = 1 << 30
            promo: dict[str, tuple[int, Any]] = {}
            for key in hits:
                col, rank = special[key]
                src = s_attrs if key in s_attrs else o_attrs
                assert src is not None
                if col is None:
                    if rank < corr_r:
                        cv = src[key]
                        if type(cv) is list:
                            cv = cv[0] if cv else None
                        if cv is not None and cv != "":
                            corr, corr_r = str(cv), rank
                    continue
                pv = src.pop(key)  # promoted: a column, not a map entry
                old = promo.get(col)
                if old is None or rank < old[0]:  # ranks of one column differ (semconv.py)
                    promo[col] = (rank, pv)
            row = out.n
            for col, (_, pv) in promo.items():
                if pv is None:
                    continue
                if col == "http_status_code":
                    try:
                        pv = int(pv)
                        if not 0 <= pv <= 999:
                            raise ValueError
                    except (TypeError, ValueError, OverflowError):
                        warnings.append(
                            f"{where()}: http status code {pv!r} is not an HTTP status; ignored")
                        continue
                elif col == "rpc_status_code":
                    pv = grpc_code_name(pv)
                elif type(pv) is not str:
                    pv = to_text(pv)
                rows, values = promoted[col]
                rows.append(row)
                values.append(pv)
        # The typed maps: text values with two extends (C), the few others in Python.
        s_k.extend(s_attrs)
        s_v.extend(s_attrs.values())
        other = _split_typed(o_attrs, i_k, i_v, d_k, d_v, b_k, b_v) if o_attrs else None
        s_o.append(len(s_k))
        i_o.append(len(i_k))
        d_o.append(len(d_k))
        b_o.append(len(b_k))
        c_json.append(None if other is None else orjson.dumps(other).decode())
        c_trace.append(th)
        c_span.append(sh)
        c_parent.append(ph)
        c_state.append(trace_state or None)
        c_flags.append(flags)
        c_name.append(name)
        c_kind.append(k)
        c_start.append(start)
        c_end.append(end)
        c_status.append(code)
        c_msg.append(message or None)
        c_corr.append(corr)
        c_links.append(links)
        if events:
            c_evn.append(len(events))
            _add_events(out, th, sh, events)
        else:
            c_evn.append(0)
        out.n += 1
        return out.n

    return add


def split_attributes(attrs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A span's attributes (one dict, duplicates resolved) as ``add`` takes them: the text
    values, and the others (None when there are none); each in the dict's order."""
    s = {k: v for k, v in attrs.items() if type(v) is str}
    if len(s) == len(attrs):
        return s, None
    return s, {k: v for k, v in attrs.items() if type(v) is not str}


def _split_typed(attrs: dict[str, Any], i_k: list[str], i_v: list[Any], d_k: list[str],
                 d_v: list[Any], b_k: list[str], b_v: list[Any]) -> dict[str, Any] | None:
    """Non-text attributes into the typed maps' flat lists; what no typed map holds
    (arrays, key-value lists, bytes, empty values, ints beyond int64) is returned for
    ``attr_json``."""
    other: dict[str, Any] | None = None
    for key, val in attrs.items():
        t = type(val)
        if t is int:
            if -(2**63) <= val < 2**63:
                i_k.append(key)
                i_v.append(val)
                continue
            val = str(val)
        elif t is float:
            d_k.append(key)
            d_v.append(val)
            continue
        elif t is bool:
            b_k.append(key)
            b_v.append(val)
            continue
        if other is None:
            other = {}
        other[key] = val
    return other


def decode_trace_request(req: Any, state: DecodeState) -> Iterator[Chunk]:
    """Yield chunks of at most ``chunk_records`` spans from an ExportTraceServiceRequest.

    The hot loop: each protobuf field is read once (upb attribute access is the cost); what
    is done with the values is ``SpanSink``'s, shared with the OTLP/JSON decoder.
    """
    sink = SpanSink(state)
    limit = sink.limit
    add = sink.add

    for ri, rs in enumerate(req.resource_spans):
        service, res_keys, res_vals = resource_columns(rs.resource)
        for si, ss in enumerate(rs.scope_spans):
            scope = ss.scope
            scope_name, scope_version = scope.name or None, scope.version or None
            for pi, sp in enumerate(ss.spans):
                tid = sp.trace_id
                sid = sp.span_id
                pid = sp.parent_span_id
                if not (len(tid) == 16 and tid != ZERO_TRACE and len(sid) == 8
                        and sid != ZERO_SPAN and (not pid or (len(pid) == 8
                                                              and pid != ZERO_SPAN))):
                    state.reject(f"resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}]",
                                 span_ids_problem(tid, sid, pid), sp.SerializeToString(),
                                 "traces")
                    continue
                # Attributes: text values (most) and the others in two dicts; a key in
                # both (sent twice with different types) takes the exact path: one dict,
                # the last value wins in the position of the first.
                s_attrs: dict[str, Any] = {}
                o_attrs: dict[str, Any] | None = None
                for kv in sp.attributes:
                    v = kv.value
                    # Most values are non-empty strings: one read instead of two (another
                    # case of the oneof, or an empty string, reads as "").
                    sv = v.string_value
                    if sv:
                        s_attrs[kv.key] = sv
                        continue
                    w = v.WhichOneof("value")
                    if w == "string_value":
                        s_attrs[kv.key] = sv
                        continue
                    if o_attrs is None:
                        o_attrs = {}
                    if w == "int_value":
                        o_attrs[kv.key] = v.int_value
                    elif w == "double_value":
                        o_attrs[kv.key] = v.double_value
                    elif w == "bool_value":
                        o_attrs[kv.key] = v.bool_value
                    else:
                        o_attrs[kv.key] = any_value(v)
                if o_attrs and s_attrs.keys() & o_attrs.keys():
                    s_attrs, o_attrs = split_attributes(attributes_dict(sp.attributes))
                st = sp.status
                links = sp.links
                events = sp.events
                n = add(
                    s_attrs, o_attrs, tid.hex(), sid.hex(), pid.hex() if pid else None,
                    sp.trace_state, sp.flags, sp.name, sp.kind, st.code, st.message,
                    sp.start_time_unix_nano,
                    sp.end_time_unix_nano, [_link(lk) for lk in links] if links else None,
                    [(e.time_unix_nano, e.name, attributes_dict(e.attributes))
                     for e in events] if events else None,
                    lambda ri=ri, si=si, pi=pi: f"resourceSpans[{ri}].scopeSpans[{si}]"
                                                f".spans[{pi}]",
                )
                if n >= limit:
                    sink.out.close_run(ri, service, res_keys, res_vals, scope_name,
                                       scope_version)
                    yield sink.take()
                    add = sink.add
            sink.out.close_run(ri, service, res_keys, res_vals, scope_name, scope_version)
    if sink.out.n or state.dead_letters or state.warnings:
        yield sink.take()


def span_ids_problem(tid: bytes, sid: bytes, pid: bytes) -> str:
    """Why a span's ids make it invalid (it is known that they do)."""
    problem = trace_id_problem(tid) or span_id_problem(sid)
    if problem is None:
        problem = f"parent span id must be empty or 8 non-zero bytes, got {pid.hex()!r}"
    return problem


_BOUND = (
    "trace_id", "span_id", "parent_span_id", "trace_state", "flags", "name", "kind",
    "start_time_unix_nano", "end_time_unix_nano", "status_code", "status_message",
    "correlation_id", "links", "event_count",
)


def _bind(out: SpanColumns) -> tuple[list[Any], ...]:
    """The column lists the hot loop appends to, bound once per chunk."""
    return tuple(out.cols[name] for name in _BOUND)


def _finish(out: SpanColumns, state: DecodeState) -> Chunk:
    spans, events, resources = out.tables()
    dead, warnings = state.take()
    return Chunk(spans=spans, span_events=events, resources=resources, dead_letters=dead,
                 warnings=warnings)


def _link(lk: Any) -> dict[str, Any]:
    return link_row(lk.trace_id, lk.span_id, lk.trace_state, attributes_dict(lk.attributes))


def link_row(tid: bytes, sid: bytes, trace_state: str, attrs: dict[str, Any]
             ) -> dict[str, Any]:
    """One span link as the ``links`` column stores it."""
    return {
        "trace_id": tid.hex() if tid else None,
        "span_id": sid.hex() if sid else None,
        "trace_state": trace_state or None,
        "attributes": [(k, to_text(v)) for k, v in attrs.items()],
    }


def _add_events(out: SpanColumns, tid: str, sid: str,
                events: list[tuple[int, str, dict[str, Any]]]) -> None:
    ev = out.ev
    for seq, (time_ns, name, attrs) in enumerate(events):
        ev["trace_id"].append(tid)
        ev["span_id"].append(sid)
        ev["seq"].append(seq)
        ev["time_unix_nano"].append(time_ns)
        ev["name"].append(name)
        for k, v in attrs.items():
            out.ev_attrs.keys.append(k)
            out.ev_attrs.values.append(to_text(v))
        out.ev_attrs.close_row()
