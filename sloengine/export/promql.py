"""PromQL for one SLO: the engine's error ratio over every window, written for Prometheus.

Two kinds of SLO can be exported (anything else is skipped with a reason):

1. **PromQL SLOs** (``source: prometheus``: Sloth files, slo-generator, OpenSLO queries),
   read as the engine's Prometheus source reads them (sources/promql.py):

   - a query with Sloth's ``{{.window}}`` placeholder gives the events of one window: it is
     used as written with the placeholder replaced by each window (``5m``, ``1h``, ``3d``);
   - a query without it is a cumulative counter: ``increase(Q[W])`` for a series selector,
     ``increase((Q)[W:1m])`` (minute steps, as the engine samples it) for an expression,
     summed by the group-by labels;
   - latency over a classic histogram (the selector of ``name``, ``name_bucket`` or
     ``name_count``): good = ``increase(name_bucket{le="<threshold>"}[W])``, total =
     ``increase(name_count[W])``; ``le`` matches both spellings of a whole number (``1``
     from Go clients, ``1.0`` from Python ones). The threshold must be a bucket bound, as the
     engine requires.

   Error ratio = bad / total, or 1 − good / total. Events in a window (for ``minEvents`` /
   ``minBadEvents``) are the query itself when it uses ``increase(...)``, or the query × the
   window in seconds when it uses ``rate(...)``; a query that uses both (or neither) has no
   known unit and those two guards are left out (a note says so). Group-by labels are
   whatever a placeholder query keeps (``sum by``).

2. **Engine SLOs** (``spans``, ``logs``, ``metrics`` sources): their good/bad decision
   (filters, latency thresholds, histogram interpolation) stays in the engine, which exposes
   one counter per SLO and group::

       sloengine_slo_events_total{slo="<metadata.name>", good="true"|"false", <group labels>}

   where ``<group labels>`` are the SLO's ``groupBy`` fields as labels, the name sanitised to
   ``[a-zA-Z0-9_]`` (``route`` → ``route``, ``attr.http.route`` → ``attr_http_route``). The
   counter has no ``objective`` label: whether an event is good does not depend on the
   objective (targets only move thresholds). Both ``good`` series of a group must exist
   from its first event (initialised at 0), else the ratio is absent instead of 0. The rules
   compute ``increase()`` of it over each window, so they give no data until a process
   exposes that counter (the contract is this docstring).

Budgeting methods (SLO-MATH.md) as the engine computes them, over slices of S:

- Occurrences: e(W) = bad(W) / total(W).
- Timeslices: e(W) = bad slices / slices with events, from a subquery ``[W:S]`` whose steps
  are aligned to multiples of S, each step holding that slice's ratio; a slice is bad when
  its good ratio < ``timeSliceTarget`` (default: the target). The engine counts only whole
  slices, ⌊W / S⌋ of them: a window shorter than one slice has no data there, so its tier
  never fires and is not exported. Budget remaining = 1 − bad slices(P) / (B × P / S).
  (Prometheus 2.x ranges are closed on the left: at a time that falls exactly on a slice
  boundary the subquery holds one slice more. Rule groups evaluate at a fixed offset inside
  their interval, so this only happens when that offset is 0.)
- RatioTimeslices: e(W) = the mean of the slice error ratios (slices with events).

What Prometheus cannot do the same way is noted per SLO (``SloPlan.notes``): calendar periods
become rolling periods of their nominal length, and corrections are not applied.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Literal

from sloengine.spec import SLO, LatencyIndicator, Tier, format_duration, resolve
from sloengine.spec.model import PromSource

EVENTS_METRIC = "sloengine_slo_events_total"
BUDGET_REMAINING = "slo:error_budget_remaining:ratio"
PLACEHOLDER = re.compile(r"\{\{\s*\.window\s*\}\}")
_INCREASE = re.compile(r"\bincrease\s*\(")
_RATE = re.compile(r"\b(?:rate|irate)\s*\(")
_SELECTOR = re.compile(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{(.*)\})?\s*$", re.DOTALL)
_WINDOW = "{{.window}}"

Counting = Literal["increase", "rate"] | None


class Unsupported(Exception):
    """This SLO has no Prometheus form; the message says why."""


def dur(td: timedelta) -> str:
    """A Prometheus duration (``5m``, ``1h30m``, ``3d``)."""
    return format_duration(td)


def ratio_metric(w: timedelta) -> str:
    return f"slo:sli_error:ratio_rate{dur(w)}"


def total_metric(w: timedelta) -> str:
    return f"slo:sli_total:increase{dur(w)}"


def bad_metric(w: timedelta) -> str:
    return f"slo:sli_bad:increase{dur(w)}"


def number(x: float) -> str:
    """Exact, short: ``14.4``, ``6``, ``0.9333333333333335`` (no rounding in the math)."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def quote(value: str) -> str:
    return json.dumps(value)


def label_name(key: str) -> str:
    name = re.sub(r"[^a-zA-Z0-9_]", "_", key)
    return "_" + name if name[:1].isdigit() else name


def error_budget(target: float) -> float:
    """1 − target as written (0.999 → 0.001), as compute/evaluate.py computes it."""
    return float(1 - Decimal(repr(target)))


def _counting(query: str) -> Counting:
    inc, rate = bool(_INCREASE.search(query)), bool(_RATE.search(query))
    if inc == rate:
        return None
    return "increase" if inc else "rate"


@dataclass(frozen=True, slots=True)
class Events:
    """Bad and total events of one SLO as PromQL, for any window."""

    source: Literal["prometheus", "engine"]
    slo: str
    total_q: str = ""
    bad_q: str | None = None
    good_q: str | None = None
    group_labels: tuple[str, ...] = ()

    def _q(self, template: str, w: timedelta) -> str:
        return PLACEHOLDER.sub(dur(w), template.strip())

    def _engine(self, w: timedelta, bad: bool) -> str:
        sel = f"slo={quote(self.slo)}" + (',good="false"' if bad else "")
        by = f" by ({', '.join(self.group_labels)}) " if self.group_labels else ""
        return f"sum{by}(increase({EVENTS_METRIC}{{{sel}}}[{dur(w)}]))"

    def ratio(self, w: timedelta) -> str:
        """The event error ratio over ``w``."""
        if self.source == "engine":
            return f"{self._engine(w, True)}\n/\n{self._engine(w, False)}"
        total = self._q(self.total_q, w)
        if self.bad_q is not None:
            return f"({self._q(self.bad_q, w)})\n/\n({total})"
        assert self.good_q is not None
        return f"1 - (\n  ({self._q(self.good_q, w)})\n  /\n  ({total})\n)"

    def _count(self, template: str, w: timedelta) -> str | None:
        mode = _counting(template)
        q = self._q(template, w)
        if mode == "increase":
            return f"({q})"
        if mode == "rate":
            return f"({q}) * {int(w.total_seconds())}"
        return None

    def total(self, w: timedelta) -> str | None:
        """Events in ``w`` (None: the query's unit is unknown)."""
        if self.source == "engine":
            return self._engine(w, False)
        return self._count(self.total_q, w)

    def bad(self, w: timedelta) -> str | None:
        if self.source == "engine":
            return self._engine(w, True)
        if self.bad_q is not None:
            return self._count(self.bad_q, w)
        assert self.good_q is not None
        total, good = self._count(self.total_q, w), self._count(self.good_q, w)
        if total is None or good is None:
            return None
        return f"{total} - {good}"


def _agg(group_by: list[str]) -> str:
    return f"sum by ({', '.join(group_by)}) " if group_by else "sum"


def _windowed(query: str, group_by: list[str]) -> str:
    """A query template over ``{{.window}}``: as written, or a cumulative counter's increase."""
    q = query.strip()
    if PLACEHOLDER.search(q):
        return q
    rng = f"{q}[{_WINDOW}]" if _SELECTOR.match(q) else f"({q})[{_WINDOW}:1m]"
    return f"{_agg(group_by)}(increase({rng}))"


def _histogram(query: str, threshold_s: float, group_by: list[str]) -> tuple[str, str]:
    """(good, total) templates of latency over a classic histogram."""
    m = _SELECTOR.match(query)
    if m is None:
        raise Unsupported(f"latency over PromQL needs the histogram's series selector, got "
                          f"{query.strip()!r}")
    name, matchers = m.group(1), (m.group(2) or "").strip().rstrip(",")
    if re.search(r"(?:^|[,{\s])le\s*(?:=|!=|=~|!~)", matchers):
        raise Unsupported(f"{query.strip()!r}: an le matcher (the threshold sets it)")
    for suffix in ("_bucket", "_count", "_sum"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if float(threshold_s).is_integer():
        le = f'le=~"{int(threshold_s)}|{int(threshold_s)}\\\\.0"'
    else:
        le = f'le="{threshold_s!r}"'
    sep = ", " if matchers else ""
    agg = _agg(group_by)
    return (f"{agg}(increase({name}_bucket{{{matchers}{sep}{le}}}[{_WINDOW}]))",
            f"{agg}(increase({name}_count{{{matchers}}}[{_WINDOW}]))")


def events_for(slo: SLO) -> Events:
    ind = slo.spec.indicator
    name = slo.metadata.name
    group_by = slo.spec.group_by
    if not isinstance(ind.total, PromSource):
        if any(isinstance(x, PromSource) for x in (getattr(ind, "good", None),
                                                   getattr(ind, "bad", None))):
            raise Unsupported("mixes a PromQL query with an engine source")
        return Events("engine", name, group_labels=tuple(label_name(g) for g in group_by))
    bad_label = next((g for g in group_by if label_name(g) != g), None)
    if bad_label is not None:
        raise Unsupported(f"groupBy {bad_label!r} is not a Prometheus label name")
    if isinstance(ind, LatencyIndicator):
        good, total = _histogram(ind.total.query, ind.threshold.total_seconds(), group_by)
        return Events("prometheus", name, total, good_q=good)
    other = ind.bad if ind.bad is not None else ind.good
    if not isinstance(other, PromSource):
        raise Unsupported("PromQL total with a filter for good/bad: no query to export")
    total = _windowed(ind.total.query, group_by)
    if ind.bad is not None:
        return Events("prometheus", name, total, bad_q=_windowed(other.query, group_by))
    return Events("prometheus", name, total, good_q=_windowed(other.query, group_by))


@dataclass(frozen=True, slots=True)
class ObjectivePlan:
    label: str  # the engine's objective name: ``name`` or the target (``0.999``)
    target: float
    slice_target: float
    budget: float
    selector: str  # {sloengine_slo="...",sloengine_objective="..."}
    labels: dict[str, str]


@dataclass(slots=True)
class SloPlan:
    """Everything the rule and dashboard writers need for one SLO."""

    slo: SLO
    events: Events
    tiers: list[Tier]
    windows: list[timedelta]  # tier windows the rules record, sorted
    period: timedelta
    objectives: list[ObjectivePlan]
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.slo.metadata.name

    @property
    def method(self) -> str:
        return self.slo.spec.budgeting.method

    @property
    def slice(self) -> timedelta | None:
        return self.slo.spec.budgeting.time_slice_window if self.method != "Occurrences" \
            else None

    def slice_range(self, w: timedelta) -> timedelta:
        """Whole slices in ``w``, as the engine counts them."""
        assert self.slice is not None
        return (w // self.slice) * self.slice

    def window_error(self, w: timedelta, obj: ObjectivePlan) -> str:
        """The engine's error ratio e(W) for this budgeting method."""
        if self.slice is None:
            return self.events.ratio(w)
        inner = _indent(self.events.ratio(self.slice), 4)
        sub = f"[{dur(self.slice_range(w))}:{dur(self.slice)}]"
        if self.method == "RatioTimeslices":
            return f"avg_over_time((\n  (\n{inner}\n  ) >= 0\n){sub})"
        return (f"sum_over_time((\n  1 - (\n{inner}\n  ) < bool {number(obj.slice_target)}\n)"
                f"{sub})\n/\ncount_over_time((\n  (\n{inner}\n  ) >= 0\n){sub})")

    def budget_remaining(self, obj: ObjectivePlan) -> str:
        b = number(obj.budget)
        if self.method != "Timeslices":
            return f"1 - {ratio_metric(self.period)}{obj.selector} / {b}"
        assert self.slice is not None
        inner = _indent(self.events.ratio(self.slice), 4)
        slices = self.period // self.slice
        return (f"1 - sum_over_time((\n  1 - (\n{inner}\n  ) < bool "
                f"{number(obj.slice_target)}\n)[{dur(self.period)}:{dur(self.slice)}])\n"
                f"/ ({b} * {slices})")


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


def plan_for(slo: SLO) -> SloPlan:
    """The plan for one SLO; raises Unsupported when it has no Prometheus form."""
    events = events_for(slo)
    spec = slo.spec
    notes: list[str] = []
    period = spec.window.nominal()
    if spec.window.calendar is not None:
        notes.append(f"calendar {spec.window.calendar} ({spec.window.time_zone}): Prometheus "
                     f"has no calendar alignment, the period is a rolling {dur(period)}")
    if spec.corrections:
        notes.append(f"{len(spec.corrections)} correction(s) not applied: Prometheus counts "
                     "those minutes")
    tiers = resolve(slo)
    disabled = [t.name for t in (spec.alerting.tiers or []) if not t.enabled]
    if disabled:
        notes.append(f"disabled tier(s) not exported: {', '.join(disabled)}")
    sl = spec.budgeting.time_slice_window if spec.budgeting.method != "Occurrences" else None
    if sl is not None:
        kept = []
        for t in tiers:
            if t.short_window < sl:
                notes.append(f"tier {t.name}: the {dur(t.short_window)} window holds no whole "
                             f"{dur(sl)} slice, the engine never fires it: not exported")
            else:
                kept.append(t)
        tiers = kept
    windows = sorted({t.long_window for t in tiers} | {t.short_window for t in tiers})
    objectives = []
    for o in spec.objectives:
        label = o.name or f"{o.target:g}"
        labels = {"sloengine_slo": slo.metadata.name, "sloengine_objective": label}
        sel = "{" + ",".join(f"{k}={quote(v)}" for k, v in labels.items()) + "}"
        objectives.append(ObjectivePlan(label, o.target, o.time_slice_target or o.target,
                                        error_budget(o.target), sel, labels))
    p = SloPlan(slo, events, tiers, windows, period, objectives, notes)
    al = spec.alerting
    if tiers and al.min_events > 0 and events.total(tiers[0].long_window) is None:
        notes.append("minEvents not applied: the total query is neither increase() nor rate()")
    if tiers and al.min_bad_events > 1 and events.bad(tiers[0].short_window) is None:
        notes.append("minBadEvents not applied: the bad query is neither increase() nor rate()")
    return p
