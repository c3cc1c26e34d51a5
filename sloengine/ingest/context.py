"""Per-source decoding context: options from settings and the dead letters found so far."""

from __future__ import annotations

from dataclasses import dataclass, field

from sloengine.ingest.semconv import DEFAULT_CORRELATION_KEYS
from sloengine.model import DeadLetter

ZERO_TRACE = bytes(16)
ZERO_SPAN = bytes(8)


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """What decoders need to know beyond the bytes."""

    correlation_keys: tuple[str, ...] = DEFAULT_CORRELATION_KEYS
    #: Records per chunk: bounds memory per batch whatever the input size.
    chunk_records: int = 50_000


@dataclass(slots=True)
class DecodeState:
    """Dead letters and warnings collected while decoding one chunk."""

    options: DecodeOptions = field(default_factory=DecodeOptions)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def reject(self, location: str, reason: str, raw: bytes, signal: str | None = None) -> None:
        self.dead_letters.append(DeadLetter(location, reason, raw, signal))

    def take(self) -> tuple[list[DeadLetter], list[str]]:
        dl, w = self.dead_letters, self.warnings
        self.dead_letters, self.warnings = [], []
        return dl, w


def trace_id_problem(tid: bytes) -> str | None:
    """Why a trace id is invalid (OTLP-NOTES.md §2), or None when it is valid."""
    if len(tid) != 16:
        return f"trace id must be 16 bytes, got {len(tid)}"
    if tid == ZERO_TRACE:
        return "trace id is all zeros"
    return None


def span_id_problem(sid: bytes) -> str | None:
    """Why a span id is invalid, or None when it is valid."""
    if len(sid) != 8:
        return f"span id must be 8 bytes, got {len(sid)}"
    if sid == ZERO_SPAN:
        return "span id is all zeros"
    return None
