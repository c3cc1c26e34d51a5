"""The in-memory twin of a pulled source (ARCHITECTURE.md rule 8): per-minute counts held in
a dict, a switch to take it down, and a log of what was asked — for tests of the pull logic
without a server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sloengine.errors import SourceUnavailable

if TYPE_CHECKING:
    from sloengine.spec.model import SLO

Row = tuple[str, int, float, float]


@dataclass(slots=True)
class InMemorySource:
    #: slo name → {(group, minute): (good, total)}
    counts: dict[str, dict[tuple[str, int], tuple[float, float]]] = field(default_factory=dict)
    up: bool = True
    max_minutes: int = 1440
    settle_minutes: int = 0
    #: every fetch asked for: (slo, lo, hi), failed ones too
    calls: list[tuple[str, int, int]] = field(default_factory=list)

    def fetch(self, slo: SLO, lo: int, hi: int) -> list[Row]:
        name = slo.metadata.name
        self.calls.append((name, lo, hi))
        if not self.up:
            raise SourceUnavailable("in-memory source is down", where="memory")
        return sorted((g, m, good, total)
                      for (g, m), (good, total) in self.counts.get(name, {}).items()
                      if lo <= m < hi)
