"""Gathered rows → a tree: parent edges, link edges and synthetic stand-ins for lost parents.

Rules (OTLP-NOTES.md §3 and "Messaging"):

* an empty parent id is a root; a parent id that is not in the trace makes the span an
  **orphan**: it is kept, flagged and hung under a synthetic node that stands for the lost
  parent ("trace may be incomplete") — never dropped, never guessed into place;
* a root whose links point at a span of the story (a consumer and its producer) hangs under
  that span by a **link** edge: shown with its request, but asynchronous, so it never counts
  towards the producer's self time or the critical path;
* children are ordered by start time, then name and id, so the same data gives the same tree.
"""

from __future__ import annotations

from typing import Any

from sloengine.forensics.gather import Gathered
from sloengine.forensics.story import SEMCONV, Edge, Key, LogLine, SpanEvent, SpanNode, Story

MISSING_NAME = "(missing span)"


def build_tree(g: Gathered, *, adjust_skew: bool = False) -> Story:
    nodes = {(r["trace_id"], r["span_id"]): _node(r) for r in g.spans}
    warnings = list(g.notes)
    synthetic: dict[Key, SpanNode] = {}
    for n in sorted(nodes.values(), key=_order):
        if not n.parent_span_id:
            continue
        pk = (n.trace_id, n.parent_span_id)
        if pk in nodes and pk not in synthetic:
            _attach(nodes, n, pk, "parent")
            continue
        stand_in = synthetic.get(pk)
        if stand_in is None:
            stand_in = synthetic[pk] = _missing(pk, n)
            nodes[pk] = stand_in
        stand_in.start = min(stand_in.start, n.start)
        stand_in.end = max(stand_in.end, n.end)
        _attach(nodes, n, pk, "orphan")
    for pk, stand_in in synthetic.items():
        warnings.append(f"trace may be incomplete: {len(stand_in.children)} span(s) of trace "
                        f"{pk[0]} point at parent {pk[1]}, which was never received")
    for n in sorted(nodes.values(), key=_order):
        if n.edge != "root" or n.synthetic:
            continue
        for target in n.links:
            if target in nodes and not _descends(nodes, target, n.key):
                _attach(nodes, n, target, "link")
                break
    logs = _attach_logs_events(g, nodes)
    roots = sorted((k for k, n in nodes.items() if n.tree_parent is None),
                   key=lambda k: _order(nodes[k]))
    ordered: dict[Key, SpanNode] = {}
    for r in roots:
        _walk(nodes, r, 0, ordered)
    while len(ordered) < len(nodes):  # parent ids that form a cycle: cut at the earliest
        cut = min((n for k, n in nodes.items() if k not in ordered), key=_order)
        assert cut.tree_parent is not None
        nodes[cut.tree_parent].children.remove(cut.key)
        cut.tree_parent, cut.edge = None, "root"
        warnings.append(f"span {cut.span_id} of trace {cut.trace_id} is its own ancestor "
                        "(parent ids form a cycle); shown as a root")
        roots.append(cut.key)
        _walk(nodes, cut.key, 0, ordered)
    real = [k for k in roots if not nodes[k].synthetic]
    primary = (real or roots)[0] if roots else None
    lo, hi = bounds(list(ordered.values()), logs)
    return Story(
        query=g.query, matched_as=g.matched_as, trace_ids=g.trace_ids,
        correlation_ids=g.correlation_ids, truncated=g.truncated, max_traces=g.max_traces,
        adjust_skew=adjust_skew, spans=ordered, roots=roots, primary_root=primary,
        logs=logs, start=lo, end=hi,
        warnings=warnings,
    )


def bounds(spans: list[SpanNode], logs: list[LogLine]) -> tuple[int, int]:
    """The story's time range: its spans' (logs only when there is no span)."""
    if spans:
        return min(n.start for n in spans), max(n.end for n in spans)
    times = [lg.time for lg in logs]
    return min(times, default=0), max(times, default=0)


def _order(n: SpanNode) -> tuple[int, str, str, str]:
    return (n.start, n.name, n.trace_id, n.span_id)


def _node(r: dict[str, Any]) -> SpanNode:
    return SpanNode(
        trace_id=r["trace_id"], span_id=r["span_id"], parent_span_id=r["parent_span_id"] or None,
        name=r["name"], kind=r["kind"], service=r["service"], host=r["host"],
        start=int(r["start"]), end=int(r["end"]), status_code=r["status_code"],
        status_message=r["status_message"] or None, is_error=bool(r["is_error"]),
        correlation_id=r["correlation_id"], links=list(r["links"]),
        attrs={k: r[k] for k in SEMCONV if r.get(k) is not None},
    )


def _missing(pk: Key, first_child: SpanNode) -> SpanNode:
    return SpanNode(
        trace_id=pk[0], span_id=pk[1], parent_span_id=None, name=MISSING_NAME,
        kind="UNSPECIFIED", service=None, host=None, start=first_child.start,
        end=first_child.end, status_code="UNSET", status_message=None, is_error=False,
        correlation_id=None, links=[], synthetic=True,
    )


def _attach(nodes: dict[Key, SpanNode], child: SpanNode, parent: Key, edge: Edge) -> None:
    child.tree_parent = parent
    child.edge = edge
    nodes[parent].children.append(child.key)


def _descends(nodes: dict[Key, SpanNode], key: Key, ancestor: Key) -> bool:
    """Whether ``key`` lies in the subtree of ``ancestor`` (a link edge would make a cycle)."""
    seen: set[Key] = set()
    cur: Key | None = key
    while cur is not None and cur not in seen:
        if cur == ancestor:
            return True
        seen.add(cur)
        cur = nodes[cur].tree_parent
    return False


def _walk(nodes: dict[Key, SpanNode], key: Key, depth: int, out: dict[Key, SpanNode]) -> None:
    stack = [(key, depth)]
    while stack:
        k, d = stack.pop()
        n = nodes[k]
        n.depth = d
        out[k] = n
        n.children.sort(key=lambda c: _order(nodes[c]))
        stack.extend((c, d + 1) for c in reversed(n.children))


def _attach_logs_events(g: Gathered, nodes: dict[Key, SpanNode]) -> list[LogLine]:
    """Events onto their spans; log lines of the story, each tied to its span if present."""
    for e in g.events:
        n = nodes.get((e["trace_id"], e["span_id"]))
        if n is not None:
            n.events.append(SpanEvent(int(e["time"]), e["name"], dict(e["attributes"] or {})))
    out = []
    for r in g.logs:
        lg = LogLine(time=int(r["time"]), **{k: r[k] for k in _LOG_COLS})
        if lg.trace_id and lg.span_id and (lg.trace_id, lg.span_id) in nodes:
            lg.key = (lg.trace_id, lg.span_id)
            nodes[lg.key].logs.append(lg)
        out.append(lg)
    return out


_LOG_COLS = ("severity_number", "severity_text", "body", "service", "trace_id", "span_id",
             "correlation_id", "source_kind", "http_status_code", "record_id")
