"""OpenSLO v1 documents as parsed (foreign) models, and the per-file index of named
documents that references resolve against (see openslo.py for the mapping)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

from pydantic import Field

from sloengine.spec.importers import (
    CamelForeign,
    Source,
    Text,
)

S = TypeVar("S")
METHODS = ("Occurrences", "Timeslices", "RatioTimeslices")
CALENDAR = {"1w": "week", "7d": "week", "week": "week", "1M": "month", "month": "month",
            "1Q": "quarter", "3M": "quarter", "quarter": "quarter"}
MINUTE = timedelta(minutes=1)


class OMeta(CamelForeign):
    name: Text
    display_name: Text | None = None
    labels: dict[str, Text | list[Text]] = Field(default_factory=dict)
    annotations: dict[str, Text] = Field(default_factory=dict)


class ODoc(CamelForeign):
    api_version: Text
    kind: Text
    metadata: OMeta
    spec: dict[str, Any] = Field(default_factory=dict)


class OMetricSource(CamelForeign):
    metric_source_ref: Text | None = None
    type: Text | None = None
    spec: dict[str, Any] = Field(default_factory=dict)


class OMetric(CamelForeign):
    metric_source: OMetricSource


class ORatio(CamelForeign):
    counter: bool | None = None
    good: OMetric | None = None
    bad: OMetric | None = None
    total: OMetric | None = None
    raw_type: Text | None = None
    raw: OMetric | None = None


class OSLISpec(CamelForeign):
    description: Text | None = None
    threshold_metric: OMetric | None = None
    ratio_metric: ORatio | None = None


class OInlineSLI(CamelForeign):
    metadata: OMeta | None = None
    spec: OSLISpec


class OCalendar(CamelForeign):
    start_time: Any = None
    time_zone: Text | None = None


class OTimeWindow(CamelForeign):
    duration: Text
    is_rolling: bool | None = None
    calendar: OCalendar | None = None


class OObjective(CamelForeign):
    display_name: Text | None = None
    op: Text | None = None
    value: float | Text | None = None
    target: float | None = None
    target_percent: float | None = None
    time_slice_target: float | None = None
    time_slice_window: Text | None = None
    indicator: dict[str, Any] | None = None
    indicator_ref: Text | None = None
    composite_weight: float | None = None


class OBurnRate(CamelForeign):
    kind: Text = "burnrate"
    op: Text | None = None
    threshold: float
    lookback_window: Text
    alert_after: Text | None = None


class OConditionSpec(CamelForeign):
    description: Text | None = None
    severity: Text | None = None
    condition: OBurnRate


class OConditionItem(CamelForeign):
    condition_ref: Text | None = None
    kind: Text | None = None
    metadata: OMeta | None = None
    spec: OConditionSpec | None = None


class OPolicySpec(CamelForeign):
    description: Text | None = None
    alert_when_no_data: bool | None = None
    alert_when_breaching: bool | None = None
    alert_when_resolved: bool | None = None
    conditions: list[OConditionItem] = Field(default_factory=list)
    notification_targets: list[Any] = Field(default_factory=list)


class OPolicyItem(CamelForeign):
    alert_policy_ref: Text | None = None
    kind: Text | None = None
    metadata: OMeta | None = None
    spec: OPolicySpec | None = None


class OSLOSpec(CamelForeign):
    description: Text | None = None
    service: Text | None = None
    indicator: OInlineSLI | None = None
    indicator_ref: Text | None = None
    budgeting_method: Text | None = None
    time_window: list[OTimeWindow] = Field(default_factory=list)
    objectives: list[OObjective] = Field(default_factory=list)
    alert_policies: list[Text | OPolicyItem] = Field(default_factory=list)


class ODataSourceSpec(CamelForeign):
    description: Text | None = None
    type: Text | None = None
    connection_details: Any = None


class OOtherSpec(CamelForeign):
    """Service and AlertNotificationTarget: nothing of theirs reaches the native model."""

    description: Text | None = None
    target: Any = None


SPECS: dict[str, type[CamelForeign]] = {
    "SLO": OSLOSpec, "SLI": OSLISpec, "AlertPolicy": OPolicySpec,
    "AlertCondition": OConditionSpec, "DataSource": ODataSourceSpec, "Service": OOtherSpec,
    "AlertNotificationTarget": OOtherSpec,
}


@dataclass(slots=True)
class Ref(Generic[S]):
    """A named document of the file with its parsed spec (None when it did not parse)."""

    meta: OMeta
    src: Source
    spec: S | None


@dataclass(slots=True)
class Index:
    docs: dict[str, dict[str, Ref[Any]]] = field(default_factory=dict)
    used: set[tuple[str, str]] = field(default_factory=set)

    def get(self, kind: str, name: str) -> Ref[Any] | None:
        ref = self.docs.get(kind, {}).get(name)
        if ref is not None:
            self.used.add((kind, name))
        return ref


