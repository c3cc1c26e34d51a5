"""Byte-stable file writing: gzip without timestamp or file name, one manifest row per file."""

from __future__ import annotations

import gzip
import hashlib
import io
from pathlib import Path

from .manifest import FileFormat, FileSignal, SampleFile

#: Patterns of files this generator owns (stale ones are removed before a run).
OWNED = (
    ("traces", "traces-*.binpb.gz"),
    ("logs", "service-logs-*.jsonl.gz"),
    ("access", "gateway-access-*.jsonl.gz"),
    ("metrics", "metrics-*.json"),
)


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip: ``mtime=0`` and an empty name field (RFC 1952 FNAME omitted)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="", compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


class Output:
    """Writes files under ``root`` and remembers what it wrote."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: list[SampleFile] = []
        root.mkdir(parents=True, exist_ok=True)
        for sub, pattern in OWNED:
            for stale in sorted((root / sub).glob(pattern)):
                stale.unlink()

    def write(
        self, rel: str, data: bytes, signal: FileSignal, fmt: FileFormat, *, gz: bool = False
    ) -> SampleFile:
        payload = gzip_bytes(data) if gz else data
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
        entry = SampleFile(rel, signal, fmt, len(payload), hashlib.sha256(payload).hexdigest())
        self.files.append(entry)
        return entry
