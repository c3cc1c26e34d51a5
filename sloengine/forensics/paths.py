"""Self time, the critical path and the error origin of a story.

* Self time: a span's duration minus the union of its synchronous children's intervals,
  clipped to the span (overlapping parallel children are not counted twice).
* Critical path: the walk-back of Jaeger's critical-path view
  (jaeger-ui ``TracePage/CriticalPath``): from the root take the child that ends last, then
  from that child's start the child that ended before it, and so on, recursing into each;
  children are clipped to their parent first (skewed parts fall away). Link edges (a
  consumer reached from its producer) are asynchronous: shown, never on the path.
* Error origin: the deepest failing span whose children all succeeded; among several, one
  whose failure reached the story's root through failing parents wins (that is what the
  caller saw), then the deepest, then the earliest.
"""

from __future__ import annotations

from sloengine.forensics.story import ErrorOrigin, Key, LogLine, SpanNode, Story

NS_PER_S = 1_000_000_000


def self_times(story: Story) -> None:
    for n in story.spans.values():
        n.self_ns = n.duration - _covered(n, story.children(n.key, sync_only=True))


def _covered(n: SpanNode, kids: list[SpanNode]) -> int:
    spans = sorted((max(c.start, n.start), min(c.end, n.end)) for c in kids)
    total, cur_lo, cur_hi = 0, None, None
    for lo, hi in spans:
        if hi <= lo:
            continue
        if cur_hi is None or cur_lo is None or lo > cur_hi:
            if cur_hi is not None and cur_lo is not None:
                total += cur_hi - cur_lo
            cur_lo, cur_hi = lo, hi
        else:
            cur_hi = max(cur_hi, hi)
    if cur_hi is not None and cur_lo is not None:
        total += cur_hi - cur_lo
    return total


def critical_path(story: Story) -> None:
    """Fill ``critical_sections``, ``critical_path`` and each span's ``critical_ns``."""
    root = story.primary_root
    if root is None:
        return
    sections: list[tuple[Key, int, int]] = []
    on_path: set[Key] = set()
    r = story.spans[root]
    # an explicit stack instead of recursion: (span, clipped start, clipped end, time left)
    stack: list[tuple[Key, int, int, int, list[tuple[int, int, Key]]]] = []

    def enter(key: Key, lo: int, hi: int) -> None:
        on_path.add(key)
        kids = []
        for c in story.children(key, sync_only=True):
            s, e = max(c.start, lo), min(c.end, hi)
            if e >= s and c.end >= lo and c.start <= hi:
                kids.append((s, e, c.key))
        stack.append((key, lo, hi, hi, kids))

    enter(root, r.start, r.end)
    while stack:
        key, lo, hi, t, kids = stack.pop()
        cands = [k for k in kids if k[1] <= t]
        if not cands:
            if t > lo:
                sections.append((key, lo, t))
            continue
        s, e, ck = max(cands, key=lambda k: (k[1], k[0], k[2]))
        if t > e:
            sections.append((key, e, t))
        rest = [k for k in kids if k[2] != ck]
        stack.append((key, lo, hi, s, rest))
        enter(ck, s, e)
    sections.reverse()
    story.critical_sections = sections
    for key, a, b in sections:
        story.spans[key].critical_ns += b - a
    for key in on_path:
        story.spans[key].critical = True
    story.critical_path = [k for k in story.spans if k in on_path]


def error_origin(story: Story, *, log_window_s: float = 5.0) -> None:
    errors = [n for n in story.spans.values() if n.is_error and not n.synthetic]
    leaves = [n for n in errors
              if not any(c.is_error for c in story.children(n.key, sync_only=True))]
    if not leaves:
        return
    ranked = sorted(leaves, key=lambda n: _rank(story, n))
    best = ranked[0]
    best.error_origin = True
    window = int(log_window_s * NS_PER_S)
    logs: list[LogLine] = [
        lg for lg in story.logs
        if lg.key == best.key
        or (lg.trace_id == best.trace_id and best.start - window <= lg.time <= best.end + window)
    ]
    story.error_origin = ErrorOrigin(best.key, [n.key for n in ranked], logs,
                                     _failing_chain(story, best) == story.primary_root)


def _failing_chain(story: Story, n: SpanNode) -> Key | None:
    """The top of the unbroken chain of failing synchronous parents above ``n``, or None
    when a parent on the way up succeeded."""
    cur = n
    while cur.edge == "parent" and cur.tree_parent is not None:
        cur = story.spans[cur.tree_parent]
        if not cur.is_error:
            return None
    return cur.key if cur.edge == "root" else None


def _rank(story: Story, n: SpanNode) -> tuple[int, int, int, str, str]:
    top = _failing_chain(story, n)
    reach = 0 if top is not None and top == story.primary_root else 1 if top else 2
    return (reach, -n.depth, n.start, n.trace_id, n.span_id)
