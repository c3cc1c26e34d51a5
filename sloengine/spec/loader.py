"""Read SLO files (native, OpenSLO, Sloth, slo-generator) into the one model, with errors and
warnings that name file, line and field."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from sloengine.errors import ConfigError
from sloengine.spec.model import SLO

SLO_EXT = (".yaml", ".yml", ".json")


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding about an SLO document."""

    severity: str  # error | warning
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        f = f" {self.field}:" if self.field else ""
        return f"{where}:{f} {self.severity}: {self.message}"


@dataclass(frozen=True, slots=True)
class LoadedSLO:
    slo: SLO
    file: str
    line: int
    #: content hash of the validated definition: every evaluation records it
    version: str
    origin: str  # sloengine/v1 | openslo/v1 | sloth | slo-generator


@dataclass(slots=True)
class LoadResult:
    slos: list[LoadedSLO] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]


@dataclass(frozen=True, slots=True)
class DocContext:
    """Where a document came from, to turn a field path into a line number."""

    file: str
    lines: dict[tuple[Any, ...], int]
    base: tuple[Any, ...] = ()
    origin: str = "sloengine/v1"

    def line_of(self, path: Iterable[Any]) -> int | None:
        p = self.base + tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get(())

    def at(self, *path: Any) -> DocContext:
        return DocContext(self.file, self.lines, self.base + path, self.origin)


def _line_map(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            out[(*path, key)] = k.start_mark.line + 1
            _line_map(v, (*path, key), out)
            out[(*path, key)] = k.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _line_map(v, (*path, i), out)


def read_documents(path: Path) -> list[tuple[Any, DocContext]]:
    """Every YAML document of a file with its line map (multi-document files allowed)."""
    text = path.read_text("utf-8")
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        datas = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}",
                          where=f"{path}:{mark.line + 1}" if mark else str(path)) from None
    out: list[tuple[Any, DocContext]] = []
    for node, data in zip(nodes, datas, strict=True):
        if node is None or data is None:
            continue
        lines: dict[tuple[Any, ...], int] = {}
        _line_map(node, (), lines)
        ctx = DocContext(str(path), lines)
        if isinstance(data, list):  # a YAML list of documents (OpenSLO's examples use it)
            out.extend((item, ctx.at(i)) for i, item in enumerate(data))
        else:
            out.append((data, ctx))
    return out


def version_of(slo: SLO) -> str:
    """Content hash of the definition (canonical JSON of the validated model)."""
    canon = orjson.dumps(slo.model_dump(mode="json", by_alias=True), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canon).hexdigest()[:16]


def _dispatch(doc: dict[str, Any]) -> str:
    api = str(doc.get("apiVersion", ""))
    kind = str(doc.get("kind", ""))
    if api == "sloengine/v1":
        return "sloengine/v1"
    if api.startswith("openslo/"):
        return "openslo/v1"
    if api.startswith("sloth.slok.dev/") or api == "prometheus/v1" or (
            doc.get("version") == "prometheus/v1"):
        return "sloth"
    if api.startswith("sre.google.com/"):
        return "slo-generator"
    if kind:
        return f"unknown apiVersion {api!r} (kind {kind!r})"
    return "unknown"


def load_paths(paths: Iterable[Path]) -> LoadResult:
    """Load every SLO document under the given files/folders; never raises for bad content."""
    from sloengine.spec import importers
    from sloengine.spec.checks import warnings_for

    result = LoadResult()
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.suffix in SLO_EXT and f.is_file()))
        elif p.exists():
            files.append(p)
        else:
            result.diagnostics.append(Diagnostic("error", str(p), None, "", "no such file"))
    for f in files:
        try:
            docs = read_documents(f)
        except ConfigError as exc:
            result.diagnostics.append(Diagnostic("error", str(f), None, "", str(exc.message)))
            continue
        openslo: list[tuple[dict[str, Any], DocContext]] = []
        for data, ctx in docs:
            if not isinstance(data, dict):
                result.diagnostics.append(Diagnostic("error", ctx.file, ctx.line_of(()), "",
                                                     "a document must be a mapping"))
                continue
            origin = _dispatch(data)
            if origin == "openslo/v1":
                openslo.append((data, ctx))
                continue
            if origin == "sloengine/v1":
                natives = [(data, ctx)]
            elif origin in ("sloth", "slo-generator"):
                natives = importers.convert(origin, data, ctx, result.diagnostics)
            else:
                result.diagnostics.append(Diagnostic(
                    "error", ctx.file, ctx.line_of(("apiVersion",)), "apiVersion",
                    f"not an SLO document: {origin}"))
                continue
            for native, nctx in natives:
                _validate(native, nctx, origin, result, warnings_for)
        if openslo:
            for native, nctx in importers.convert_openslo(openslo, result.diagnostics):
                _validate(native, nctx, "openslo/v1", result, warnings_for)
    names: dict[str, LoadedSLO] = {}
    for s in result.slos:
        other = names.get(s.slo.metadata.name)
        if other is not None:
            result.diagnostics.append(Diagnostic(
                "error", s.file, s.line, "metadata.name",
                f"duplicate SLO name {s.slo.metadata.name!r} (also in {other.file}:{other.line})"))
        names[s.slo.metadata.name] = s
    return result


def _validate(native: dict[str, Any], ctx: DocContext, origin: str, result: LoadResult,
              warnings_for: Callable[[SLO, DocContext], list[Diagnostic]]) -> None:
    try:
        slo = SLO.model_validate(native)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in _UNION_TAGS))
            result.diagnostics.append(Diagnostic(
                "error", ctx.file, ctx.line_of(loc), ".".join(str(p) for p in loc),
                _message(err, loc)))
        return
    result.slos.append(LoadedSLO(slo, ctx.file, ctx.line_of(()) or 1, version_of(slo), origin))
    result.diagnostics.extend(warnings_for(slo, ctx))


_UNION_TAGS = {"spans", "logs", "metrics", "prometheus", "ratio", "latency",
               "SpanSource", "LogSource", "MetricSource", "PromSource",
               "dict[str,union[str,int,float,bool,list[union[str,int,float,bool]],Cmp]]"}


def _message(err: Any, loc: tuple[Any, ...]) -> str:
    msg = str(err["msg"])
    if loc and loc[-1] == "target" and isinstance(err.get("input"), int | float):
        v = float(err["input"])
        if 1 < v < 100:
            return (f"target {err['input']} looks like a percentage; write it as a ratio "
                    f"({v / 100:g})")
    if err["type"] == "extra_forbidden":
        return f"unknown key {loc[-1]!r}"
    return msg
