"""The one internal SLO model. Native ``sloengine/v1`` YAML maps onto it directly; OpenSLO,
Sloth and slo-generator documents are converted into it (importers.py). Strict: unknown keys
are errors (ARCHITECTURE.md rule 3)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from sloengine.spec.durations import Duration

Scalar = str | int | float | bool


class Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


#: Filter keys → the promoted column they test, per source. ``attr.<key>`` tests attributes.
SPAN_FIELDS = {
    "service": "service_name", "name": "name", "kind": "kind", "route": "http_route",
    "method": "http_method", "status_code": "http_status_code", "status": "status_code",
    "error": "is_error", "rpc_system": "rpc_system", "rpc_service": "rpc_service",
    "rpc_method": "rpc_method", "rpc_status": "rpc_status_code", "db_system": "db_system",
    "db_namespace": "db_namespace", "db_collection": "db_collection",
    "db_operation": "db_operation", "messaging_system": "messaging_system",
    "messaging_destination": "messaging_destination",
    "messaging_operation": "messaging_operation",
}
LOG_FIELDS = {
    "service": "service_name", "route": "http_route", "method": "http_method",
    "status_code": "http_status_code", "severity": "severity_number",
    "severity_text": "severity_text", "event_name": "event_name", "source_kind": "source_kind",
}
METRIC_FIELDS = {"service": "service_name"}


class Cmp(Strict):
    """A comparison on one field: ``{gte: 500}``, ``{in: [502, 503]}``, ``{prefix: "/api"}``."""

    eq: Scalar | None = None
    ne: Scalar | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    not_in: list[Scalar] | None = None
    prefix: str | None = None
    regex: str | None = None
    exists: bool | None = None

    @model_validator(mode="after")
    def _one_at_least(self) -> Cmp:
        if not self.model_fields_set:
            raise ValueError("a comparison needs at least one operator (eq, gte, in, ...)")
        return self


Condition = Scalar | list[Scalar] | Cmp
#: field → condition; all must hold (AND). Fields: see SPAN_FIELDS / LOG_FIELDS, or attr.<key>.
Filter = dict[str, Condition]


class SpanSource(Strict):
    source: Literal["spans"] = "spans"
    where: Filter = Field(default_factory=dict)


class LogSource(Strict):
    source: Literal["logs"]
    where: Filter = Field(default_factory=dict)


class MetricSource(Strict):
    """An OTLP metric: a Sum (counter) for ratios, a Histogram for latency."""

    source: Literal["metrics"]
    metric: str
    where: Filter = Field(default_factory=dict)


class PromSource(Strict):
    """A PromQL query (evaluated by the Prometheus source of the scheduled engine)."""

    source: Literal["prometheus"]
    query: str


EventSource = Annotated[SpanSource | LogSource | MetricSource | PromSource,
                        Field(discriminator="source")]


class RatioIndicator(Strict):
    """good/total or bad/total events. ``total`` selects the events; ``good`` or ``bad`` is an
    extra filter on them (spans/logs), or a separate series (metrics/prometheus)."""

    kind: Literal["ratio"] = "ratio"
    total: EventSource
    good: EventSource | Filter | None = Field(default=None, union_mode="left_to_right")
    bad: EventSource | Filter | None = Field(default=None, union_mode="left_to_right")

    @model_validator(mode="after")
    def _good_xor_bad(self) -> RatioIndicator:
        if (self.good is None) == (self.bad is None):
            raise ValueError("give exactly one of 'good' or 'bad'")
        return self


class LatencyIndicator(Strict):
    """An event is good when its duration ≤ threshold (spans, log latency fields, or histogram
    buckets)."""

    kind: Literal["latency"] = "latency"
    total: EventSource
    threshold: Duration


Indicator = Annotated[RatioIndicator | LatencyIndicator, Field(discriminator="kind")]


class Objective(Strict):
    name: str | None = None
    target: float = Field(gt=0, lt=1)
    #: Timeslices: a slice is good when its ratio ≥ this (defaults to target).
    time_slice_target: float | None = Field(default=None, gt=0, le=1)


class Window(Strict):
    """Rolling ``(t − P, t]`` or calendar-aligned (week/month/quarter in a time zone)."""

    rolling: Duration | None = None
    calendar: Literal["week", "month", "quarter"] | None = None
    time_zone: str = "UTC"

    @model_validator(mode="after")
    def _one(self) -> Window:
        if (self.rolling is None) == (self.calendar is None):
            raise ValueError("give exactly one of 'rolling' or 'calendar'")
        if self.rolling is not None and self.rolling % timedelta(minutes=1):
            raise ValueError("a rolling window must be whole minutes")
        return self

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(v)
        except Exception:
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    def nominal(self) -> timedelta:
        """The period length used to derive burn-rate thresholds (calendar: 7/30/90 days)."""
        if self.rolling is not None:
            return self.rolling
        return {"week": timedelta(days=7), "month": timedelta(days=30),
                "quarter": timedelta(days=90)}[self.calendar or "month"]


class Budgeting(Strict):
    """OpenSLO budgeting methods (SLO-MATH.md "Budgeting methods")."""

    method: Literal["Occurrences", "Timeslices", "RatioTimeslices"] = "Occurrences"
    time_slice_window: Duration | None = None

    @model_validator(mode="after")
    def _slices(self) -> Budgeting:
        if self.method != "Occurrences":
            sw = self.time_slice_window
            if sw is None:
                raise ValueError(f"{self.method} needs timeSliceWindow (e.g. 1m)")
            if sw % timedelta(minutes=1):
                raise ValueError("timeSliceWindow must be whole minutes")
        return self


class AlertTier(Strict):
    """One row of the multi-window multi-burn-rate table."""

    name: str
    severity: str = "page"
    long_window: Duration
    short_window: Duration
    #: Either the share of the period's budget spent within longWindow (SRE Workbook) ...
    budget_percent: float | None = Field(default=None, gt=0, le=100)
    #: ... or the burn-rate threshold itself.
    burn_rate: float | None = Field(default=None, gt=0)
    enabled: bool = True
    for_: Duration | None = Field(default=None, alias="for")
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _threshold(self) -> AlertTier:
        if (self.budget_percent is None) == (self.burn_rate is None):
            raise ValueError("give exactly one of 'budgetPercent' or 'burnRate'")
        if self.short_window >= self.long_window:
            raise ValueError("shortWindow must be shorter than longWindow")
        return self


class BudgetAlert(Strict):
    """Alert when this share of the budget is consumed (1.0 = exhausted)."""

    consumed: float = Field(gt=0)
    severity: str = "ticket"


class AlertPolicy(Strict):
    #: None: the SRE Workbook table derived for the SLO's period (see spec/policy.py).
    tiers: list[AlertTier] | None = None
    #: Fewer events than this in the long window: the tier stays quiet (low traffic).
    min_events: int = Field(default=10, ge=0)
    #: Fewer bad events than this in the short window: the tier stays quiet, so a single
    #: failure on a low-traffic service cannot page (1 = the SRE Workbook's plain rule).
    min_bad_events: int = Field(default=1, ge=1)
    budget: list[BudgetAlert] = Field(default_factory=lambda: [BudgetAlert(consumed=1.0)])
    labels: dict[str, str] = Field(default_factory=dict)


class Correction(Strict):
    """A maintenance window / correction excluded from the budget, recorded with who and why."""

    start: Any
    end: Any | None = None
    duration: Duration | None = None
    repeat: Literal["daily", "weekly"] | None = None
    until: Any | None = None
    reason: str
    author: str

    @model_validator(mode="after")
    def _span(self) -> Correction:
        if (self.end is None) == (self.duration is None):
            raise ValueError("give exactly one of 'end' or 'duration'")
        return self


class Metadata(Strict):
    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9\-_.]*[a-z0-9])?$", max_length=120)
    service: str
    owner: str | None = None
    team: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    runbook: str | None = None
    description: str | None = None
    display_name: str | None = None


class SloSpec(Strict):
    indicator: Indicator
    group_by: list[str] = Field(default_factory=list)
    objectives: list[Objective] = Field(min_length=1)
    window: Window
    budgeting: Budgeting = Budgeting()
    alerting: AlertPolicy = AlertPolicy()
    corrections: list[Correction] = Field(default_factory=list)


class SLO(Strict):
    api_version: Literal["sloengine/v1"]
    kind: Literal["SLO"]
    metadata: Metadata
    spec: SloSpec
