"""Window sums over the per-minute buckets at every step of a range (replay, report history).

One ordered stream per SLO over a dense minute grid: running totals, and every window's sum as
``running(t − 1) − running(t − 1 − W)`` (SLO-MATH.md "Windows": the window of ``t`` is the
minutes ``[t − W, t)``; the period ``[ps, t)`` with ps = t − P, or the start of the calendar
week/month/quarter, DST-aware). DuckDB 2.0 computes running sums over an ordered stream
(empty ``OVER ()``, rows in the order of an ``ORDER BY``) ~5× faster than with
``PARTITION BY … ORDER BY`` (segment trees; benchmarks/README.md), so all groups share one
stream sorted by (group, minute); the query checks the order it relies on and fails loudly if
it ever breaks. The grid starts at the first bucket (or the first evaluation time), not a
whole period earlier: before the first bucket every running total is zero.

One evaluation time takes the shorter path of ``evaluate.point_query`` (sums per band of
minutes). Both give the same numbers: event counts are integers, exact in DOUBLE in any order;
only fractional sums (interpolated histogram buckets, RatioTimeslices' slice ratios) can
differ in the last bit, as two running-sum origins always could.

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


def exclusion_sql(ranges: list[tuple[int, int]], col: str) -> str:
    if not ranges:
        return "FALSE"
    return "(" + " OR ".join(f"({col} >= {int(a)} AND {col} < {int(b)})"
                             for a, b in ranges) + ")"


def rolling_minutes(slo: SLO) -> int | None:
    w = slo.spec.window
    return int(w.rolling.total_seconds()) // 60 if w.rolling is not None else None


def read_from(p: SeriesPlan, earliest_ps: int, t_from: int) -> int:
    """First minute read: the earliest period start or window start, minus one (and a whole
    slice earlier with slices)."""
    lo = min(earliest_ps, t_from - max(p.windows, default=0)) - 1
    if p.slice_minutes:
        lo = (lo // p.slice_minutes) * p.slice_minutes - p.slice_minutes
    return lo


# -- every step of a range ----------------------------------------------------------------

def series_sql(slo: SLO, t_from: int, t_to: int, step: int, *, ordered: bool = True
               ) -> tuple[str, list[Any], SeriesPlan]:
    """SQL for rows (grp, t, ps, window sums...) at t = t_from, t_from + step, ... ≤ t_to
    (ordered by grp, t unless ``ordered`` is false)."""
    sql, params, p = stream_sql([slo], t_from, t_to, step)
    order = " ORDER BY grp, t" if ordered else ""
    return f"SELECT * EXCLUDE (q) FROM ({sql}){order}", params, p


def shape(slo: SLO) -> tuple[Any, ...] | None:
    """What SLOs must share to be computed in one stream: windows, slices, tiers, objectives,
    method and period (their thresholds, targets and names may differ). None: alone (its
    corrections apply to it only)."""
    if slo.spec.corrections:
        return None
    p = plan(slo)
    w = slo.spec.window
    return (p.windows, p.slice_minutes, p.slice_targets if p.slice_minutes else (),
            tuple((t.long_window, t.short_window) for t in p.tiers),
            len(slo.spec.objectives), slo.spec.budgeting.method, w.rolling, w.calendar,
            w.time_zone)


def stream_sql(slos: list[SLO], t_from: int, t_to: int, step: int
               ) -> tuple[str, list[Any], SeriesPlan]:
    """The series of every SLO in ``slos`` (one ``shape``) from one stream: rows (q, grp, t,
    ps, window sums...) with q the SLO's index in ``slos``, unordered."""
    slo = slos[0]
    assert len(slos) == 1 or all(shape(x) == shape(slo) is not None for x in slos)
    p = plan(slo)
    w = slo.spec.window
    rolling = rolling_minutes(slo)
    s = p.slice_minutes
    n_obj = len(p.slice_targets)
    # period starts for every evaluation time (few distinct values for calendar windows)
    if rolling is not None:
        earliest_ps = t_from - rolling
        starts: list[int] = []
    else:
        starts = sorted({period_start(w, t) for t in range(t_from, t_to + 1, step)}
                        | {period_start(w, t_to)})
        earliest_ps = starts[0]
    lo = read_from(p, earliest_ps, t_from)
    hi = t_to
    # grid rows: minutes [glo − 1, grid_hi); with slices a little past hi, where the slice
    # holding hi − 1 is recorded (a calendar period may start inside it)
    grid_hi = hi + s if s else hi
    excl = excluded_ranges(slo.spec.corrections, lo, hi)

    # running sums: c<x> over the value column of the stream
    cums = {"cg": "good", "ct": "total"}
    if s:
        cums |= {"cd": "hd", "cr": "rr", **{f"cb{i}": f"b{i}" for i in range(n_obj)}}
    # output column → (running sum, lag in rows = minutes): minute windows, slice windows
    # (whole slices), and a rolling period
    out: dict[str, tuple[str, int]] = {}
    labels = [*(str(m) for m in p.windows), "p"]
    spans = {str(m): m for m in p.windows}
    if rolling is not None:
        spans["p"] = rolling
    for label in labels:
        if label in spans:
            out[f"g_{label}"] = ("cg", spans[label])
            out[f"n_{label}"] = ("ct", spans[label])
    if s:
        for label in labels:
            if label in spans:
                k = (spans[label] // s) * s
                out[f"sd_{label}"] = ("cd", k)
                out[f"sr_{label}"] = ("cr", k)
                for i in range(n_obj):
                    out[f"sb{i}_{label}"] = (f"cb{i}", k)

    # the stream, sorted by sk = (group, minute, kind): the minutes' buckets and, at each
    # slice's last minute, the slices (kind 0), and one zero row per group and grid minute
    # (kind 1): at a kind-1 row the running sums hold everything up to that minute. Only the
    # sort key and the values travel through the sort.
    def key(gid: str, minute: str, kind: int) -> str:
        return f"({gid} * 4294967296 + {minute} - {lo - 2}) * 2 + {kind}"

    def branch(sk: str, values: dict[str, str], src: str) -> str:
        cols = ", ".join(f"{values.get(v, '0::DOUBLE')} AS {v}" for v in cums.values())
        return f"SELECT {sk} AS sk, {cols} FROM {src}"

    parts = [branch(key("gid", "minute", 0), {"good": "good", "total": "total"}, "x")]
    slice_cte = ""
    if s:
        slice_cte = f""",
sl AS (
  SELECT gid, (minute // {s} + 1) * {s} - 1 AS minute, sum(good) AS g, sum(total) AS n
  FROM x GROUP BY gid, minute // {s})"""
        parts.append(branch(key("gid", "minute", 0), {
            "hd": "(n > 0)::INT::DOUBLE", "rr": "CASE WHEN n > 0 THEN g / n ELSE 0 END",
            **{f"b{i}": f"(n > 0 AND g / n < {float(tg)!r})::INT::DOUBLE"
               for i, tg in enumerate(p.slice_targets)}}, f"sl WHERE minute < {grid_hi}"))
    parts.append(branch(key("g.gid", "r.range", 1), {},
                        f"g, gl, range(gl.glo - 1, {grid_hi}) r"))
    order_err = "error('series rows out of order or repeated')"
    check = f" + CASE WHEN coalesce(lag(sk) OVER (), -1) < sk THEN 0 ELSE {order_err} END"
    # d: running sums; st marks each group's first row (minute glo − 1: its running totals
    # are the group's base, what every earlier minute of the group would hold)
    c_cols = ", ".join(
        f"sum({v}) OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
        + (check if c == "cg" else "") + f" AS {c}" for c, v in cums.items())
    # l: the lags, and each group's base carried along its rows
    l_cols = [f"cg{check} AS cg", *list(cums)[1:]]
    l_cols += [f"arg_max({c}, CASE WHEN st THEN gid END) OVER (ROWS BETWEEN UNBOUNDED"
               f" PRECEDING AND CURRENT ROW) AS b_{c}" for c in cums]
    # DuckDB streams lag() below a vector (2048 rows) and buffers longer ones: those run
    # first, on the narrow rows
    lagged = sorted({(c, k) for c, k in out.values()})
    long_lags = ", ".join(f"lag({c}, {k}) OVER () AS l_{c}_{k}" for c, k in lagged if k >= 2048)
    l_cols += [f"l_{c}_{k}" if k >= 2048 else f"lag({c}, {k}) OVER () AS l_{c}_{k}"
               for c, k in lagged]

    # window sum = running(t − 1) − running(t − 1 − k), the latter before the group's
    # first grid row being the group's base
    e_cols = [f"l.{c} - CASE WHEN l.minute - {k} >= gl.glo - 1 THEN l.l_{c}_{k} ELSE l.b_{c}"
              f" END AS {name}" for name, (c, k) in out.items()]
    joins = pick_cte = ""
    if rolling is not None:
        ps_sql = f"l.minute + 1 - {rolling}"
    else:
        values = ", ".join(f"({v})" for v in starts)
        ps_sql = "pstart.ps"
        joins = f" ASOF JOIN (VALUES {values}) pstart(ps) ON l.minute >= pstart.ps"
        picks = {v - 1 for v in starts}
        joins += " LEFT JOIN pk p0 ON p0.gid = l.gid AND p0.minute = pstart.ps - 1"
        if s:
            picks |= {((v + s - 1) // s) * s - 1 for v in starts}
            joins += (f" LEFT JOIN pk p1 ON p1.gid = l.gid"
                      f" AND p1.minute = (pstart.ps + {s} - 1) // {s} * {s} - 1")
        pick_cte = (f""",
pk AS (SELECT gid, minute, {", ".join(cums)} FROM d
       WHERE minute IN ({", ".join(map(str, sorted(picks)))}))""")
        p_names = {"cg": "g_p", "ct": "n_p", "cd": "sd_p", "cr": "sr_p",
                   **{f"cb{i}": f"sb{i}_p" for i in range(n_obj)}}
        for c, name in p_names.items():
            if c in cums:
                pick = "p0" if c in ("cg", "ct") else "p1"
                e_cols.append(f"l.{c} - coalesce({pick}.{c}, l.b_{c}) AS {name}")
    # the columns in the order of the original formulation: per window g, n; ps; the
    # period's; then per window the slice columns, and the period's
    prefixes = [["g", "n"], *([["sd", "sr", *(f"sb{i}" for i in range(n_obj))]] if s else [])]
    final = []
    for pre in prefixes:
        for label in labels:
            if label == "p" and pre[0] == "g":
                final.append("ps")
            for x in pre:
                n = f"{x}_{label}"
                final.append(f"{n}::BIGINT AS {n}" if x == "sd" or x.startswith("sb") else n)
    every = f" AND (l.minute + 1 - {t_from}) % {step} = 0" if step != 1 else ""
    names = [x.metadata.name for x in slos]
    marks = ", ".join("?" for _ in names)
    qs = ", ".join(f"(?, {q})" for q in range(len(names)))
    # sb: the buckets, read once (g, x and gl all come from it; a replay of one SLO reads
    # every row group whose zone maps admit it, so three reads cost three scans)
    sql = f"""
WITH sb AS MATERIALIZED (
  SELECT slo_name, grp, minute, good, total FROM slo_buckets WHERE slo_name IN ({marks})
    AND minute >= {lo} AND minute < {hi}),
g AS (
  SELECT q, slo_name, grp, row_number() OVER (ORDER BY q, grp) - 1 AS gid
  FROM (SELECT DISTINCT slo_name, grp FROM sb) JOIN (VALUES {qs}) n(slo_name, q)
    USING (slo_name)),
x AS (
  SELECT g.gid, sb.minute, sb.good, sb.total
  FROM sb JOIN g ON g.slo_name = sb.slo_name AND g.grp = sb.grp
  WHERE NOT {exclusion_sql(excl, 'sb.minute')}),
gl AS (
  SELECT least(coalesce(min(minute), {t_from - 1}), {t_from - 1}) AS glo FROM sb
  WHERE NOT {exclusion_sql(excl, 'minute')}){slice_cte},
o AS (SELECT * FROM ({" UNION ALL ".join(parts)}) ORDER BY sk),
c AS (
  SELECT sk // 8589934592 AS gid, sk % 8589934592 // 2 + {lo - 2} AS minute, sk % 2 AS kind,
    sk, {c_cols}
  FROM o),
d AS (
  SELECT gid, minute, sk, lag(gid) OVER () IS DISTINCT FROM gid AS st, {", ".join(cums)}
  FROM c WHERE kind = 1),
l AS (
  SELECT gid, minute, {", ".join(l_cols)}
  FROM (SELECT *{", " + long_lags if long_lags else ""} FROM d)){pick_cte},
e AS (
  SELECT g.q, g.grp, l.minute + 1 AS t, {ps_sql} AS ps, {", ".join(e_cols)}
  FROM l JOIN g ON g.gid = l.gid CROSS JOIN gl{joins}
  WHERE l.minute >= {t_from - 1} AND l.minute <= {t_to - 1}{every})
SELECT q, grp, t, {", ".join(final)} FROM e
"""
    return sql, [*names, *names], p
