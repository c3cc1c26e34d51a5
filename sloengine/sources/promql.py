"""PromQL → per-minute good/total counts: the query plan of one SLO (text only, no I/O).

Bucket minute m holds the events that ended in [m, m+1) (SLO-MATH.md "Windows"). A query is
read one of two ways, decided by Sloth's ``{{.window}}`` placeholder:

* **With the placeholder** (Sloth and slo-generator imports): the query yields the events of
  one window. The placeholder becomes ``1m`` and ``rate(`` becomes ``increase(`` (Prometheus
  defines ``increase`` as ``rate`` × range, so this is the same number times 60 s, as a count);
  the query is evaluated at the end of every minute, (m+1)·60 s, and its value is minute m's
  count. Exact when samples sit on minute boundaries (or on VictoriaMetrics, whose ``increase``
  does not extrapolate); otherwise Prometheus' extrapolated estimate.
* **Without it** (OpenSLO queries, kept as written; OpenSLO's ``counter: true``): the query yields
  a cumulative counter. It is evaluated at every minute boundary and minute m counts
  v((m+1)·60) − v(m·60) per result series; a drop is a reset and the new value is the increase
  (the rule the OTLP cumulative sums follow); a minute without both values counts nothing.
  Difference per series, so write ``http_requests_total{code="500"}``, not a ``sum(...)`` of
  counters (a sum hides the resets of its members).

Latency over a classic histogram: the ``total`` query is the histogram's series selector
(``name``, ``name_bucket`` or ``name_count`` with matchers, no functions). Per minute,
good = ``increase(name_bucket{le="<threshold>"}[1m])`` and total = ``increase(name_count[1m])``.
The threshold must be one of the bucket bounds: Prometheus only holds the cumulative count at
each ``le``; a value between two bounds needs both neighbours plus an assumption about the
distribution inside the bucket (the OTLP path interpolates linearly), which a portable PromQL
query over classic buckets cannot express — so no guess here. The error names the nearest
bounds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sloengine.errors import ConfigError

if TYPE_CHECKING:
    from sloengine.spec.model import SLO

Mode = Literal["increase", "cumulative"]

_PLACEHOLDER = re.compile(r"\{\{\s*\.window\s*\}\}")
_RATE = re.compile(r"(?<![A-Za-z0-9_:])rate\s*\(")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_SELECTOR = re.compile(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{(.*)\})?\s*$", re.DOTALL)
_LE = re.compile(r"(?:^|[,{\s])le\s*(?:=|!=|=~|!~)")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SUFFIXES = ("_bucket", "_count", "_sum")


@dataclass(frozen=True, slots=True)
class PromQuery:
    """One query and how to read its values (see the module docstring)."""

    expr: str
    mode: Mode


@dataclass(frozen=True, slots=True)
class Histogram:
    """A classic Prometheus histogram selected by ``base`` and label ``matchers``."""

    base: str
    matchers: str
    threshold: float  # seconds

    def bucket_selector(self) -> str:
        return f"{self.base}_bucket{{{self.matchers}}}"

    def queries(self, le_values: Sequence[str], group_by: Sequence[str]
                ) -> tuple[PromQuery, PromQuery]:
        """(good, total): ``le_values`` are the spellings of the threshold bound the server
        holds (``0.25``, or ``1`` and ``1.0`` from two client libraries)."""
        if len(le_values) == 1:
            le = f'le="{_escape(le_values[0])}"'
        else:
            le = 'le=~"' + "|".join(_escape(re.escape(v)) for v in le_values) + '"'
        sep = ", " if self.matchers.strip() else ""
        agg = f"sum by ({', '.join(group_by)}) " if group_by else "sum"
        good = f"{agg}(increase({self.base}_bucket{{{self.matchers}{sep}{le}}}[1m]))"
        total = f"{agg}(increase({self.base}_count{{{self.matchers}}}[1m]))"
        return PromQuery(good, "increase"), PromQuery(total, "increase")

    def matching(self, le_values: Sequence[str]) -> list[str]:
        """The spellings of ``le`` equal to the threshold; ConfigError naming the nearest
        bounds when the threshold is not a bucket bound."""
        bounds = sorted({v: _as_float(v) for v in le_values}.items(), key=lambda kv: kv[1])
        same = [v for v, f in bounds if f == self.threshold]
        if same:
            return same
        below = [v for v, f in bounds if f < self.threshold]
        above = [v for v, f in bounds if f > self.threshold]
        near = ", ".join(x for x in (below[-1:] + above[:1]))
        raise ConfigError(
            f"latency threshold {self.threshold:g}s is not a bucket bound of "
            f"{self.base} (nearest le: {near or 'none'}): PromQL has cumulative counts only at "
            "the bounds, so it cannot interpolate inside a bucket; choose one of the bounds")


@dataclass(frozen=True, slots=True)
class Plan:
    """What to ask for one SLO: ratio queries (total plus good or bad) or a histogram."""

    group_by: tuple[str, ...]
    total: PromQuery | None = None
    other: PromQuery | None = None
    other_is_bad: bool = False
    histogram: Histogram | None = None


def per_minute(query: str) -> PromQuery:
    """A spec query → the query evaluated at minute ends, and how to read its values."""
    if not _PLACEHOLDER.search(query):
        return PromQuery(query.strip(), "cumulative")
    text = _PLACEHOLDER.sub("1m", query)
    out, pos = [], 0
    for m in _STRING.finditer(text):  # leave label values alone
        out.append(_RATE.sub("increase(", text[pos:m.start()]))
        out.append(m.group())
        pos = m.end()
    out.append(_RATE.sub("increase(", text[pos:]))
    return PromQuery("".join(out).strip(), "increase")


def histogram_of(selector: str, threshold_s: float) -> Histogram:
    """``name{m}``, ``name_bucket{m}`` or ``name_count{m}`` → the histogram (base, m)."""
    m = _SELECTOR.match(selector)
    if m is None:
        raise ConfigError(
            f"latency over Prometheus needs the histogram's series selector, e.g. "
            f"http_request_duration_seconds{{job=\"api\"}}; got {selector!r}")
    name, matchers = m.group(1), (m.group(2) or "").strip().rstrip(",")
    if _LE.search(_STRING.sub('""', matchers)):
        raise ConfigError(f"{selector!r}: leave out the le matcher, the threshold sets it")
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return Histogram(name, matchers, threshold_s)


def plan(slo: SLO) -> Plan:
    # spec is loaded by whoever holds an SLO; importing it at module level would load it on
    # every CLI start (settings.py -> sources)
    from sloengine.spec.model import LatencyIndicator, PromSource

    ind = slo.spec.indicator
    where = f"SLO {slo.metadata.name}"
    group_by = tuple(slo.spec.group_by)
    for g in group_by:
        if not _LABEL.match(g):
            raise ConfigError(f"groupBy {g!r} is not a Prometheus label name", where=where)
    if not isinstance(ind.total, PromSource):
        raise ConfigError("not a Prometheus SLI", where=where)
    if isinstance(ind, LatencyIndicator):
        try:
            hist = histogram_of(ind.total.query, ind.threshold.total_seconds())
        except ConfigError as exc:
            raise ConfigError(exc.message, where=where) from None
        return Plan(group_by, histogram=hist)
    other = ind.good if ind.good is not None else ind.bad
    if not isinstance(other, PromSource):
        raise ConfigError("over Prometheus, good/bad must be a PromQL query too "
                          "(source: prometheus)", where=where)
    return Plan(group_by, per_minute(ind.total.query), per_minute(other.query),
                other_is_bad=ind.good is None)


def group_key(labels: Mapping[str, str], group_by: Sequence[str]) -> str:
    """``'route=/a,method=GET'`` as the SQL sources spell groups (compute/filters.py)."""
    return ",".join(f"{g}={labels.get(g, '')}" for g in group_by)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _as_float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return math.nan
