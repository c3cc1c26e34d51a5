"""Importers: OpenSLO v1, Sloth prometheus/v1 and Google slo-generator sre.google.com/v2
documents → native ``sloengine/v1`` dicts (validated by the loader like any native file)."""

from __future__ import annotations

from typing import Any

from sloengine.spec.loader import Diagnostic, DocContext


def convert(origin: str, doc: dict[str, Any], ctx: DocContext,
            diagnostics: list[Diagnostic]) -> list[tuple[dict[str, Any], DocContext]]:
    diagnostics.append(Diagnostic("error", ctx.file, ctx.line_of(()), "apiVersion",
                                  f"{origin} import is not implemented yet"))
    return []


def convert_openslo(docs: list[tuple[dict[str, Any], DocContext]],
                    diagnostics: list[Diagnostic]) -> list[tuple[dict[str, Any], DocContext]]:
    for _, ctx in docs:
        diagnostics.append(Diagnostic("error", ctx.file, ctx.line_of(()), "apiVersion",
                                      "openslo/v1 import is not implemented yet"))
    return []
