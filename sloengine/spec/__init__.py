"""SLO definitions: native sloengine/v1 YAML, OpenSLO v1, Sloth and slo-generator → one model."""

from sloengine.spec.durations import Duration, format_duration, parse_duration
from sloengine.spec.loader import Diagnostic, LoadedSLO, LoadResult, load_paths, version_of
from sloengine.spec.model import (
    SLO,
    AlertPolicy,
    AlertTier,
    Budgeting,
    Correction,
    LatencyIndicator,
    Objective,
    RatioIndicator,
    Window,
)
from sloengine.spec.policy import Tier, default_tiers, resolve

__all__ = [
    "SLO",
    "AlertPolicy",
    "AlertTier",
    "Budgeting",
    "Correction",
    "Diagnostic",
    "Duration",
    "LatencyIndicator",
    "LoadResult",
    "LoadedSLO",
    "Objective",
    "RatioIndicator",
    "Tier",
    "Window",
    "default_tiers",
    "format_duration",
    "load_paths",
    "parse_duration",
    "resolve",
    "version_of",
]
