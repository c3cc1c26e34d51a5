"""OTLP/JSON request bodies → the same columns the protobuf decoders fill.

The dicts orjson loaded are walked directly (json_walk.py reads the values by the proto3
JSON mapping and the OTLP rules: hex ids, OTLP-NOTES.md §1) and each record goes to the
sink the protobuf decoder uses (``SpanSink``, ``LogColumns.add``, ``add_point``), so
promotion, correlation ids, typed attributes and chunking are one code. A bad record (a
wrong type, a bad id) becomes one dead letter at its JSON path (``line N: resourceSpans[i]
.scopeSpans[j].spans[k]``) while its siblings land; a bad resource or scope rejects what it
holds. ``JsonDecoder`` keeps its columns across documents, so the Collector's JSON Lines (one
request per line) become chunks of exactly ``chunk_records`` records.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from google.protobuf.json_format import ParseDict, ParseError
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from sloengine.ingest import json_walk as jw
from sloengine.ingest.anyvalue import resource_attr_columns
from sloengine.ingest.context import DecodeState
from sloengine.ingest.json_metrics import MetricWalker
from sloengine.ingest.json_walk import BadRecord
from sloengine.ingest.logs import LogColumns, body_text, finish_logs, log_ids
from sloengine.ingest.traces import (
    SpanSink,
    link_row,
    span_ids_problem,
    split_attributes,
)
from sloengine.model import Chunk

_SPAN = jw.aliases(trace_pb2.Span.DESCRIPTOR)
_EVENT = jw.aliases(trace_pb2.Span.Event.DESCRIPTOR)
_LINK = jw.aliases(trace_pb2.Span.Link.DESCRIPTOR)
_STATUS = jw.aliases(trace_pb2.Status.DESCRIPTOR)
_LOG = jw.aliases(logs_pb2.LogRecord.DESCRIPTOR)
_RESOURCE = jw.aliases(resource_pb2.Resource.DESCRIPTOR)
_SCOPE = jw.aliases(common_pb2.InstrumentationScope.DESCRIPTOR)
_KINDS = jw.enum_names(trace_pb2.Span.SpanKind.DESCRIPTOR)
_CODES = jw.enum_names(trace_pb2.Status.StatusCode.DESCRIPTOR)
_SEVERITY = jw.enum_names(logs_pb2.SeverityNumber.DESCRIPTOR)
#: (resource list, scope list, record list) keys of each signal, both spellings.
_LEVELS = {
    "traces": (("resourceSpans", "resource_spans"), ("scopeSpans", "scope_spans"),
               ("spans", "spans"), "scope"),
    "logs": (("resourceLogs", "resource_logs"), ("scopeLogs", "scope_logs"),
             ("logRecords", "log_records"), "scope"),
    "metrics": (("resourceMetrics", "resource_metrics"), ("scopeMetrics", "scope_metrics"),
                ("metrics", "metrics"), "scope"),
}


def _get(d: dict[str, Any], names: tuple[str, str]) -> Any:
    v = d.get(names[0])
    return d.get(names[1]) if v is None else v


def _raw(obj: Any) -> bytes:
    return orjson.dumps(obj)


class JsonDecoder:
    """OTLP/JSON documents in, chunks out; columns are kept across documents."""

    def __init__(self, state: DecodeState) -> None:
        self.state = state
        self.limit = state.options.chunk_records
        self.spans = SpanSink(state)
        self.logs = LogColumns()
        self.corr_rank = {k: i for i, k in enumerate(state.options.correlation_keys)}
        self.metrics = MetricWalker(state)
        #: resources seen so far: the key of each resource's run in the span columns
        self.resources = 0

    def add(self, doc: dict[str, Any], signal: str, where: str = "") -> Iterator[Chunk]:
        """The chunks that fill up while this request is read (usually none)."""
        res_key, scope_key, rec_key, _ = _LEVELS[signal]
        state = self.state
        for ri, rs in enumerate(_list(doc, res_key, where, state, signal)):
            loc_r = f"{where}{res_key[0]}[{ri}]"
            try:
                if type(rs) is not dict:
                    raise BadRecord("expected a JSON object")
                service, res_keys, res_vals = _resource(rs.get("resource"), "resource")
                jw.text(rs.get("schemaUrl", rs.get("schema_url")), "schemaUrl")
            except BadRecord as exc:
                state.reject(loc_r, str(exc), _raw(rs), signal)
                continue
            self.resources += 1
            for si, ss in enumerate(_list(rs, scope_key, loc_r + ".", state, signal)):
                loc_s = f"{loc_r}.{scope_key[0]}[{si}]"
                try:
                    if type(ss) is not dict:
                        raise BadRecord("expected a JSON object")
                    scope_name, scope_version = _scope(ss.get("scope"))
                    jw.text(ss.get("schemaUrl", ss.get("schema_url")), "schemaUrl")
                except BadRecord as exc:
                    state.reject(loc_s, str(exc), _raw(ss), signal)
                    continue
                records = _list(ss, rec_key, loc_s + ".", state, signal)
                if signal == "traces":
                    yield from self._spans(records, f"{loc_s}.spans", service, res_keys,
                                           res_vals, scope_name, scope_version)
                elif signal == "logs":
                    yield from self._logs(records, f"{loc_s}.logRecords", service, res_keys,
                                          res_vals, scope_name)
                else:
                    yield from self.metrics.walk(records, f"{loc_s}.metrics", service,
                                                 res_keys, res_vals, scope_name)

    def finish(self) -> Iterator[Chunk]:
        """What is left (and the dead letters and warnings not yet yielded)."""
        state = self.state
        if self.spans.out.n:
            yield self.spans.take()
        if self.logs.n:
            yield finish_logs(self.logs, state)
            self.logs = LogColumns()
        yield from self.metrics.finish()
        if state.dead_letters or state.warnings:
            dead, warnings = state.take()
            yield Chunk(dead_letters=dead, warnings=warnings)

    # -- traces ------------------------------------------------------------------------------
    def _spans(self, spans: list[Any], loc: str, service: str | None, res_keys: list[str],
               res_vals: list[str], scope_name: str | None, scope_version: str | None
               ) -> Iterator[Chunk]:
        sink, state, limit, run = self.spans, self.state, self.limit, self.resources
        add = sink.add
        for pi, sp in enumerate(spans):
            try:
                d = jw.canon(sp, _SPAN, "span")
                tid = jw.hex_id(d.get("traceId"), "traceId", 16)
                sid = jw.hex_id(d.get("spanId"), "spanId", 8)
                pid = jw.hex_id(d.get("parentSpanId"), "parentSpanId", 8)
                if not (len(tid) == 16 and any(tid) and len(sid) == 8 and any(sid)
                        and (not pid or any(pid))):
                    raise BadRecord(span_ids_problem(tid, sid, pid))
                attrs = jw.attributes(d.get("attributes"), "attributes")
                st = d.get("status")
                if st is None:
                    code, message = 0, ""
                else:
                    st = jw.canon(st, _STATUS, "status")
                    code = jw.enum(st.get("code"), _CODES, "status.code")
                    message = jw.text(st.get("message"), "status.message")
                links = [_link(lk, f"links[{i}]")
                         for i, lk in enumerate(jw.items(d.get("links"), "links"))]
                events = [_event(e, f"events[{i}]")
                          for i, e in enumerate(jw.items(d.get("events"), "events"))]
                for f in ("droppedAttributesCount", "droppedEventsCount", "droppedLinksCount"):
                    jw.u32(d.get(f), f)
                row = (
                    *split_attributes(attrs), tid.hex(), sid.hex(), pid.hex() if pid else None,
                    jw.text(d.get("traceState"), "traceState"),
                    jw.u32(d.get("flags"), "flags"), jw.text(d.get("name"), "name"),
                    jw.enum(d.get("kind"), _KINDS, "kind"), code, message,
                    jw.u64(d.get("startTimeUnixNano"), "startTimeUnixNano"),
                    jw.u64(d.get("endTimeUnixNano"), "endTimeUnixNano"),
                    links or None, events or None,
                )
            except BadRecord as exc:
                state.reject(f"{loc}[{pi}]", str(exc), _raw(sp), "traces")
                continue
            if add(*row, lambda pi=pi: f"{loc}[{pi}]") >= limit:
                sink.out.close_run(run, service, res_keys, res_vals, scope_name, scope_version)
                yield sink.take()
                add = sink.add
        sink.out.close_run(run, service, res_keys, res_vals, scope_name, scope_version)

    # -- logs --------------------------------------------------------------------------------
    def _logs(self, records: list[Any], loc: str, service: str | None, res_keys: list[str],
              res_vals: list[str], scope: str | None) -> Iterator[Chunk]:
        state = self.state
        for li, lr in enumerate(records):
            where = f"{loc}[{li}]"
            try:
                d = jw.canon(lr, _LOG, "log record")
                time_ns = jw.u64(d.get("timeUnixNano"), "timeUnixNano")
                observed = jw.u64(d.get("observedTimeUnixNano"), "observedTimeUnixNano")
                severity = jw.enum(d.get("severityNumber"), _SEVERITY, "severityNumber")
                body = body_text(jw.any_value(d.get("body"), "body"))
                attrs = jw.attributes(d.get("attributes"), "attributes")
                severity_text = jw.text(d.get("severityText"), "severityText")
                event_name = jw.text(d.get("eventName"), "eventName")
                jw.u32(d.get("droppedAttributesCount"), "droppedAttributesCount")
                jw.u32(d.get("flags"), "flags")
            except BadRecord as exc:
                state.reject(where, str(exc), _raw(lr), "logs")
                continue
            try:
                tid_b = jw.hex_id(d.get("traceId"), "traceId", 16)
                sid_b = jw.hex_id(d.get("spanId"), "spanId", 8)
            except BadRecord as exc:  # bad ids on a log record: kept, not correlated
                state.warnings.append(f"{where}: {exc}; record kept as not correlated")
                tid_b = sid_b = b""
            tid, sid = log_ids(tid_b, sid_b, state, where)
            self.logs.add(
                time_ns=time_ns or observed, observed_ns=observed, severity_number=severity,
                severity_text=severity_text or None, body=body, event_name=event_name or None,
                trace_id=tid, span_id=sid, service=service, attrs=attrs, res_keys=res_keys,
                res_vals=res_vals, scope=scope, source_kind="otlp",
                correlation_keys=self.corr_rank)
            if self.logs.n >= self.limit:
                yield finish_logs(self.logs, state)
                self.logs = LogColumns()


def _resource(r: Any, path: str) -> tuple[str | None, list[str], list[str]]:
    if r is None:
        return resource_attr_columns({})
    d = jw.canon(r, _RESOURCE, path)
    attrs = jw.attributes(d.get("attributes"), f"{path}.attributes")
    jw.u32(d.get("droppedAttributesCount"), f"{path}.droppedAttributesCount")
    if d.get("entityRefs") is not None:  # not stored: validated as ParseDict would
        try:
            ParseDict({"entityRefs": d["entityRefs"]}, resource_pb2.Resource(),
                      ignore_unknown_fields=True)
        except (ParseError, TypeError, ValueError, AttributeError) as exc:
            raise BadRecord(f"{path}: {str(exc).splitlines()[0]}") from None
    return resource_attr_columns(attrs)


def _scope(s: Any) -> tuple[str | None, str | None]:
    if s is None:
        return None, None
    d = jw.canon(s, _SCOPE, "scope")
    jw.attributes(d.get("attributes"), "scope.attributes")
    jw.u32(d.get("droppedAttributesCount"), "scope.droppedAttributesCount")
    return (jw.text(d.get("name"), "scope.name") or None,
            jw.text(d.get("version"), "scope.version") or None)


def _link(lk: Any, path: str) -> dict[str, Any]:
    d = jw.canon(lk, _LINK, path)
    tid = jw.hex_id(d.get("traceId"), f"{path}.traceId", 16)
    sid = jw.hex_id(d.get("spanId"), f"{path}.spanId", 8)
    jw.u32(d.get("droppedAttributesCount"), f"{path}.droppedAttributesCount")
    jw.u32(d.get("flags"), f"{path}.flags")
    return link_row(tid, sid, jw.text(d.get("traceState"), f"{path}.traceState"),
                    jw.attributes(d.get("attributes"), f"{path}.attributes"))


def _event(e: Any, path: str) -> tuple[int, str, dict[str, Any]]:
    d = jw.canon(e, _EVENT, path)
    jw.u32(d.get("droppedAttributesCount"), f"{path}.droppedAttributesCount")
    return (jw.u64(d.get("timeUnixNano"), f"{path}.timeUnixNano"),
            jw.text(d.get("name"), f"{path}.name"),
            jw.attributes(d.get("attributes"), f"{path}.attributes"))


def _list(obj: Any, key: tuple[str, str], where: str, state: DecodeState, signal: str
          ) -> list[Any]:
    """A level's list (resourceSpans, scopeSpans, spans, ...); not a list → one dead letter."""
    if type(obj) is not dict:
        return []
    value = _get(obj, key)
    if value is None:
        return []
    if type(value) is not list:
        state.reject(f"{where}{key[0]}", f"{where}{key[0]} must be a list", _raw(value),
                     signal)
        return []
    return value


def decode_json_doc(doc: dict[str, Any], signal: str, state: DecodeState, where: str = ""
                    ) -> Iterator[Chunk]:
    """One OTLP/JSON request body (a dict) → chunks."""
    dec = JsonDecoder(state)
    yield from dec.add(doc, signal, where)
    yield from dec.finish()
