"""Materialise per-minute buckets (and their hourly rollups) incrementally.

The store's lineage says which batches arrived since the last run; the minutes they touch
are recomputed from every stored event of those minutes (delete + insert), so late data
updates the affected buckets and re-running gives identical results. All SLOs of a tick
share a fixed handful of statements in one transaction (see ``materialize_many``).
"""

from __future__ import annotations

from typing import Any

from sloengine.compute import rollups
from sloengine.compute.buckets import (
    METRIC_LOOKBACK_MIN,
    NS_PER_MIN,
    TABLE,
    TIME_COL,
    BucketQuery,
    bucket_query,
    events_sql,
    indicator_hash,
)
from sloengine.spec.model import SLO
from sloengine.store import Store


def materialize(store: Store, slo: SLO, *, lateness_minutes: int | None = None,
                now: Any = None) -> dict[str, Any]:
    """Bring the SLO's buckets up to date with everything ingested; returns what was done."""
    return materialize_many(store, [slo], lateness_minutes=lateness_minutes, now=now)[0]


def materialize_many(store: Store, slos: list[SLO], *, lateness_minutes: int | None = None,
                     now: Any = None) -> list[dict[str, Any]]:
    """Bring the buckets (and hourly rollups) of every SLO up to date, one report per SLO.

    A tick costs a fixed handful of statements, not a handful per SLO: the state of all SLOs
    in one read, the new batches' time range once per table, then in one transaction one
    DELETE and one INSERT of the recomputed minutes of every SLO (a UNION ALL of their
    bucket queries), the rollup hours they touch, and the state rows. SLOs seen for the
    first time or whose indicator changed are rebuilt from scratch (``_rebuild``).
    Late data: the minutes a new batch touches are recomputed from every stored event of
    those minutes, except minutes older than ``lateness_minutes`` before the SLO's last
    bucket, which stay as they were (reported as ``late_minutes_skipped``)."""
    first: dict[str, SLO] = {}
    for s in slos:
        first.setdefault(s.metadata.name, s)
    names = list(first)
    if not names:
        return []
    now = now or store.now()
    marks = ", ".join("?" for _ in names)
    # one read: each SLO's state, whether its rollups are complete, the last batch
    rows = store.rows(
        "SELECT n.slo_name, m.indicator_hash, m.last_batch_id, m.max_minute,"
        " r.slo_name IS NOT NULL, r.slice_key,"
        " (SELECT coalesce(max(batch_id), 0) FROM ingest_batches)"
        f" FROM (SELECT unnest([{marks}]::VARCHAR[]) AS slo_name) n"
        " LEFT JOIN slo_materialized m USING (slo_name)"
        " LEFT JOIN slo_rollup_state r USING (slo_name)", names)
    state = {str(r[0]): r[1:4] for r in rows if r[1] is not None}
    rolled = {str(r[0]): r[5] for r in rows if r[4]}
    last_batch = int(rows[0][6])
    report: dict[str, dict[str, Any]] = {}
    queries = {n: bucket_query(s) for n, s in first.items()}
    hashes = {n: indicator_hash(s) for n, s in first.items()}
    todo: list[_Job] = []
    rebuilds: list[tuple[SLO, BucketQuery]] = []
    ranges: dict[tuple[str, int], tuple[Any, Any]] = {}
    for name, q in queries.items():
        if q.source == "prometheus":
            report[name] = {"slo": name, "source": "prometheus", "minutes": 0, "note": q.note}
            continue
        st = state.get(name)
        if st is None or st[0] != hashes[name]:
            rebuilds.append((first[name], q))
            continue
        prev_batch, prev_max = int(st[1]), st[2]
        if prev_batch >= last_batch:
            report[name] = {"slo": name, "source": q.source, "minutes": 0, "rebuild": False}
            continue
        key = (q.source, prev_batch)
        if key not in ranges:
            tcol = TIME_COL[q.source]
            ranges[key] = store.rows(f"SELECT min({tcol}), max({tcol}) FROM "
                                     f"{TABLE[q.source]} WHERE batch_id > ?", [prev_batch])[0]
        todo.append(_Job(name, first[name], q, prev_max, *ranges[key], lateness_minutes))
    if rebuilds:
        report |= _rebuild(store, rebuilds, hashes, last_batch, now)
    # buckets materialised before rollups existed (migration 010): roll them up once
    stale = [s for n, s in first.items() if n in state and state[n][0] == hashes[n]
             and queries[n].source != "prometheus"
             and (n not in rolled or rolled[n] != rollups.slice_key(rollups.slice_spec(s)))]
    if todo or stale:
        with store.transaction():
            rollups.rebuild(store, stale, hashes)
            _incremental(store, todo, hashes, last_batch, now)
    for job in todo:
        report[job.name] = {"slo": job.name, "source": job.q.source, "minutes": job.minutes,
                            "rebuild": False, "late_minutes_skipped": job.late_skipped,
                            "note": job.q.note}
    return [report[s.metadata.name] for s in slos]


class _Job:
    """One SLO's incremental update: the minutes [lo_min, hi_min) the new batches touch,
    clipped to the lateness window."""

    def __init__(self, name: str, slo: SLO, q: BucketQuery, prev_max: Any, lo_ns: Any,
                 hi_ns: Any, lateness: int | None) -> None:
        self.name, self.slo, self.q, self.prev_max = name, slo, q, prev_max
        self.late_skipped = 0
        self.lo_min = self.hi_min = 0
        if lo_ns is not None:
            self.lo_min, self.hi_min = int(lo_ns) // NS_PER_MIN, int(hi_ns) // NS_PER_MIN + 1
            if (lateness is not None and prev_max is not None
                    and self.lo_min < prev_max - lateness):
                self.late_skipped = prev_max - lateness - self.lo_min
                self.lo_min = prev_max - lateness
        self.minutes = self.hi_min - self.lo_min

    def bounds(self) -> list[int]:
        lo_b, hi_b = self.lo_min * NS_PER_MIN, self.hi_min * NS_PER_MIN
        if self.q.source == "metrics":
            return [lo_b - METRIC_LOOKBACK_MIN * NS_PER_MIN, hi_b, lo_b]
        return [lo_b, hi_b]


def _incremental(store: Store, todo: list[_Job], hashes: dict[str, str], last_batch: int,
                 now: Any) -> None:
    """The minutes of every job, their rollup hours and state rows (in a transaction)."""
    work = [j for j in todo if j.minutes > 0]
    found: dict[str, int] = {}  # the largest minute written per SLO
    if work:
        by_range: dict[tuple[int, int], list[str]] = {}
        for j in work:
            by_range.setdefault((j.lo_min, j.hi_min), []).append(j.name)
        terms, t_params = [], []
        for (a, b), ns in by_range.items():
            terms.append(f"(slo_name IN ({', '.join('?' for _ in ns)}) AND minute >= {a}"
                         f" AND minute < {b})")
            t_params.extend(ns)
        store.exec_(f"DELETE FROM slo_buckets WHERE {' OR '.join(terms)}", t_params)
        parts, params = [], []
        for source in ("spans", "logs"):
            jobs = [(j.name, hashes[j.name], j.slo, j.lo_min, j.hi_min)
                    for j in work if j.q.source == source]
            if jobs:
                sql, p = events_sql(source, jobs)
                parts.append(sql)
                params += p
        for j in work:
            if j.q.source == "metrics":
                parts.append(f"SELECT ?, ?, grp, minute, good, total FROM ({j.q.sql}) "
                             f"WHERE total > 0 OR good > 0")
                params += [j.name, hashes[j.name], *j.q.params, *j.bounds()]
        # minute order: the table's zone maps then prune reads by minute
        for name, minute in store.rows(
                f"INSERT INTO slo_buckets SELECT * FROM ({' UNION ALL '.join(parts)}) "
                f"ORDER BY minute RETURNING slo_name, minute", params):
            found[name] = max(found.get(name, minute), minute)
        rollups.refresh(store, {j.name: (j.lo_min, j.hi_min) for j in work},
                        {j.name: sp for j in work if (sp := rollups.slice_spec(j.slo))})
    values, v_params = [], []  # (name, max minute): the hash and note are unchanged
    for j in todo:
        top = j.prev_max
        if j.minutes > 0:
            # only minutes in [lo, hi) changed: an old maximum below lo still holds, a
            # larger new one replaces it, an old one inside [lo, hi) may be gone
            new = found.get(j.name)
            if new is not None and (top is None or new >= top):
                top = new
            elif top is not None and j.lo_min <= top < j.hi_min:
                top = store.one("SELECT max(minute) FROM slo_buckets WHERE slo_name = ?",
                                [j.name])
        values.append("(?, ?::BIGINT)")
        v_params += [j.name, top]
    if values:
        store.exec_(f"UPDATE slo_materialized m SET last_batch_id = ?, updated_at = ?,"
                    f" max_minute = v.top FROM (VALUES {', '.join(values)}) v(slo_name, top)"
                    f" WHERE m.slo_name = v.slo_name", [last_batch, now, *v_params])


def _rebuild(store: Store, slos: list[tuple[SLO, BucketQuery]], hashes: dict[str, str],
             last_batch: int, now: Any) -> dict[str, dict[str, Any]]:
    """Every bucket and rollup of these SLOs from all stored events (first run, or a changed
    indicator), in one transaction and one INSERT ordered by (SLO name, minute): each SLO's
    buckets are contiguous and in time order, and row groups hold few names, so zone maps
    keep a replay of one SLO to its own row groups. (Ordered by minute alone, a tick's
    evaluation read fewer row groups but every per-SLO replay read all of them: measured
    here the name order won, 1.45 vs 1.63 s for 20 replays, the same ~30 ms evaluation.)
    The rows ticks append later are in minute order."""
    bounds: dict[str, tuple[Any, Any]] = {}
    for src in {q.source for _, q in slos}:
        tcol = TIME_COL[src]
        bounds[src] = store.rows(f"SELECT min({tcol}), max({tcol}) FROM {TABLE[src]}")[0]
    names = [slo.metadata.name for slo, _ in slos]
    marks = ", ".join("?" for _ in names)
    out: dict[str, dict[str, Any]] = {}
    parts, params = [], []
    for slo, q in slos:
        name = slo.metadata.name
        job = _Job(name, slo, q, None, *bounds[q.source], None)
        if job.minutes:
            parts.append(f"SELECT ? AS slo_name, ?, grp, minute, good, total FROM ({q.sql})"
                         f" WHERE total > 0 OR good > 0")
            params += [name, hashes[name], *q.params, *job.bounds()]
        out[name] = {"slo": name, "source": q.source, "minutes": job.minutes, "rebuild": True,
                     "late_minutes_skipped": 0, "note": q.note}
    with store.transaction():
        store.exec_(f"DELETE FROM slo_buckets WHERE slo_name IN ({marks})", names)
        if parts:
            store.exec_(f"INSERT INTO slo_buckets SELECT * FROM ({' UNION ALL '.join(parts)})"
                        f" ORDER BY slo_name, minute", params)
        rollups.rebuild(store, [slo for slo, _ in slos], hashes)
        top = dict(store.rows(f"SELECT slo_name, max(minute) FROM slo_buckets"
                              f" WHERE slo_name IN ({marks}) GROUP BY slo_name", names))
        values = ", ".join("(?, ?, ?, ?, ?, ?)" for _ in slos)
        store.exec_(f"INSERT OR REPLACE INTO slo_materialized VALUES {values}",
                    [x for slo, q in slos for x in (
                        slo.metadata.name, hashes[slo.metadata.name], last_batch,
                        top.get(slo.metadata.name), now, q.note)])
    return out
