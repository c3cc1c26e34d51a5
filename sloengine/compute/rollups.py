"""Hourly rollups of the per-minute buckets (migration 010): why a tick is cheap.

An evaluation needs window sums up to 30 days back: 43,200 minute buckets per group. Most of
those minutes fall in whole hours that no window start (or correction boundary) cuts, and
for such an hour the sum of its 60 minutes is all the evaluation needs. ``slo_buckets_hourly``
holds those sums; ``read_sql`` reads whole hours from it and minutes only where an hour is
cut (the edges of each window), ~1,200 rows per group instead of 43,200.

Invariant: for every SLO listed in ``slo_rollup_state``, each row of ``slo_buckets_hourly``
is the sum of that SLO's minute buckets of the hour (hour = minute // 60), and every hour
with buckets has a row. ``materialize`` (buckets.py) rewrites the touched hours from the
minutes in the same transaction as the minutes; nothing else writes either table. Buckets
written any other way (a pulled source, a test) belong to SLOs without a state row, which are
read minute by minute. Sums of integer counts are exact in DOUBLE in any order, so both
reads give identical numbers; fractional sums (interpolated histograms) can differ in the
last bit, as any two summation orders can.

Timeslices SLOs whose slice length divides an hour also get ``slo_slices_hourly``: per hour
and objective the slices with events and the bad ones — counts, so exact — valid while the
state row's ``slice_key`` (slice length and targets) matches the SLO. RatioTimeslices keeps
reading minutes: its sum of slice ratios would change in the last bit with the order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sloengine.compute.series import plan
from sloengine.spec.model import SLO
from sloengine.store import Store

#: (first, end) minute or hour ranges, end exclusive
Ranges = list[tuple[int, int]]
#: slice minutes and the objectives' slice targets
SliceSpec = tuple[int, tuple[float, ...]]


def slice_spec(slo: SLO) -> SliceSpec | None:
    """What the SLO's slice rollups are made of, or None: it has none."""
    p = plan(slo)
    s = p.slice_minutes
    if slo.spec.budgeting.method != "Timeslices" or not s or 60 % s:
        return None
    return s, p.slice_targets


def slice_key(spec: SliceSpec | None) -> str | None:
    return None if spec is None else f"{spec[0]}:{','.join(repr(float(t)) for t in spec[1])}"



def _ranges_sql(col: str, ranges: Ranges) -> str:
    if not ranges:
        return "FALSE"
    return "(" + " OR ".join(f"({col} >= {int(a)} AND {col} < {int(b)})"
                             for a, b in ranges) + ")"


def split(lo: int, hi: int, cuts: Iterable[int]) -> tuple[Ranges, Ranges]:
    """Cover minutes [lo, hi) by (minute ranges, hour ranges): an hour is read from the
    rollup when it lies inside [lo, hi) and no cut falls strictly inside it (so every band
    and every correction boundary holds it whole); every other minute is read as a minute."""
    first_h = -(-lo // 60)  # the first whole hour starts at or after lo
    end_h = hi // 60  # ... and the last ends at or before hi
    split_hours = sorted({c // 60 for c in cuts
                          if lo < c < hi and c % 60 and first_h <= c // 60 < end_h})
    hours: Ranges = []
    pos = first_h
    for h in [*split_hours, end_h]:
        if h > pos:
            hours.append((pos, h))
        pos = h + 1
    if not hours:
        return [(lo, hi)] if hi > lo else [], []
    minutes: Ranges = []
    pos = lo
    for a, b in hours:
        if a * 60 > pos:
            minutes.append((pos, a * 60))
        pos = b * 60
    if hi > pos:
        minutes.append((pos, hi))
    return minutes, hours


def read_sql(lo: int, hi: int, cuts: Iterable[int], names: str) -> str:
    """Rows (slo_name, grp, minute, good, total, src) of the SLOs ``slo_name IN ({names})``,
    summing to the same window sums as their buckets in [lo, hi): whole hours come as one
    row at the hour's first minute (src 1), other minutes as themselves (src 0)."""
    minutes, hours = split(lo, hi, cuts)
    sql = (f"SELECT slo_name, grp, minute, good, total, 0 AS src FROM slo_buckets"
           f" WHERE slo_name IN ({names}) AND {_ranges_sql('minute', minutes)}")
    sql += (f" UNION ALL SELECT slo_name, grp, hour * 60 AS minute, good, total, 1"
            f" FROM slo_buckets_hourly WHERE slo_name IN ({names})"
            f" AND {_ranges_sql('hour', hours)}")
    return sql


def slices_sql(lo: int, hi: int, cuts: Iterable[int], names: str, s: int, n_obj: int,
               keep: str) -> str:
    """Rows (slo_name, grp, minute, sd, sr, sb0, ...) of the whole hours of ``split`` from
    ``slo_slices_hourly`` (``minute``: the hour's first; hours where ``keep`` is false, i.e.
    excluded by a correction, hold no slice with data)."""
    _, hours = split(lo, hi, cuts)
    bads = "".join(f", sum(bad) FILTER (WHERE objective = {i})" for i in range(n_obj))
    return (f"SELECT slo_name, grp, hour * 60 AS minute, sum(slices) FILTER (WHERE objective"
            f" = 0), sum(ratio_sum) FILTER (WHERE objective = 0){bads}"
            f" FROM slo_slices_hourly WHERE slo_name IN ({names})"
            f" AND {_ranges_sql('hour', hours)} AND {keep.format(col='hour * 60')}"
            f" GROUP BY slo_name, grp, hour")


def rolled_up(store: Store, names: Sequence[str]) -> dict[str, str | None]:
    """The SLOs among ``names`` whose rollups are complete, with their slice keys."""
    if not names:
        return {}
    marks = ", ".join("?" for _ in names)
    return {str(r[0]): r[1] for r in store.rows(
        f"SELECT slo_name, slice_key FROM slo_rollup_state WHERE slo_name IN ({marks})",
        list(names))}


def _slices_select(specs: dict[str, SliceSpec], where: str) -> tuple[str, list[Any]]:
    """Rows of slo_slices_hourly computed from the minutes ``where`` (over ``b``, the
    buckets) — with the slice arithmetic of evaluate.point_query."""
    values, params = [], []
    for name, (s, targets) in specs.items():
        for i, tg in enumerate(targets):
            values.append(f"(?, {int(s)}, {i}, {float(tg)!r}::DOUBLE)")
            params.append(name)
    sql = f"""
WITH v(slo_name, s, i, tg) AS (VALUES {", ".join(values)}),
sl AS (
  SELECT b.slo_name, b.grp, b.minute // vs.s AS k, vs.s, sum(b.good) AS g, sum(b.total) AS n
  FROM slo_buckets b JOIN (SELECT DISTINCT slo_name, s FROM v) vs ON vs.slo_name = b.slo_name
  WHERE {where} GROUP BY b.slo_name, b.grp, k, vs.s)
SELECT sl.slo_name, sl.grp, sl.k * sl.s // 60 AS hour, v.i, sum((sl.n > 0)::INT)::DOUBLE,
  sum(CASE WHEN sl.n > 0 THEN sl.g / sl.n ELSE 0 END)::DOUBLE,
  sum((sl.n > 0 AND sl.g / sl.n < v.tg)::INT)::DOUBLE
FROM sl JOIN v ON v.slo_name = sl.slo_name GROUP BY ALL ORDER BY hour"""
    return sql, params


def rebuild(store: Store, slos: Sequence[SLO], ihash: dict[str, str]) -> None:
    """All rollups of ``slos`` from their buckets, and their state rows (in the caller's
    transaction)."""
    if not slos:
        return
    names = [x.metadata.name for x in slos]
    marks = ", ".join("?" for _ in names)
    specs = {x.metadata.name: sp for x in slos if (sp := slice_spec(x)) is not None}
    for table in ("slo_buckets_hourly", "slo_slices_hourly"):
        store.exec_(f"DELETE FROM {table} WHERE slo_name IN ({marks})", names)
    store.exec_(
        f"INSERT INTO slo_buckets_hourly SELECT slo_name, indicator_hash, grp, minute // 60"
        f" AS hour, sum(good), sum(total) FROM slo_buckets WHERE slo_name IN ({marks})"
        f" GROUP BY slo_name, indicator_hash, grp, hour ORDER BY hour", names)
    if specs:
        sql, params = _slices_select(specs, "TRUE")
        store.exec_(f"INSERT INTO slo_slices_hourly {sql}", params)
    values = ", ".join("(?, ?, ?)" for _ in names)
    store.exec_(f"INSERT OR REPLACE INTO slo_rollup_state VALUES {values}",
                [v for x in slos for v in (x.metadata.name, ihash[x.metadata.name],
                                           slice_key(specs.get(x.metadata.name)))])


def refresh(store: Store, touched: dict[str, tuple[int, int]],
            specs: dict[str, SliceSpec]) -> None:
    """Rewrite the hours holding each SLO's recomputed minutes [lo, hi) from its buckets (in
    the caller's transaction, after the minutes were written). SLOs with the same range share
    one term: in a tick they all have the new minute."""
    if not touched:
        return
    by_range: dict[tuple[int, int], list[str]] = defaultdict(list)
    for name, (lo, hi) in touched.items():
        by_range[(lo // 60, -(-hi // 60))].append(name)
    terms, params = [], []
    for (h0, h1), names in by_range.items():
        terms.append(f"({{p}}slo_name IN ({', '.join('?' for _ in names)}) AND {{col}} >= {h0}"
                     f" {{mul}} AND {{col}} < {h1} {{mul}})")
        params.extend(names)
    hour_where = " OR ".join(terms).format(p="", col="hour", mul="")
    minute_where = " OR ".join(terms).format(p="", col="minute", mul="* 60")
    store.exec_(f"DELETE FROM slo_buckets_hourly WHERE {hour_where}", params)
    store.exec_(
        f"INSERT INTO slo_buckets_hourly SELECT slo_name, indicator_hash, grp, minute // 60"
        f" AS hour, sum(good), sum(total) FROM slo_buckets WHERE {minute_where}"
        f" GROUP BY slo_name, indicator_hash, grp, hour ORDER BY hour", params)
    sliced = {n: sp for n, sp in specs.items() if n in touched}
    if sliced:
        store.exec_(f"DELETE FROM slo_slices_hourly WHERE {hour_where}", params)
        sql, v_params = _slices_select(
            sliced, "(" + " OR ".join(terms).format(p="b.", col="b.minute", mul="* 60") + ")")
        store.exec_(f"INSERT INTO slo_slices_hourly {sql}", [*v_params, *params])


def forget(store: Store, names: Sequence[str]) -> None:
    """Drop the rollups of ``names`` (their buckets change outside materialize)."""
    if not names:
        return
    marks = ", ".join("?" for _ in names)
    for table in ("slo_rollup_state", "slo_buckets_hourly", "slo_slices_hourly"):
        store.exec_(f"DELETE FROM {table} WHERE slo_name IN ({marks})", list(names))


def mismatches(store: Store, slos: Sequence[SLO] = ()) -> list[tuple[Any, ...]]:
    """Rows where a rollup of a rolled-up SLO differs from its minutes (empty: invariant
    holds); the slice rollups of ``slos`` too. For tests and benchmarks."""
    out = store.rows("""
WITH m AS (
  SELECT slo_name, grp, minute // 60 AS hour, sum(good) AS good, sum(total) AS total
  FROM slo_buckets SEMI JOIN slo_rollup_state USING (slo_name) GROUP BY ALL),
h AS (SELECT slo_name, grp, hour, good, total FROM slo_buckets_hourly
      SEMI JOIN slo_rollup_state USING (slo_name))
SELECT * FROM m FULL JOIN h USING (slo_name, grp, hour)
WHERE m.good IS DISTINCT FROM h.good OR m.total IS DISTINCT FROM h.total
ORDER BY ALL""")
    keys = rolled_up(store, [x.metadata.name for x in slos])
    specs = {x.metadata.name: sp for x in slos if (sp := slice_spec(x)) is not None
             and keys.get(x.metadata.name) == slice_key(sp)}
    if specs:
        sql, params = _slices_select(specs, "TRUE")
        out += store.rows(f"""
WITH e(slo_name, grp, hour, objective, slices, ratio_sum, bad) AS ({sql}),
h AS (SELECT * FROM slo_slices_hourly WHERE slo_name IN ({", ".join("?" for _ in specs)}))
SELECT * FROM e FULL JOIN h USING (slo_name, grp, hour, objective)
WHERE e.slices IS DISTINCT FROM h.slices OR e.bad IS DISTINCT FROM h.bad
  OR abs(e.ratio_sum - h.ratio_sum) > 1e-9 * abs(e.ratio_sum) ORDER BY ALL""",
                          [*params, *specs])
    return out
