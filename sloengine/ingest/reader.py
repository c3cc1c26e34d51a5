"""Files in, chunks out: find the files, detect each one's format and signal, and decode it
into bounded chunks (columns + dead letters), redacted. No database here."""

from __future__ import annotations

import glob
import gzip
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
from google.protobuf.message import DecodeError as ProtoDecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from sloengine.errors import DecodeError
from sloengine.ingest.accesslog import AccessLogMapping, BadAccessLine, add_access_line
from sloengine.ingest.context import DecodeOptions, DecodeState
from sloengine.ingest.logs import LogColumns, decode_logs_request, finish_logs
from sloengine.ingest.metrics import decode_metrics_request
from sloengine.ingest.otlp_json import JsonDecoder, decode_json_doc
from sloengine.ingest.redact import TEXT_COLUMNS, Redactor
from sloengine.ingest.resources import assign_ids
from sloengine.ingest.salvage import salvage
from sloengine.ingest.traces import decode_trace_request
from sloengine.model import Chunk, Format, SourceInfo

PROTO_EXT = (".pb", ".binpb", ".protobuf", ".proto.bin")
JSON_EXT = (".json",)
JSONL_EXT = (".jsonl", ".ndjson", ".log")
KNOWN_EXT = PROTO_EXT + JSON_EXT + JSONL_EXT

_SIGNAL_KEYS = {"resourceSpans": "traces", "resourceLogs": "logs", "resourceMetrics": "metrics"}
_REQUESTS: dict[str, Any] = {
    "traces": ExportTraceServiceRequest,
    "logs": ExportLogsServiceRequest,
    "metrics": ExportMetricsServiceRequest,
}
_SALVAGE: dict[str, Any] = {
    "traces": (
        (ExportTraceServiceRequest, trace_pb2.ResourceSpans, trace_pb2.ScopeSpans, trace_pb2.Span),
        ("resourceSpans", "scopeSpans", "spans"),
    ),
    "logs": (
        (ExportLogsServiceRequest, logs_pb2.ResourceLogs, logs_pb2.ScopeLogs, logs_pb2.LogRecord),
        ("resourceLogs", "scopeLogs", "logRecords"),
    ),
    "metrics": (
        (
            ExportMetricsServiceRequest,
            metrics_pb2.ResourceMetrics,
            metrics_pb2.ScopeMetrics,
            metrics_pb2.Metric,
        ),
        ("resourceMetrics", "scopeMetrics", "metrics"),
    ),
}


@dataclass(frozen=True)
class ReadOptions:
    """Decoding options plus the redaction and access-log rules."""

    decode: DecodeOptions
    redactor: Redactor
    access_log: AccessLogMapping = field(default_factory=AccessLogMapping)


def expand(paths: Iterable[str], skipped: list[Path] | None = None) -> list[Path]:
    """Files named directly, every known file under a folder (sorted), and glob matches.

    Inside folders, ``.json`` files that are not OTLP (a README's sidecar, an incidents list)
    are not telemetry: they are listed in ``skipped`` instead of being dead-lettered. A file
    named directly is always read.
    """
    out: list[Path] = []
    seen: set[Path] = set()
    for p in paths:
        if _is_glob(p):
            matches = [Path(m) for m in sorted(glob.glob(p, recursive=True))]
        else:
            matches = [Path(p)]
        if not matches:
            raise DecodeError("no file matches this pattern", where=p)
        for m in matches:
            if m.is_dir():
                found = sorted(f for f in m.rglob("*") if f.is_file() and _known(f))
                files = [f for f in found if _telemetry(f)]
                if skipped is not None:
                    skipped.extend(f for f in found if f not in files)
            elif m.exists():
                files = [m]
            else:
                raise DecodeError("no such file or folder", where=str(m))
            for f in files:
                r = f.resolve()
                if r not in seen:
                    seen.add(r)
                    out.append(f)
    return out


def _is_glob(p: str) -> bool:
    return any(ch in p for ch in "*?[")


def _telemetry(f: Path) -> bool:
    if not f.name.lower().removesuffix(".gz").endswith(JSON_EXT):
        return True
    with _open(f) as fh:
        return _json_signal(fh.read(4096)) is not None


def _known(f: Path) -> bool:
    name = f.name.lower().removesuffix(".gz")
    return name.endswith(KNOWN_EXT)


def sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def _open(path: Path) -> IO[bytes]:
    with path.open("rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _signal_hint(name: str) -> str | None:
    n = name.lower()
    for hint, signal in (("trace", "traces"), ("span", "traces"), ("log", "logs"),
                         ("metric", "metrics")):
        if hint in n:
            return signal
    return None


def detect(path: Path) -> tuple[Format, str]:
    """The format and signal of a file, from its name and its first bytes."""
    name = path.name.lower().removesuffix(".gz")
    with _open(path) as fh:
        head = fh.read(65536)
    first = head.lstrip()[:1]
    if name.endswith(PROTO_EXT) or (first not in (b"{", b"[") and head):
        hint = _signal_hint(name)
        if hint is None:
            with _open(path) as fh:
                hint = _best_signal(fh.read())
        return "otlp-proto", hint
    if name.endswith(JSON_EXT):
        return "otlp-json", _json_signal(head) or _signal_hint(name) or "unknown"
    line = head.lstrip().split(b"\n", 1)[0]
    sig = _json_signal(line)
    if sig is not None:
        return "otlp-jsonl", sig
    return "jsonl-log", "logs"


def _json_signal(head: bytes) -> str | None:
    for key, signal in _SIGNAL_KEYS.items():
        if f'"{key}"'.encode() in head[:4096]:
            return signal
    return None


def source_info(path: Path) -> SourceInfo:
    fmt, signal = detect(path)
    digest, size = sha256_file(path)
    return SourceInfo(str(path), fmt, signal, digest, size)


def read_file(path: Path, info: SourceInfo, opts: ReadOptions) -> Iterator[Chunk]:
    """Decode one file into redacted chunks."""
    state = DecodeState(opts.decode)
    if info.format == "otlp-proto":
        with _open(path) as fh:
            data = fh.read()
        chunks = decode_proto(data, info.signal, state)
    elif info.format == "otlp-json":
        with _open(path) as fh:
            data = fh.read()
        chunks = decode_json(data, info.signal, state)
    elif info.format == "otlp-jsonl":
        chunks = _otlp_lines(_open(path), info.signal, state)
    else:
        chunks = _access_lines(_open(path), opts.access_log, state)
    for chunk in chunks:
        yield finish_chunk(chunk, opts.redactor)


def finish_chunk(chunk: Chunk, redactor: Redactor) -> Chunk:
    """What every decoded chunk goes through before it is stored, wherever it was decoded:
    redaction, then the ids of its resources (ingest/resources.py: computed from the
    redacted values)."""
    for name in ("spans", "span_events", "resources", "logs", "metric_points"):
        tbl = getattr(chunk, name)
        if tbl is not None and tbl.num_rows:
            tbl, n = redactor.apply(tbl, TEXT_COLUMNS[name])
            setattr(chunk, name, tbl)
            if n:
                chunk.warnings.append(f"redacted {n} value(s) in {name}")
    return assign_ids(chunk)


def _best_signal(data: bytes) -> str:
    """For protobuf without a name hint: the request type whose records look real."""
    scores: dict[str, int] = {}
    for signal, cls in _REQUESTS.items():
        req = cls()
        try:
            req.ParseFromString(data)
        except ProtoDecodeError:
            scores[signal] = -1
            continue
        score = 0
        if signal == "traces":
            score = sum(len(sp.trace_id) == 16 for rs in req.resource_spans
                        for ss in rs.scope_spans for sp in ss.spans)
        elif signal == "logs":
            score = sum(lr.time_unix_nano > 0 or lr.HasField("body") for rl in req.resource_logs
                        for sl in rl.scope_logs for lr in sl.log_records)
        else:
            score = sum(bool(m.name) and m.WhichOneof("data") is not None
                        for rm in req.resource_metrics for sm in rm.scope_metrics
                        for m in sm.metrics)
        scores[signal] = score
    return max(scores, key=lambda s: scores[s])


def decode_proto(data: bytes, signal: str, state: DecodeState) -> Iterator[Chunk]:
    """A protobuf OTLP request body → chunks; a body that does not parse is salvaged."""
    if signal not in _REQUESTS:
        signal = _best_signal(data)
    req = _REQUESTS[signal]()
    try:
        req.ParseFromString(data)
    except ProtoDecodeError:
        classes, names = _SALVAGE[signal]
        req = salvage(data, classes, names, state, signal)
    yield from _decode_request(req, signal, state)


def _decode_request(req: Any, signal: str, state: DecodeState) -> Iterator[Chunk]:
    if signal == "traces":
        return decode_trace_request(req, state)
    if signal == "logs":
        return decode_logs_request(req, state)
    return decode_metrics_request(req, state)


_JSON_SIGNALS = frozenset(_SIGNAL_KEYS.values())


def decode_json(data: bytes, signal: str, state: DecodeState, where: str = "") -> Iterator[Chunk]:
    """An OTLP/JSON request body → chunks."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        state.reject(where.rstrip(": ") or "document", f"invalid JSON: {exc}", data, signal)
        yield Chunk(dead_letters=state.take()[0])
        return
    if not isinstance(doc, dict):
        state.reject(where.rstrip(": ") or "document", "OTLP/JSON body must be an object",
                     data, signal)
        yield Chunk(dead_letters=state.take()[0])
        return
    sig = next((s for k, s in _SIGNAL_KEYS.items() if k in doc), signal)
    if sig not in _JSON_SIGNALS:
        state.reject(where.rstrip(": ") or "document",
                     "not an OTLP request: no resourceSpans/resourceLogs/resourceMetrics",
                     data, signal)
        yield Chunk(dead_letters=state.take()[0])
        return
    yield from decode_json_doc(doc, sig, state, where)


def _otlp_lines(fh: IO[bytes], signal: str, state: DecodeState, first_line: int = 1
                ) -> Iterator[Chunk]:
    """Collector file-exporter JSON Lines: one OTLP request per line, into chunks of
    ``chunk_records`` records. ``first_line``: the number of the first line (a slice of a
    file, parallel.py)."""
    dec = JsonDecoder(state)
    with fh:
        for n, line in enumerate(fh, first_line):
            if not line.strip():
                continue
            where = f"line {n}"
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                state.reject(where, f"invalid JSON: {exc}", line.rstrip(b"\n"), signal)
                continue
            sig = next((s for k, s in _SIGNAL_KEYS.items() if isinstance(doc, dict) and k in doc),
                       None)
            if sig is None:
                state.reject(where, "not an OTLP request: no resourceSpans/resourceLogs/"
                             "resourceMetrics", line.rstrip(b"\n"), signal)
                continue
            yield from dec.add(doc, sig, where + ": ")
    yield from dec.finish()


def _access_lines(fh: IO[bytes], mapping: AccessLogMapping, state: DecodeState,
                  first_line: int = 1) -> Iterator[Chunk]:
    """Non-OTLP JSON-lines access log → log columns."""
    limit = state.options.chunk_records
    corr_rank = {k: i for i, k in enumerate(state.options.correlation_keys)}
    out = LogColumns()
    with fh:
        for n, line in enumerate(fh, first_line):
            text = line.rstrip(b"\r\n")
            if not text.strip():
                continue
            try:
                obj = orjson.loads(text)
                add_access_line(out, obj, text.decode("utf-8"), mapping, state, corr_rank)
            except orjson.JSONDecodeError as exc:
                state.reject(f"line {n}", f"invalid JSON: {exc}", text, "logs")
            except (BadAccessLine, UnicodeDecodeError) as exc:
                state.reject(f"line {n}", str(exc), text, "logs")
            if out.n >= limit:
                yield finish_logs(out, state)
                out = LogColumns()
    if out.n or state.dead_letters or state.warnings:
        yield finish_logs(out, state)
