"""Window sums over the per-minute buckets, at one evaluation time or at thousands.

Two formulations of the same sums (SLO-MATH.md "Windows": the window of ``t`` is the minutes
``[t − W, t)``; the period is ``[ps, t)`` with ps = t − P, or the start of the calendar
week/month/quarter, DST-aware):

* ``point_sql`` — one evaluation (``evaluate``): one pass over the SLO's buckets of the
  longest window, each window a ``sum(...) FILTER (WHERE minute >= t − W)``.
* ``series_sql`` — every step of a range (``replay``, report history): one ordered stream
  per SLO over a dense minute grid, running totals and every window as
  ``running(t − 1) − running(t − 1 − W)``. DuckDB 2.0 computes running sums and ``lag`` over
  an ordered stream (empty ``OVER ()``) ~10× faster than with ``PARTITION BY … ORDER BY``
  (whose frames go through segment trees), so all groups share one stream sorted by
  (group, minute); the query checks the order it relies on and fails loudly if it ever
  breaks. The grid starts at the first bucket (or the first evaluation time) instead of a
  whole period earlier: before the first bucket every running total is zero.

Both give the same numbers: event counts are integers, exact in DOUBLE in any order; only
fractional sums (interpolated histogram buckets, RatioTimeslices' slice ratios) can differ in
the last bit, as two running-sum origins always could.

Column naming: ``g_<w>`` / ``n_<w>`` good / total events in window ``w`` (minutes, or
``p`` for the period); with slices also ``sd_<w>`` slices with data, ``sr_<w>`` sum of
slice ratios, ``sb<i>_<w>`` bad slices for objective i. With slices every window ends at the
last slice boundary at or before t, so a window of W holds exactly W/S whole slices (a
rolling period P/S slices; a calendar period the whole slices since its start). A slice
without events has no data and is neither good nor bad (SLO-MATH.md: no data ≠ good).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sloengine.compute.windows import excluded_ranges, period_start
from sloengine.spec.model import SLO
from sloengine.spec.policy import Tier, resolve


@dataclass(frozen=True, slots=True)
class SeriesPlan:
    windows: tuple[int, ...]  # minutes, sorted, distinct (tier windows)
    slice_minutes: int | None
    slice_targets: tuple[float, ...]
    tiers: tuple[Tier, ...]
    period_minutes: int  # nominal, for thresholds and time to exhaustion


#: plan() per SLO object (an SLO is immutable; evaluated every minute, replayed often)
_PLANS: dict[int, tuple[SLO, SeriesPlan]] = {}


def plan(slo: SLO) -> SeriesPlan:
    hit = _PLANS.get(id(slo))
    if hit is not None and hit[0] is slo:
        return hit[1]
    tiers = tuple(resolve(slo))
    windows = sorted({int(t.long_window.total_seconds()) // 60 for t in tiers}
                     | {int(t.short_window.total_seconds()) // 60 for t in tiers})
    b = slo.spec.budgeting
    slice_min = None
    if b.method != "Occurrences" and b.time_slice_window is not None:
        slice_min = int(b.time_slice_window.total_seconds()) // 60
    targets = tuple(o.time_slice_target or o.target for o in slo.spec.objectives)
    p = SeriesPlan(tuple(windows), slice_min, targets, tiers,
                   int(slo.spec.window.nominal().total_seconds()) // 60)
    if len(_PLANS) > 4096:
        _PLANS.clear()
    _PLANS[id(slo)] = (slo, p)
    return p


def _excl_sql(ranges: list[tuple[int, int]], col: str) -> str:
    if not ranges:
        return "FALSE"
    return "(" + " OR ".join(f"({col} >= {int(a)} AND {col} < {int(b)})"
                             for a, b in ranges) + ")"


def _rolling(slo: SLO) -> int | None:
    w = slo.spec.window
    return int(w.rolling.total_seconds()) // 60 if w.rolling is not None else None


def _lo(p: SeriesPlan, earliest_ps: int, t_from: int) -> int:
    """First minute read: the earliest period start or window start, minus one (and a whole
    slice earlier with slices)."""
    lo = min(earliest_ps, t_from - max(p.windows, default=0)) - 1
    if p.slice_minutes:
        lo = (lo // p.slice_minutes) * p.slice_minutes - p.slice_minutes
    return lo


# -- one evaluation ---------------------------------------------------------------------

def point_sql(slo: SLO, t: int) -> tuple[str, list[Any], SeriesPlan]:
    """SQL for rows (grp, t, ps, window sums...) at one evaluation time ``t``: the columns
    and numbers of ``series_sql(slo, t, t, 1)``, in one pass over the buckets."""
    p = plan(slo)
    rolling = _rolling(slo)
    ps = t - rolling if rolling is not None else period_start(slo.spec.window, t)
    lo = _lo(p, ps, t)
    excl = excluded_ranges(slo.spec.corrections, lo, t)
    keep = f"NOT {_excl_sql(excl, 'minute')}"
    cols = []
    for label, a in (*((str(m), t - m) for m in p.windows), ("p", ps)):
        if label == "p":
            cols.append(f"{ps}::BIGINT AS ps")
        f = f"FILTER (WHERE minute >= {a} AND {keep})"
        cols.append(f"coalesce(sum(good) {f}, 0) AS g_{label}, "
                    f"coalesce(sum(total) {f}, 0) AS n_{label}")
    sql = f"""
SELECT grp, {t}::BIGINT AS t, {", ".join(cols)}
FROM slo_buckets WHERE slo_name = ? AND minute >= {lo} AND minute < {t}
GROUP BY grp"""
    params: list[Any] = [slo.metadata.name]
    if p.slice_minutes:
        sql = _point_slices(sql, p, t, ps, lo, rolling, keep)
        params.append(slo.metadata.name)
    return sql + " ORDER BY grp", params, p


def _point_slices(base: str, p: SeriesPlan, t: int, ps: int, lo: int, rolling: int | None,
                  keep: str) -> str:
    s = p.slice_minutes
    assert s is not None
    end = t // s  # windows hold the whole slices before this one
    ranges = [(str(m), end - m // s, end - 1, 1) for m in p.windows]
    if rolling is not None:
        ranges.append(("p", end - rolling // s, end - 1, 1))
    else:
        first = (ps + s - 1) // s
        # a period that starts inside the current slice: as the running-sum difference
        ranges.append(("p", first, end - 1, 1) if first <= end else ("p", end, first - 1, -1))
    cols = []
    for label, a, b, sign in ranges:
        f = f"FILTER (WHERE s >= {a} AND s <= {b})"
        neg = "-" if sign < 0 else ""
        cols.append(f"{neg}coalesce(sum(has::INT) {f}, 0) AS sd_{label}, "
                    f"{neg}coalesce(sum(coalesce(r, 0)) {f}, 0) AS sr_{label}")
        for i, tg in enumerate(p.slice_targets):
            cols.append(f"{neg}coalesce(sum((has AND r < {float(tg)!r})::INT) {f}, 0)"
                        f" AS sb{i}_{label}")
    return f"""
WITH base AS ({base}),
sl AS (
  SELECT grp, minute // {s} AS s, coalesce(sum(good) FILTER (WHERE {keep}), 0) AS g,
    coalesce(sum(total) FILTER (WHERE {keep}), 0) AS n
  FROM slo_buckets WHERE slo_name = ? AND minute >= {lo} AND minute < {t}
  GROUP BY ALL),
sl2 AS (SELECT grp, s, n > 0 AS has, CASE WHEN n > 0 THEN g / n END AS r FROM sl),
x AS (SELECT grp, {", ".join(cols)} FROM sl2 GROUP BY grp)
SELECT base.*, x.* EXCLUDE (grp) FROM base JOIN x USING (grp)"""


# -- every step of a range ----------------------------------------------------------------

def series_sql(slo: SLO, t_from: int, t_to: int, step: int, *, ordered: bool = True
               ) -> tuple[str, list[Any], SeriesPlan]:
    """SQL for rows (grp, t, ps, window sums...) at t = t_from, t_from + step, ... ≤ t_to
    (ordered by grp, t unless ``ordered`` is false)."""
    p = plan(slo)
    w = slo.spec.window
    rolling = _rolling(slo)
    s = p.slice_minutes
    # period starts for every evaluation time (few distinct values for calendar windows)
    if rolling is not None:
        earliest_ps = t_from - rolling
        starts: list[int] = []
    else:
        starts = sorted({period_start(w, t) for t in range(t_from, t_to + 1, step)}
                        | {period_start(w, t_to)})
        earliest_ps = starts[0]
    lo = _lo(p, earliest_ps, t_from)
    hi = t_to
    # grid rows hold minutes [glo − 1, grid_hi); with slices a little past hi, where the
    # slice holding hi − 1 is recorded (a calendar period may start inside it)
    grid_hi = hi + s if s else hi
    excl = excluded_ranges(slo.spec.corrections, lo, hi)
    keep = f"NOT {_excl_sql(excl, 'sb.minute')}"
    slice_cols = (["cd", "cr", *(f"cb{i}" for i in range(len(p.slice_targets)))]
                  if s else [])
    cums = ["cg", "ct", *slice_cols]
    vals = {"cg": "good", "ct": "total", "cd": "hd", "cr": "rr",
            **{f"cb{i}": f"b{i}" for i in range(len(p.slice_targets))}}
    zero = "0::DOUBLE"
    # lag offsets in rows = minutes: minute windows, then slice windows (whole slices)
    lags: dict[str, list[tuple[str, int]]] = {c: [] for c in cums}
    for m in p.windows:
        lags["cg"].append((f"g_{m}", m))
        lags["ct"].append((f"n_{m}", m))
        if s:
            k = (m // s) * s
            lags["cd"].append((f"sd_{m}", k))
            lags["cr"].append((f"sr_{m}", k))
            for i in range(len(p.slice_targets)):
                lags[f"cb{i}"].append((f"sb{i}_{m}", k))
    p_names = {"cg": "g_p", "ct": "n_p", "cd": "sd_p", "cr": "sr_p",
               **{f"cb{i}": f"sb{i}_p" for i in range(len(p.slice_targets))}}
    if rolling is not None:
        for c in cums:
            lags[c].append((p_names[c], rolling if c in ("cg", "ct") else
                            (rolling // (s or 1)) * (s or 1)))

    # the stream: bucket rows (kind 0), slice rows at each slice's last minute (kind 0) and
    # one zero row per grid minute (kind 1), sorted by (group, minute, kind): the running
    # sums at a kind-1 row are the sums up to and including that minute
    src_val_cols = ["good", "total", *(["hd", "rr", *(f"b{i}" for i in range(
        len(p.slice_targets)))] if s else [])]

    def row(values: dict[str, str]) -> str:
        return ", ".join(f"{values.get(c, zero)} AS {c}" for c in src_val_cols)

    parts = [f"SELECT gid, minute, 0 AS kind, {row({'good': 'good', 'total': 'total'})} FROM x"]
    slice_ctes = ""
    if s:
        bads = {f"b{i}": f"(n > 0 AND g / n < {float(tg)!r})::INT::DOUBLE"
                for i, tg in enumerate(p.slice_targets)}
        slice_ctes = f""",
sl AS (
  SELECT gid, (minute // {s} + 1) * {s} - 1 AS minute, sum(good) AS g, sum(total) AS n
  FROM x GROUP BY gid, minute // {s})"""
        parts.append(
            f"SELECT gid, minute, 0 AS kind, "
            f"{row({'hd': '(n > 0)::INT::DOUBLE', 'rr': 'CASE WHEN n > 0 THEN g / n ELSE 0 END', **bads})}"  # noqa: E501
            f" FROM sl WHERE minute < {grid_hi}")
    parts.append(f"SELECT g.gid, r.range AS minute, 1 AS kind, {row({})}"
                 f" FROM g, gl, range(gl.glo - 1, {grid_hi}) r")
    # sort key: (gid, minute, kind) as one integer; the stream checks it never decreases
    sk = f"gid * 4294967296 + (minute - {lo - 2}) * 2 + kind"
    check = ("CASE WHEN coalesce(lag(sk) OVER (), -1) <= sk THEN 0"
             " ELSE error('series stream out of order') END")
    cum_sql = ", ".join(
        f"sum({vals[c]}) OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
        + (f" + {check}" if c == "cg" else "") + f" AS {c}" for c in cums)
    lag_sql = ", ".join(f"lag({c}, {k}) OVER () AS l_{name}"
                        for c in cums for name, k in lags[c])
    cum_list = ", ".join(cums)
    # the dense rows must reach the lags strictly increasing in (gid, minute) as well
    dk = f"gid * 4294967296 + minute - {lo - 2}"
    l_cums = ", ".join(
        [f"cg + CASE WHEN coalesce(lag({dk}) OVER (), -1) < {dk} THEN 0"
         " ELSE error('series stream out of order') END AS cg", *cums[1:]])

    # window sum = running(t − 1) − running(t − 1 − k); before the group's first grid row
    # the running total is the group's base (its running value at minute glo − 1)
    out_cols = []
    for c in cums:
        for name, k in lags[c]:
            out_cols.append(f"l.{c} - CASE WHEN l.minute - {k} >= gl.glo - 1 THEN l.l_{name}"
                            f" ELSE bs.{c} END AS {name}")
    ps_join = pick_join = ""
    pick_cte = ""
    if rolling is not None:
        ps_sql = f"l.minute + 1 - {rolling}"
    else:
        values = ", ".join(f"({v})" for v in starts)
        ps_sql = "pstart.ps"
        ps_join = (f" ASOF JOIN (VALUES {values}) pstart(ps) ON l.minute >= pstart.ps")
        picks = sorted({v - 1 for v in starts}
                       | ({((v + s - 1) // s) * s - 1 for v in starts} if s else set()))
        pick_cte = (f""",
pk AS (SELECT gid, minute, {cum_list} FROM d WHERE minute IN ({", ".join(map(str, picks))}))""")
        pick_join = (" LEFT JOIN pk p0 ON p0.gid = l.gid AND p0.minute = pstart.ps - 1"
                     + (f" LEFT JOIN pk p1 ON p1.gid = l.gid AND"
                        f" p1.minute = (pstart.ps + {s} - 1) // {s} * {s} - 1" if s else ""))
        for c in cums:
            pick = "p0" if c in ("cg", "ct") else "p1"
            out_cols.append(f"l.{c} - coalesce({pick}.{c}, bs.{c}) AS {p_names[c]}")
    # the columns in the order of the original formulation: per window g, n; the period;
    # then per window the slice columns; the period's
    int_cols = {"sd", *(f"sb{i}" for i in range(len(p.slice_targets)))}
    labels = [*(str(m) for m in p.windows), "p"]
    groups = [["g", "n"]]
    if s:
        groups.append(["sd", "sr", *(f"sb{i}" for i in range(len(p.slice_targets)))])
    final_cols = []
    for prefixes in groups:
        for label in labels:
            if label == "p" and prefixes[0] == "g":
                final_cols.append("ps")
            for pre in prefixes:
                n = f"{pre}_{label}"
                final_cols.append(f"{n}::BIGINT AS {n}" if pre in int_cols else n)
    order_by = " ORDER BY grp, t" if ordered else ""
    sql = f"""
WITH g AS (
  SELECT grp, row_number() OVER (ORDER BY grp) - 1 AS gid
  FROM (SELECT DISTINCT grp FROM slo_buckets WHERE slo_name = ? AND minute >= {lo}
        AND minute < {hi})),
x AS (
  SELECT g.gid, sb.minute, sb.good, sb.total FROM slo_buckets sb JOIN g ON g.grp = sb.grp
  WHERE sb.slo_name = ? AND sb.minute >= {lo} AND sb.minute < {hi} AND {keep}),
gl AS (SELECT least(coalesce(min(minute), {t_from - 1}), {t_from - 1}) AS glo FROM x){slice_ctes},
o AS (SELECT * FROM ({" UNION ALL ".join(parts)}) ORDER BY gid, minute, kind),
c AS (
  SELECT gid, minute, kind, {cum_sql}
  FROM (SELECT *, {sk} AS sk FROM o)),
d AS (SELECT gid, minute, {cum_list} FROM c WHERE kind = 1),
l AS (SELECT gid, minute, {l_cums}{", " + lag_sql if lag_sql else ""} FROM d),
bs AS (SELECT d.gid, {", ".join(f"d.{c}" for c in cums)} FROM d, gl
       WHERE d.minute = gl.glo - 1){pick_cte},
e AS (
  SELECT g.grp, l.minute + 1 AS t, {ps_sql} AS ps{", " if out_cols else ""}{", ".join(out_cols)}
  FROM l JOIN bs ON bs.gid = l.gid JOIN g ON g.gid = l.gid CROSS JOIN gl{ps_join}{pick_join}
  WHERE l.minute >= {t_from - 1} AND l.minute <= {t_to - 1}
    AND (l.minute + 1 - {t_from}) % {step} = 0)
SELECT grp, t, {", ".join(final_cols)} FROM e{order_by}
"""
    return sql, [slo.metadata.name, slo.metadata.name], p
