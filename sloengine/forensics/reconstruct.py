"""One call from an id to the analysed story: gather → tree → skew → self time → critical
path → error origin. The Engine calls this; front doors format the result."""

from __future__ import annotations

from dataclasses import dataclass

from sloengine.forensics.gather import gather
from sloengine.forensics.paths import critical_path, error_origin, self_times
from sloengine.forensics.skew import assess_skew
from sloengine.forensics.story import Story
from sloengine.forensics.tree import build_tree
from sloengine.store import Store


@dataclass(frozen=True, slots=True)
class TraceOptions:
    #: the closure over links and correlation ids stops after this many traces
    max_traces: int = 50
    #: error origin: logs of the same trace within ± this many seconds of the failing span
    log_window_s: float = 5.0
    #: shift skewed children into their parents (and say by how much) instead of only
    #: flagging them
    adjust_skew: bool = False


def reconstruct(store: Store, ident: str, options: TraceOptions | None = None) -> Story:
    """The story of the request ``ident`` names: a trace id, a span id or a correlation id.

    Raises ``TraceNotFound`` (a TerminalError) when nothing carries the id.
    """
    opts = options or TraceOptions()
    story = build_tree(gather(store, ident, max_traces=opts.max_traces),
                       adjust_skew=opts.adjust_skew)
    assess_skew(story, adjust=opts.adjust_skew)
    self_times(story)
    critical_path(story)
    error_origin(story, log_window_s=opts.log_window_s)
    return story
