"""Clock skew: a child that starts before its parent or ends after it, measured on another
host's clock.

Flagged with the amounts, never silently moved. With ``adjust_skew`` the child is shifted the
way Jaeger's clock-skew adjuster does it (jaeger/model/adjuster/clockskew.go): the child is
centred in its parent (the network delay assumed equal both ways), its same-host descendants
inherit the shift, and the shift is reported. A same-host child that ends after its parent is
not skew (one clock): it is async work and is recorded as ``outlives_parent_ns``.
"""

from __future__ import annotations

from sloengine.forensics.story import Skew, SpanNode, Story
from sloengine.forensics.tree import bounds

NS_PER_MS = 1_000_000


def same_clock(a: SpanNode, b: SpanNode) -> bool:
    """Same host (resource ``host.name``); without hosts, the same service."""
    if a.host and b.host:
        return a.host == b.host
    return a.service == b.service


def assess_skew(story: Story, *, adjust: bool = False) -> None:
    """Flag (and with ``adjust`` shift) children outside their parents, top-down."""
    for n in story.spans.values():  # display order: every parent before its children
        if n.edge != "parent" or n.tree_parent is None:
            continue
        p = story.spans[n.tree_parent]
        if same_clock(n, p):
            if adjust and p.shift_ns:
                _shift(n, p.shift_ns)
            n.outlives_parent_ns = max(0, n.end - p.end)
            continue
        before = max(0, p.start - n.start)
        after = max(0, n.end - p.end)
        if not before and not after:
            continue
        estimate = None
        if n.duration <= p.duration:
            estimate = n.start - (p.start + (p.duration - n.duration) // 2)
        n.skew = skew = Skew(before, after, estimate)
        if adjust and estimate is not None:
            _shift(n, -estimate)
            skew.applied_shift_ns = -estimate
        story.warnings.append(_describe(n, p, skew))
    if adjust:
        story.start, story.end = bounds(list(story.spans.values()), story.logs)


def _shift(n: SpanNode, delta: int) -> None:
    n.start += delta
    n.end += delta
    n.shift_ns = delta
    for e in n.events:
        e.time += delta
    for lg in n.logs:
        lg.time += delta
        lg.shift_ns = delta


def _ms(ns: int) -> str:
    return f"{ns / NS_PER_MS:.1f} ms"


def _describe(n: SpanNode, p: SpanNode, skew: Skew) -> str:
    where = []
    if skew.start_before_parent_ns:
        where.append(f"starts {_ms(skew.start_before_parent_ns)} before")
    if skew.end_after_parent_ns:
        where.append(f"ends {_ms(skew.end_after_parent_ns)} after")
    text = (f"clock skew: {n.service or '?'} span {n.span_id} ({n.name}) "
            f"{' and '.join(where)} its parent {p.span_id} on {p.service or '?'}")
    if skew.estimated_offset_ns is None:
        return text + "; it is longer than its parent, so no offset can be estimated"
    off = skew.estimated_offset_ns
    text += f"; its clock looks {_ms(abs(off))} {'ahead' if off >= 0 else 'behind'}"
    if skew.applied_shift_ns:
        text += f"; shifted by {_ms(skew.applied_shift_ns)} (adjust_skew)"
    return text
