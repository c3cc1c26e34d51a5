"""The ``--json`` contract of ``sloengine trace``: ``"schema": "sloengine.trace/v1"``.

Versioned: fields are only added within v1; renaming or removing one makes v2. Absolute times
come twice, as ISO 8601 UTC with nanoseconds and as a decimal string of unix nanoseconds
(64-bit integers are strings in JSON, as in OTLP/JSON, OTLP-NOTES.md §5); durations and
offsets (from the story's start) are integer nanoseconds. Shape::

    {
      "schema": "sloengine.trace/v1",
      "query": {"id": str, "matched_as": ["trace_id" | "span_id" | "correlation_id", ...]},
      "trace_ids": [str], "correlation_ids": [str],
      "complete": bool,        # no lost parent, not truncated
      "truncated": bool, "max_traces": int, "adjust_skew": bool,
      "start": iso, "start_unix_nano": str, "duration_ns": int,
      "root": {"trace_id": str, "span_id": str} | null,   # the request the story is about
      "counts": {"traces", "spans", "logs", "errors", "orphans", "skewed": int},
      "spans": [Span],         # display order: depth-first, children by start time
      "critical_path": [span_id],                         # root first, display order
      "critical_sections": [{"span_id", "offset_ns", "duration_ns"}],  # in time order
      "error_origin": null | {"trace_id", "span_id", "service", "name", "status_message",
                              "http_status_code", "propagated_to_root": bool,
                              "candidates": [span_id], "logs": [Log]},
      "logs": [Log],           # by time
      "warnings": [str]        # incomplete traces, clock skew, truncation
    }
    Span = {
      "trace_id", "span_id", "parent_span_id": str | null,   # as recorded
      "tree_parent": {"trace_id", "span_id"} | null,          # the node it hangs under
      "edge": "root" | "parent" | "link" | "orphan", "depth": int,
      "synthetic": bool,       # stand-in for a parent that was never received
      "service", "host", "name", "kind", "status_code", "status_message", "is_error",
      "correlation_id", "attributes": {semantic-convention columns that are set},
      "start": iso, "start_unix_nano": str, "offset_ns", "duration_ns", "self_ns": int,
      "critical": bool, "critical_ns": int, "error_origin": bool,
      "markers": ["error", "critical", "origin", "link", "orphan", "synthetic", "skew"],
      "links": [{"trace_id", "span_id", "in_story": bool}],
      "skew": null | {"start_before_parent_ns", "end_after_parent_ns",
                      "estimated_offset_ns": int | null, "applied_shift_ns"},
      "outlives_parent_ns": int,                 # same clock, ends after its parent
      "events": [{"name", "offset_ns", "attributes": {str: str}}],
      "logs": [int]            # positions in the top-level "logs" list
    }
    Log = {"time": iso, "time_unix_nano": str, "offset_ns": int, "severity_number",
           "severity_text", "body", "service", "source_kind": "otlp" | "accesslog",
           "trace_id", "span_id", "correlation_id", "http_status_code",
           "attached": bool,       # tied to a span of the story (listed in its "logs")
           "shift_ns": int}        # moved with its span by adjust_skew
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sloengine.forensics.story import Key, LogLine, SpanNode, Story

SCHEMA = "sloengine.trace/v1"
_NS = 1_000_000_000


def iso_ns(ns: int) -> str:
    """``2026-11-21T14:10:29.236473000Z``: ISO 8601 UTC keeping every nanosecond."""
    sec, frac = divmod(ns, _NS)
    base = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}Z"


def markers(n: SpanNode) -> list[str]:
    flags = [("error", n.is_error), ("critical", n.critical), ("origin", n.error_origin),
             ("link", n.edge == "link"), ("orphan", n.edge == "orphan"),
             ("synthetic", n.synthetic), ("skew", n.skew is not None)]
    return [name for name, on in flags if on]


def story_json(story: Story) -> dict[str, Any]:
    """The v1 shape (see the module docstring)."""
    log_pos = {id(lg): i for i, lg in enumerate(story.logs)}
    spans = list(story.spans.values())
    root = story.spans[story.primary_root] if story.primary_root else None
    origin = story.error_origin
    o = story.spans[origin.key] if origin else None
    return {
        "schema": SCHEMA,
        "query": {"id": story.query, "matched_as": story.matched_as},
        "trace_ids": story.trace_ids,
        "correlation_ids": story.correlation_ids,
        "complete": story.complete,
        "truncated": story.truncated,
        "max_traces": story.max_traces,
        "adjust_skew": story.adjust_skew,
        "start": iso_ns(story.start),
        "start_unix_nano": str(story.start),
        "duration_ns": story.duration,
        "root": _key(root.key) if root else None,
        "counts": {
            "traces": len(story.trace_ids), "spans": sum(not n.synthetic for n in spans),
            "logs": len(story.logs), "errors": sum(n.is_error for n in spans),
            "orphans": sum(n.orphan for n in spans),
            "skewed": sum(n.skew is not None for n in spans),
        },
        "spans": [_span(story, n, log_pos) for n in spans],
        "critical_path": [k[1] for k in story.critical_path],
        "critical_sections": [{"span_id": k[1], "offset_ns": a - story.start,
                               "duration_ns": b - a} for k, a, b in story.critical_sections],
        "error_origin": None if origin is None or o is None else {
            "trace_id": o.trace_id, "span_id": o.span_id, "service": o.service,
            "name": o.name, "status_message": o.status_message,
            "http_status_code": o.attrs.get("http_status_code"),
            "propagated_to_root": origin.propagated_to_root,
            "candidates": [k[1] for k in origin.candidates],
            "logs": [_log(story, lg) for lg in origin.logs],
        },
        "logs": [_log(story, lg) for lg in story.logs],
        "warnings": story.warnings,
    }


def _key(k: Key) -> dict[str, str]:
    return {"trace_id": k[0], "span_id": k[1]}


def _span(story: Story, n: SpanNode, log_pos: dict[int, int]) -> dict[str, Any]:
    sk = n.skew
    return {
        "trace_id": n.trace_id, "span_id": n.span_id, "parent_span_id": n.parent_span_id,
        "tree_parent": _key(n.tree_parent) if n.tree_parent else None,
        "edge": n.edge, "depth": n.depth, "synthetic": n.synthetic,
        "service": n.service, "host": n.host, "name": n.name, "kind": n.kind,
        "status_code": n.status_code, "status_message": n.status_message,
        "is_error": n.is_error, "correlation_id": n.correlation_id,
        "attributes": dict(n.attrs),
        "start": iso_ns(n.start), "start_unix_nano": str(n.start),
        "offset_ns": n.start - story.start, "duration_ns": n.duration, "self_ns": n.self_ns,
        "critical": n.critical, "critical_ns": n.critical_ns, "error_origin": n.error_origin,
        "markers": markers(n),
        "links": [{**_key(k), "in_story": k in story.spans} for k in n.links],
        "skew": None if sk is None else {
            "start_before_parent_ns": sk.start_before_parent_ns,
            "end_after_parent_ns": sk.end_after_parent_ns,
            "estimated_offset_ns": sk.estimated_offset_ns,
            "applied_shift_ns": sk.applied_shift_ns,
        },
        "outlives_parent_ns": n.outlives_parent_ns,
        "events": [{"name": e.name, "offset_ns": e.time - story.start,
                    "attributes": e.attributes} for e in n.events],
        "logs": [log_pos[id(lg)] for lg in n.logs],
    }


def _log(story: Story, lg: LogLine) -> dict[str, Any]:
    return {
        "time": iso_ns(lg.time), "time_unix_nano": str(lg.time),
        "offset_ns": lg.time - story.start, "severity_number": lg.severity_number,
        "severity_text": lg.severity_text, "body": lg.body, "service": lg.service,
        "source_kind": lg.source_kind, "trace_id": lg.trace_id, "span_id": lg.span_id,
        "correlation_id": lg.correlation_id, "http_status_code": lg.http_status_code,
        "attached": lg.key is not None, "shift_ns": lg.shift_ns,
    }
