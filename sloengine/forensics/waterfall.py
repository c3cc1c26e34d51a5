"""``sloengine trace --tree``: a terminal waterfall of a story.

One line per span — markers, offset, duration, self time, the tree, and a bar placed on the
story's time axis — with its log lines under it, then the critical path, the error origin
and the warnings. Plain text (no colour codes), so it pipes and diffs well.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sloengine.forensics.story import Key, LogLine, SpanNode, Story

BAR = 40
MAX_LABEL = 72
MAX_BODY = 110
LEGEND = ("markers: ! error  * critical path  # error origin  > reached by a span link  "
          "? orphan / missing parent  ~ clock skew")


def fmt_ns(ns: int) -> str:
    if abs(ns) < 1_000_000_000:
        return f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e9:.2f} s"


def _clock(ns: int) -> str:
    t = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    return f"{t:%H:%M:%S}.{ns % 1_000_000_000 // 1_000_000:03d}"


def span_markers(n: SpanNode) -> str:
    return "".join(ch for ch, on in (
        ("!", n.is_error), ("*", n.critical), ("#", n.error_origin), (">", n.edge == "link"),
        ("?", n.edge == "orphan" or n.synthetic), ("~", n.skew is not None)) if on)


def label(n: SpanNode) -> str:
    if n.synthetic:
        return f"{n.name} {n.span_id} — trace may be incomplete"
    status = n.attrs.get("http_status_code") or n.attrs.get("rpc_status_code")
    extra = f" {status}" if status is not None else ""
    return f"{n.service or '?'}: {n.name} [{n.kind.lower()}{extra}]"


def render_tree(story: Story, *, with_logs: bool = True, width: int = BAR) -> str:
    total = max(story.duration, 1)
    prefixes = _prefixes(story)
    labels = {k: (prefixes[k] + label(n))[:MAX_LABEL] for k, n in story.spans.items()}
    lw = max((len(v) for v in labels.values()), default=10)
    n_spans = sum(not n.synthetic for n in story.spans.values())
    out = [
        f"request {story.query} (matched as {', '.join(story.matched_as)}): "
        f"{len(story.trace_ids)} trace(s), {n_spans} span(s), {len(story.logs)} log line(s), "
        f"{fmt_ns(story.duration)}, from {_iso(story.start)}",
        LEGEND,
        f"{'':<6}{'offset':>10} {'duration':>10} {'self':>10}  {'span':<{lw}}  |timeline|",
    ]
    for k, n in story.spans.items():
        bar = _bar(n.start - story.start, n.duration, total, width)
        note = _note(n)
        out.append(f"{span_markers(n):<6}{fmt_ns(n.start - story.start):>10} "
                   f"{fmt_ns(n.duration):>10} {fmt_ns(n.self_ns):>10}  {labels[k]:<{lw}}  "
                   f"|{bar}|{note}")
        if with_logs:
            pad = " " * (40 + len(prefixes[k]))
            out.extend(pad + _log_line(lg) for lg in n.logs)
    loose = [lg for lg in story.logs if lg.key is None]
    if with_logs and loose:
        out.append("log lines not tied to a span of the story:")
        out.extend("  " + _log_line(lg) for lg in loose)
    out.extend(_summary(story))
    return "\n".join(out) + "\n"


def _iso(ns: int) -> str:
    t = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    return f"{t:%Y-%m-%dT%H:%M:%S}.{ns % 1_000_000_000 // 1_000_000:03d}Z"


def _prefixes(story: Story) -> dict[Key, str]:
    """Box-drawing tree prefixes (``├─``, ``└─``, link edges ``└>``)."""
    out: dict[Key, str] = {}
    stack: list[tuple[Key, str, str]] = [(r, "", "") for r in reversed(story.roots)]
    while stack:
        key, own, inherited = stack.pop()
        out[key] = own
        kids = story.spans[key].children
        for i in range(len(kids) - 1, -1, -1):
            last = i == len(kids) - 1
            edge = ">" if story.spans[kids[i]].edge == "link" else "─"
            branch = ("└" if last else "├") + edge + " "
            stack.append((kids[i], inherited + branch, inherited + ("   " if last else "│  ")))
    return out


def _bar(offset: int, dur: int, total: int, width: int) -> str:
    a = min(width - 1, max(0, offset * width // total))
    n = max(1, min(width - a, round(dur * width / total)))
    return "·" * a + "█" * n + "·" * (width - a - n)


def _note(n: SpanNode) -> str:
    parts = []
    if n.status_message:
        parts.append(n.status_message)
    if n.skew is not None:
        s = n.skew
        off = s.estimated_offset_ns
        est = ("no estimate" if off is None
               else f"clock {'ahead' if off >= 0 else 'behind'} {fmt_ns(abs(off))}")
        moved = f", shifted {fmt_ns(s.applied_shift_ns)}" if s.applied_shift_ns else ""
        parts.append(f"skew: starts {fmt_ns(s.start_before_parent_ns)} before / ends "
                     f"{fmt_ns(s.end_after_parent_ns)} after parent, {est}{moved}")
    if n.outlives_parent_ns:
        parts.append(f"ends {fmt_ns(n.outlives_parent_ns)} after its parent (async)")
    return "  " + "; ".join(parts) if parts else ""


def _log_line(lg: LogLine) -> str:
    body = " ".join((lg.body or "").split())
    if len(body) > MAX_BODY:
        body = body[:MAX_BODY - 1] + "…"
    sev = lg.severity_text or (str(lg.severity_number) if lg.severity_number else "-")
    src = " access" if lg.source_kind == "accesslog" else ""
    return f"· {_clock(lg.time)} {sev:<5} {lg.service or '?'}{src}: {body}"


def _summary(story: Story) -> list[str]:
    out = []
    if story.critical_path:
        path = " → ".join(label(story.spans[k]) for k in story.critical_path)
        out.append(f"critical path ({len(story.critical_path)} spans): {path}")
    eo = story.error_origin
    if eo is not None:
        n = story.spans[eo.key]
        out.append(f"error origin: {label(n)} span {n.span_id}"
                   + (f": {n.status_message}" if n.status_message else ""))
        out.extend("  " + _log_line(lg) for lg in eo.logs)
    out.extend(f"warning: {w}" for w in story.warnings)
    return out
