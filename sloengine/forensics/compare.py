"""``sloengine compare ID1 ID2``: how two requests of the same route differ.

Spans are matched by position path — the (service, name) of every ancestor and of the span,
each with its rank among same-named siblings in time order — because span ids never repeat
across requests while the shape of a route's tree does. Reported: spans present in one story
only, the largest duration (and self-time) differences, and spans that failed in one only.

JSON (``"schema": "sloengine.compare/v1"``)::

    {"schema", "a": Side, "b": Side, "same_route": bool,
     "only_in_a": [Entry], "only_in_b": [Entry],
     "duration_diffs": [{"path", "a_span_id", "b_span_id", "a_duration_ns", "b_duration_ns",
                         "delta_ns", "a_self_ns", "b_self_ns", "self_delta_ns"}],  # |delta| desc
     "error_diffs": [{"path", "a_span_id", "b_span_id", "a_error", "b_error",
                      "a_status", "b_status"}]}
    Side = {"query", "trace_ids", "route", "duration_ns", "is_error", "spans": int}
    Entry = {"path", "span_id", "service", "name", "duration_ns", "is_error"}
"""

from __future__ import annotations

from typing import Any

from sloengine.forensics.story import Key, SpanNode, Story
from sloengine.forensics.waterfall import fmt_ns

SCHEMA = "sloengine.compare/v1"


def position_paths(story: Story) -> dict[str, SpanNode]:
    """``gateway:POST /orders#0/orders-service:INSERT orders#1`` → span."""
    paths: dict[Key, str] = {}
    out: dict[str, SpanNode] = {}
    for key, n in story.spans.items():  # display order: parents first, siblings by start
        parent = paths.get(n.tree_parent) if n.tree_parent else None
        prefix = (parent + "/") if parent is not None else ""
        base = f"{prefix}{'~' if n.edge == 'link' else ''}{n.service or '?'}:{n.name}"
        i = 0
        while f"{base}#{i}" in out:
            i += 1
        paths[key] = f"{base}#{i}"
        out[paths[key]] = n
    return out


def _route(story: Story) -> str | None:
    if story.primary_root is None:
        return None
    r = story.spans[story.primary_root]
    route = r.attrs.get("http_route")
    method = r.attrs.get("http_method")
    return f"{method} {route}" if route and method else (route or r.name)


def _side(story: Story) -> dict[str, Any]:
    root = story.spans[story.primary_root] if story.primary_root else None
    return {"query": story.query, "trace_ids": story.trace_ids, "route": _route(story),
            "duration_ns": root.duration if root else 0,
            "is_error": bool(root and root.is_error),
            "spans": sum(not n.synthetic for n in story.spans.values())}


def _entry(path: str, n: SpanNode) -> dict[str, Any]:
    return {"path": path, "span_id": n.span_id, "service": n.service, "name": n.name,
            "duration_ns": n.duration, "is_error": n.is_error}


def _status(n: SpanNode) -> str:
    code = n.attrs.get("http_status_code") or n.attrs.get("rpc_status_code")
    return f"{n.status_code} {code}" if code is not None else n.status_code


def compare(a: Story, b: Story, *, top: int = 10) -> dict[str, Any]:
    """The ``sloengine.compare/v1`` dict (see the module docstring)."""
    pa, pb = position_paths(a), position_paths(b)
    both = [p for p in pa if p in pb]
    diffs: list[dict[str, Any]] = []
    for p in both:
        x, y = pa[p], pb[p]
        diffs.append({"path": p, "a_span_id": x.span_id, "b_span_id": y.span_id,
                      "a_duration_ns": x.duration, "b_duration_ns": y.duration,
                      "delta_ns": y.duration - x.duration, "a_self_ns": x.self_ns,
                      "b_self_ns": y.self_ns, "self_delta_ns": y.self_ns - x.self_ns})
    diffs.sort(key=lambda d: (-abs(d["delta_ns"]), d["path"]))
    errors = [{"path": p, "a_span_id": pa[p].span_id, "b_span_id": pb[p].span_id,
               "a_error": pa[p].is_error, "b_error": pb[p].is_error,
               "a_status": _status(pa[p]), "b_status": _status(pb[p])}
              for p in both if pa[p].is_error != pb[p].is_error]
    return {
        "schema": SCHEMA, "a": _side(a), "b": _side(b), "same_route": _route(a) == _route(b),
        "only_in_a": [_entry(p, n) for p, n in pa.items() if p not in pb],
        "only_in_b": [_entry(p, n) for p, n in pb.items() if p not in pa],
        "duration_diffs": diffs[:top],
        "error_diffs": errors,
    }


def render_comparison(c: dict[str, Any]) -> str:
    a, b = c["a"], c["b"]
    out = [f"A {a['query']}: {a['route']} {fmt_ns(a['duration_ns'])}"
           f"{' ERROR' if a['is_error'] else ''}, {a['spans']} spans",
           f"B {b['query']}: {b['route']} {fmt_ns(b['duration_ns'])}"
           f"{' ERROR' if b['is_error'] else ''}, {b['spans']} spans"]
    if not c["same_route"]:
        out.append("warning: the two requests are not of the same route")
    for side in ("a", "b"):
        rows = c[f"only_in_{side}"]
        if rows:
            out.append(f"only in {side.upper()} ({len(rows)}):")
            out.extend(f"  {r['path']}  {fmt_ns(r['duration_ns'])}"
                       f"{'  ERROR' if r['is_error'] else ''}" for r in rows)
    if c["duration_diffs"]:
        out.append("largest duration differences (B − A):")
        out.extend(f"  {d['delta_ns'] / 1e6:+10.1f} ms  {fmt_ns(d['a_duration_ns']):>10} → "
                   f"{fmt_ns(d['b_duration_ns']):>10}  self {d['self_delta_ns'] / 1e6:+.1f} ms"
                   f"  {d['path']}" for d in c["duration_diffs"])
    if c["error_diffs"]:
        out.append("failed in one only:")
        out.extend(f"  A {e['a_status']:<12} B {e['b_status']:<12} {e['path']}"
                   for e in c["error_diffs"])
    return "\n".join(out) + "\n"
