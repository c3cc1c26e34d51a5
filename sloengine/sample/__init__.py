"""Deterministic sample telemetry for a layered shop platform (OTLP traces, logs, metrics).

``generate(out)`` writes a day-partitioned set (protobuf traces, OTLP/JSON Lines logs, a
JSON Lines gateway access log, OTLP/JSON metrics) plus ``incidents.json`` (SLO ground
truth), ``imperfections.json`` (planted forensics defects) and a ``README.md``. The same
arguments always produce byte-identical files.
"""

from __future__ import annotations

from .generator import (
    DEFAULT_DAYS,
    DEFAULT_METRIC_INTERVAL_S,
    DEFAULT_RATE,
    DEFAULT_SEED,
    DEFAULT_START,
    generate,
)
from .manifest import Defect, Incident, SampleCounts, SampleFile, SampleManifest

__all__ = [
    "DEFAULT_DAYS",
    "DEFAULT_METRIC_INTERVAL_S",
    "DEFAULT_RATE",
    "DEFAULT_SEED",
    "DEFAULT_START",
    "Defect",
    "Incident",
    "SampleCounts",
    "SampleFile",
    "SampleManifest",
    "generate",
]
