"""Forensics: request reconstruction, lineage, and the tamper-evident audit trail.

Request reconstruction: the story of one request across traces (correlation ids, span links
in both directions), its tree, critical path and error origin, honest flags for orphans and
clock skew, comparisons of two requests, and exemplars of an SLO's bad events.

Its SQL runs through the store's query API (ARCHITECTURE.md rule 2); it never imports
compute: the Engine hands it compiled predicates.
"""

from sloengine.forensics.compare import SCHEMA as COMPARE_SCHEMA
from sloengine.forensics.compare import compare, render_comparison
from sloengine.forensics.contract import SCHEMA as TRACE_SCHEMA
from sloengine.forensics.contract import story_json
from sloengine.forensics.exemplars import SCHEMA as TRACES_SCHEMA
from sloengine.forensics.exemplars import Exemplar, exemplars
from sloengine.forensics.gather import TraceNotFound
from sloengine.forensics.reconstruct import TraceOptions, reconstruct
from sloengine.forensics.story import ErrorOrigin, Key, LogLine, Skew, SpanNode, Story
from sloengine.forensics.waterfall import render_tree

__all__ = [
    "COMPARE_SCHEMA",
    "TRACES_SCHEMA",
    "TRACE_SCHEMA",
    "ErrorOrigin",
    "Exemplar",
    "Key",
    "LogLine",
    "Skew",
    "SpanNode",
    "Story",
    "TraceNotFound",
    "TraceOptions",
    "compare",
    "exemplars",
    "reconstruct",
    "render_comparison",
    "render_tree",
    "story_json",
]
