"""Helpers for SLO computation tests: SLO documents in, per-minute buckets written through the
real store, and a small, obviously correct pure-Python reference of SLO-MATH.md."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from sloengine.compute import indicator_hash
from sloengine.spec import LoadedSLO, load_paths
from sloengine.store import Store


def load_one(tmp: Path, spec: dict[str, Any], name: str = "s") -> LoadedSLO:
    doc = {"apiVersion": "sloengine/v1", "kind": "SLO",
           "metadata": {"name": name, "service": "svc", "owner": "t", "runbook": "http://r"},
           "spec": spec}
    f = tmp / f"{name}.yaml"
    f.write_text(yaml.safe_dump(doc))
    res = load_paths([f])
    assert not res.errors, res.errors
    return res.slos[0]


def put_buckets(store: Store, loaded: LoadedSLO, rows: list[tuple[str, int, float, float]]
                ) -> None:
    """rows: (group, minute, good, total) written into slo_buckets."""
    ih = indicator_hash(loaded.slo)
    name = loaded.slo.metadata.name
    for i in range(0, len(rows), 500):
        part = rows[i:i + 500]
        values = ", ".join("(?, ?, ?, ?, ?, ?)" for _ in part)
        params: list[Any] = []
        for g, m, good, total in part:
            params.extend([name, ih, g, m, good, total])
        store.exec_(f"INSERT INTO slo_buckets VALUES {values}", params)


def budget(target: float) -> float:
    return float(1 - Decimal(repr(target)))


def ref_sum(b: dict[int, tuple[float, float]], lo: int, hi: int) -> tuple[float, float]:
    g = sum(v[0] for m, v in b.items() if lo <= m < hi)
    n = sum(v[1] for m, v in b.items() if lo <= m < hi)
    return g, n


def ref_burn(b: dict[int, tuple[float, float]], t: int, w: int, target: float) -> float | None:
    g, n = ref_sum(b, t - w, t)
    return None if n == 0 else ((n - g) / n) / budget(target)


def ref_slices(b: dict[int, tuple[float, float]], t: int, w: int, s: int, slice_target: float
               ) -> tuple[int, int, float]:
    """(slices with data, bad slices, sum of ratios) over the w/s whole slices that end at
    the last slice boundary at or before t."""
    end = (t // s) * s
    first = (end - w) // s
    last = end // s - 1
    data = bad = 0
    rsum = 0.0
    for k in range(first, last + 1):
        g, n = ref_sum(b, k * s, (k + 1) * s)
        if n > 0:
            data += 1
            r = g / n
            rsum += r
            bad += r < slice_target
    return data, bad, rsum
