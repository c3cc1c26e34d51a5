"""Buckets pulled from query sources (PromQL SLIs): which minutes an evaluation needs, which of
them were fetched, and writing what a source returned into ``slo_buckets`` — the table every
other SLI fills, so budgets and burn rates are computed the same way whatever the source.

A pull asks the source only for the minutes of the needed range that are not fetched yet
(``source_ranges``), newest first and in chunks of the source's ``max_minutes``, committing
each chunk with its range: a server that goes down mid-pull leaves a gap, no buckets for it,
and the next pull fills it. The newest ``settle_minutes`` of a pull are fetched again next
time (a server may not have ingested the last scrapes yet). An SLO whose needed range has a
gap is ``source_unavailable``: missing minutes are unknown, not good and not bad
(SLO-MATH.md: no data is a status, never a number).

The source is any object shaped like :class:`MinuteSource` (sources/prometheus.py,
sources/memory.py); compute does not import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, Protocol

from sloengine.compute import rollups
from sloengine.compute.buckets import indicator_hash
from sloengine.compute.series import plan
from sloengine.compute.windows import minute_of, period_start
from sloengine.errors import TerminalError, TransientError
from sloengine.model import SloResult
from sloengine.spec.model import SLO, PromSource
from sloengine.store import Store

Interval = tuple[int, int]
#: (group, minute, good, total)
Row = tuple[str, int, float, float]


class MinuteSource(Protocol):
    """Per-minute good/total rows of one SLO for the minutes [lo, hi). Raises a
    TransientError (SourceUnavailable) when it cannot answer now, a TerminalError when the
    SLO cannot be pulled at all (a refused query)."""

    @property
    def max_minutes(self) -> int: ...

    @property
    def settle_minutes(self) -> int: ...

    def fetch(self, slo: SLO, lo: int, hi: int) -> list[Row]: ...


@dataclass(frozen=True, slots=True)
class PullReport:
    slo: str
    outcome: Literal["ok", "unavailable", "error"]
    lo: int  # the needed range [lo, hi)
    hi: int
    fetched: list[Interval] = field(default_factory=list)
    rows: int = 0
    #: minutes of [lo, hi) never fetched (after this pull)
    gaps: list[Interval] = field(default_factory=list)
    error: str | None = None

    def detail(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "from": self.lo, "to": self.hi,
                "fetched": [list(iv) for iv in self.fetched], "rows": self.rows,
                "gaps": [list(iv) for iv in self.gaps], "error": self.error}


def is_pulled(slo: SLO) -> bool:
    return isinstance(slo.spec.indicator.total, PromSource)


def needed_range(slo: SLO, t: int) -> Interval:
    """The minutes an evaluation at ``t`` reads: its period and its longest alert window
    (with time slices, from the start of the slice holding the first of them)."""
    p = plan(slo)
    lo = min(period_start(slo.spec.window, t), t - max(p.windows, default=0))
    if p.slice_minutes:
        lo = (lo // p.slice_minutes) * p.slice_minutes
    return lo, t


def pull_slo(store: Store, slo: SLO, t: int, source: MinuteSource | None, *,
             now: datetime | None = None, lo: int | None = None) -> PullReport:
    """Fetch what is missing of [lo, t) (default lo: :func:`needed_range`) and store it.
    Never raises for a source failure: the report says what happened."""
    name = slo.metadata.name
    a0 = needed_range(slo, t)[0] if lo is None else lo
    if source is None:
        return PullReport(name, "error", a0, t, gaps=gaps(store, slo, a0, t),
                          error="no Prometheus source configured (prometheus.url)")
    _reset_if_changed(store, name, indicator_hash(slo))
    settled_until = minute_of(now or store.now()) - source.settle_minutes
    todo = _complement(_union([(a, s) for a, _, s in _ranges(store, slo)]), a0, t)
    chunks = [c for iv in reversed(todo) for c in reversed(_split(iv, source.max_minutes))]
    fetched: list[Interval] = []
    nrows = 0
    outcome: Literal["ok", "unavailable", "error"] = "ok"
    error = None
    for a, b in chunks:
        try:
            rows = source.fetch(slo, a, b)
        except TransientError as exc:
            outcome, error = "unavailable", str(exc)
            break
        except TerminalError as exc:
            outcome, error = "error", str(exc)
            break
        nrows += write_pulled(store, slo, a, b, rows, settled=max(a, min(b, settled_until)))
        fetched.append((a, b))
    return PullReport(name, outcome, a0, t, _union(fetched), nrows, gaps(store, slo, a0, t),
                      error)


def write_pulled(store: Store, slo: SLO, lo: int, hi: int, rows: list[Row], *,
                 settled: int | None = None) -> int:
    """Replace the SLO's buckets in [lo, hi) with ``rows`` and record the range as fetched
    (final up to ``settled``, default hi), in one transaction. Returns rows written."""
    name, ihash = slo.metadata.name, indicator_hash(slo)
    keep = [r for r in rows if lo <= r[1] < hi and (r[3] > 0 or r[2] > 0)]
    with store.transaction():
        rollups.forget(store, [name])  # these buckets are read minute by minute
        store.exec_("DELETE FROM slo_buckets WHERE slo_name = ? AND minute >= ? AND minute < ?",
                    [name, lo, hi])
        if keep:
            store.exec_(
                "INSERT INTO slo_buckets SELECT ?, ?, unnest(?::VARCHAR[]), "
                "unnest(?::BIGINT[]), unnest(?::DOUBLE[]), unnest(?::DOUBLE[])",
                [name, ihash, [r[0] for r in keep], [r[1] for r in keep],
                 [r[2] for r in keep], [r[3] for r in keep]])
        ranges = [*_ranges(store, slo), (lo, hi, hi if settled is None else settled)]
        done = _union([(a, s) for a, _, s in ranges])
        seen = _union([(a, b) for a, b, _ in ranges])
        store.exec_("DELETE FROM source_ranges WHERE slo_name = ?", [name])
        merged = [(a, b, b) for a, b in done] + [
            (a, b, a) for x, y in seen for a, b in _complement(done, x, y)]
        for a, b, s in sorted(merged):
            store.exec_("INSERT INTO source_ranges VALUES (?, ?, ?, ?, ?, ?)",
                        [name, ihash, a, b, s, store.now()])
    return len(keep)


def gaps(store: Store, slo: SLO, lo: int, hi: int) -> list[Interval]:
    """Minutes of [lo, hi) that were never fetched."""
    return _complement(_union([(a, b) for a, b, _ in _ranges(store, slo)]), lo, hi)


def unavailable(store: Store, slo: SLO, t: int) -> list[Interval]:
    """The gaps an evaluation at ``t`` would read over (empty: the SLO can be evaluated)."""
    if not is_pulled(slo):
        return []
    return gaps(store, slo, *needed_range(slo, t))


def mark_unavailable(results: list[SloResult]) -> list[SloResult]:
    """Status ``source_unavailable``; the numbers stay (they cover the minutes fetched) but
    nothing fires or resolves on data with holes: alert conditions are false and their state
    ``unknown`` — the caller leaves the persisted alert state alone."""
    return [replace(
        r, status="source_unavailable",
        alerts=[replace(d, condition=False, state="unknown") for d in r.alerts],
        budget_alerts=[{**b, "condition": False} for b in r.budget_alerts]) for r in results]


# -- intervals ---------------------------------------------------------------------------


def _ranges(store: Store, slo: SLO) -> list[tuple[int, int, int]]:
    return [(int(a), int(b), int(s)) for a, b, s in store.rows(
        "SELECT lo_minute, hi_minute, settled_minute FROM source_ranges "
        "WHERE slo_name = ? AND indicator_hash = ? ORDER BY lo_minute",
        [slo.metadata.name, indicator_hash(slo)])]


def _reset_if_changed(store: Store, name: str, ihash: str) -> None:
    """A changed indicator (or buckets once materialised from events under this name)
    invalidates every bucket and range of the SLO."""
    stale = store.one(
        "SELECT (SELECT count(*) FROM source_ranges WHERE slo_name = ? AND indicator_hash <> ?)"
        " + (SELECT count(*) FROM slo_buckets WHERE slo_name = ? AND indicator_hash <> ?)"
        " + (SELECT count(*) FROM slo_materialized WHERE slo_name = ? AND indicator_hash <> ?)",
        [name, ihash, name, ihash, name, ihash])
    if stale:
        with store.transaction():
            for table in ("slo_buckets", "source_ranges", "slo_materialized",
                          "slo_buckets_hourly", "slo_rollup_state"):
                store.exec_(f"DELETE FROM {table} WHERE slo_name = ?", [name])


def _union(ivs: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for a, b in sorted(iv for iv in ivs if iv[1] > iv[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _complement(union: list[Interval], lo: int, hi: int) -> list[Interval]:
    out: list[Interval] = []
    pos = lo
    for a, b in union:
        if b <= pos:
            continue
        if a >= hi:
            break
        if a > pos:
            out.append((pos, a))
        pos = max(pos, b)
    if pos < hi:
        out.append((pos, hi))
    return out


def _split(iv: Interval, n: int) -> list[Interval]:
    return [(a, min(a + n, iv[1])) for a in range(iv[0], iv[1], n)]
