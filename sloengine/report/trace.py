"""Render one request's story (the ``sloengine.trace/v1`` dict, forensics/contract.py) as a
self-contained HTML page: templates/trace.html.j2, inline CSS, no JavaScript. It takes the
plain dict, so report needs nothing from forensics (ARCHITECTURE.md boundaries)."""

from __future__ import annotations

from typing import Any

from sloengine.report.render import environment


def render_trace_html(story: dict[str, Any]) -> str:
    """Autoescaped: span names, attributes and log bodies are untrusted input."""
    return environment(True).get_template("trace.html.j2").render(t=story)
