"""Reports: jinja2 templates → HTML pages (inline SVG charts, no JavaScript), Markdown, JSON.

Receives plain data — the ``sloengine.report/v1`` document that compute/report_doc.py builds
through the store — and only renders it (ARCHITECTURE.md: report imports errors, model, spec).
"""

from sloengine.report.render import FORMATS, render

__all__ = ["FORMATS", "render"]
