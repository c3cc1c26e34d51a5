"""Importers: OpenSLO v1, Sloth prometheus/v1 and Google slo-generator sre.google.com/v2
documents → native ``sloengine/v1`` dicts (validated by the loader like any native file).

Each importer first parses its format into small pydantic models (ARCHITECTURE.md rule 3),
then builds the native dict together with a line map from native field paths to the source
lines they came from: the loader's validation errors and the checks then point at the
source document. Unknown keys of a foreign format are warnings (we never drop silently),
unsupported constructs are errors that drop the SLO, approximations are warnings; nothing
raises.

The formats live in ``openslo.py``, ``sloth.py`` and ``slogen.py``; this module holds the
entry points the loader calls and the machinery they share.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from sloengine.spec.loader import Diagnostic, DocContext

Path = tuple[Any, ...]
Native = dict[str, Any]
M = TypeVar("M", bound=BaseModel)


def convert(origin: str, doc: dict[str, Any], ctx: DocContext,
            diagnostics: list[Diagnostic]) -> list[tuple[Native, DocContext]]:
    """One Sloth or slo-generator document → native dicts (a Sloth file holds many SLOs)."""
    sink = Sink(diagnostics)
    if origin == "sloth":
        from sloengine.spec import sloth

        return sloth.convert(doc, Source(ctx, sink))
    if origin == "slo-generator":
        from sloengine.spec import slogen

        return slogen.convert(doc, Source(ctx, sink))
    Source(ctx, sink).error(("apiVersion",), f"no importer for {origin!r}")
    return []


def convert_openslo(docs: list[tuple[dict[str, Any], DocContext]],
                    diagnostics: list[Diagnostic]) -> list[tuple[Native, DocContext]]:
    """All OpenSLO documents of one file at once: SLO, SLI, AlertPolicy, AlertCondition and
    Service documents refer to each other by name (references do not cross files)."""
    from sloengine.spec import openslo

    sink = Sink(diagnostics)
    return openslo.convert([(data, Source(ctx, sink)) for data, ctx in docs])


# --- diagnostics ------------------------------------------------------------------------


@dataclass(slots=True)
class Sink:
    """Collects diagnostics once each (a shared SLI referenced twice reports once), and
    counts every error raised so a caller can tell whether its SLO failed."""

    out: list[Diagnostic]
    raised: int = 0
    seen: set[Diagnostic] = field(default_factory=set)

    def add(self, d: Diagnostic) -> None:
        if d.severity == "error":
            self.raised += 1
        if d not in self.seen:
            self.seen.add(d)
            self.out.append(d)


@dataclass(frozen=True, slots=True)
class Source:
    """A place in a source document: diagnostics about paths below it carry file and line."""

    ctx: DocContext
    sink: Sink

    def at(self, *path: Any) -> Source:
        return Source(self.ctx.at(*path), self.sink)

    def line(self, path: Path = ()) -> int | None:
        return self.ctx.line_of(path)

    def _emit(self, severity: str, path: Path, message: str) -> None:
        full = self.ctx.base + tuple(path)
        self.sink.add(Diagnostic(severity, self.ctx.file, self.ctx.line_of(path),
                                 ".".join(str(p) for p in full), message))

    def error(self, path: Path, message: str) -> None:
        self._emit("error", path, message)

    def warn(self, path: Path, message: str) -> None:
        self._emit("warning", path, message)


# --- parsing foreign documents ----------------------------------------------------------


def _text(v: Any) -> Any:
    """YAML scalars as text, the way Go's YAML decoders read them: 2 → "2", true → "true"."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    return v


Text = Annotated[str, BeforeValidator(_text)]


class Foreign(BaseModel):
    """Base of the models of foreign formats: keys as the format spells them (snake_case);
    unknown keys are reported by :func:`parse` as warnings, not rejected."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class CamelForeign(Foreign):
    """Foreign formats that spell keys in camelCase (OpenSLO, Kubernetes envelopes)."""

    model_config = ConfigDict(extra="ignore", frozen=True, alias_generator=to_camel)


def parse(cls: type[M], data: Any, src: Source) -> M | None:
    """Validate ``data`` (found at ``src``) into ``cls``; problems become diagnostics."""
    for path in _unknown_keys(data, cls, ()):
        src.warn(path, f"unknown key {path[-1]!r} ignored")
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = _real_loc(data, tuple(err["loc"]))
            if err["type"] == "missing":
                src.error(loc, f"missing required field {loc[-1]!r}")
            else:
                src.error(loc, str(err["msg"]))
        return None


def _real_loc(data: Any, loc: Path) -> Path:
    """Drop pydantic's union tags from an error location, keeping the keys of the document
    (and a final missing key)."""
    out: list[Any] = []
    node = data
    for i, part in enumerate(loc):
        if _has(node, part):
            node = node[part]
        elif not (i == len(loc) - 1 and isinstance(node, dict)):
            continue
        out.append(part)
    return tuple(out)


def _has(node: Any, part: Any) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _keys_of(name: str, info: Any) -> list[str]:
    va = info.validation_alias
    if isinstance(va, AliasChoices):
        return [c for c in va.choices if isinstance(c, str)]
    if isinstance(va, str):
        return [va]
    return [info.alias or name]


def _unknown_keys(data: Any, ann: Any, path: Path) -> Iterator[Path]:
    """Keys of ``data`` that the annotation ``ann`` (a model, list, dict, optional) ignores."""
    origin = get_origin(ann)
    if origin is Annotated:
        yield from _unknown_keys(data, get_args(ann)[0], path)
    elif origin in (Union, types.UnionType):
        models = [a for a in get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1:
            yield from _unknown_keys(data, models[0], path)
    elif origin is list and isinstance(data, list):
        for i, item in enumerate(data):
            yield from _unknown_keys(item, get_args(ann)[0], (*path, i))
    elif origin is dict and isinstance(data, dict):
        for k, item in data.items():
            yield from _unknown_keys(item, get_args(ann)[1], (*path, k))
    elif isinstance(ann, type) and issubclass(ann, BaseModel) and isinstance(data, dict):
        known: dict[str, Any] = {}
        for name, info in ann.model_fields.items():
            for key in _keys_of(name, info):
                known[key] = info.annotation
        for k, item in data.items():
            if k not in known:
                yield (*path, k)
            else:
                yield from _unknown_keys(item, known[k], (*path, k))


# --- building native documents ----------------------------------------------------------


@dataclass(slots=True)
class Lines:
    """Source line of each native field path, so the loader reports errors where the user
    wrote the value (possibly across documents of one file, e.g. an OpenSLO SLI)."""

    file: str
    origin: str
    lines: dict[Path, int] = field(default_factory=dict)

    def mark(self, native: Path, src: Source, path: Path = ()) -> None:
        line = src.line(path)
        if line is not None:
            self.lines[tuple(native)] = line

    def mark_tree(self, native: Path, src: Source, path: Path, value: Any) -> None:
        """Mark a value copied verbatim (a native event source): every nested key too."""
        self.mark(native, src, path)
        if isinstance(value, dict):
            for k, v in value.items():
                self.mark_tree((*native, k), src, (*path, k), v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.mark_tree((*native, i), src, (*path, i), v)

    def context(self) -> DocContext:
        return DocContext(self.file, dict(self.lines), (), self.origin)


def percent(value: float) -> float:
    """99.95 → 0.9995 exactly as written (decimal division, not 99.95 / 100 in binary)."""
    return float(Decimal(repr(float(value))) / 100)


def labels_to_owner(labels: dict[str, str], metadata: Native) -> None:
    """Labels ``owner`` and ``team`` also fill metadata.owner / metadata.team (they stay in
    the labels as well)."""
    for key in ("owner", "team"):
        if labels.get(key):
            metadata[key] = labels[key]
