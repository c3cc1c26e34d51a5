"""The receiver's durable spool: one fsync'd file per accepted OTLP/HTTP request.

The receiver answers 200 only after the batch is on disk, and the single writer stores it in
DuckDB later (backpressure, not loss). A file is written under ``tmp/``, fsync'd, renamed
into the spool folder and the folder fsync'd (rename is atomic; the folder's fsync makes the
new name durable), so after ``kill -9`` every acknowledged batch is a complete file and a
partial one was never acknowledged (``tmp/`` is cleared on start).

    <spool>/000000000042.otlp   MAGIC, one JSON header line, the request body (decompressed)
    <spool>/tmp/                 files being written
    <spool>/failed/              files that could not be stored (kept for a person to look at)

Each header carries the sha256 of the body, checked when the file is read back. Removing a
stored file is not fsync'd: a file that comes back after a crash is stored again, which the
store's dedup (same sha256 ⇒ a ``duplicate`` batch; same span ids ⇒ skipped) makes harmless.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from sloengine.errors import TerminalError, TransientError

MAGIC = b"SLOSPOOL1\n"
SUFFIX = ".otlp"


class SpoolFull(TransientError):
    """No room for another batch until the writer catches up (answer 429)."""


class SpoolCorrupt(TerminalError):
    """A spool file whose header or checksum does not hold (disk damage, a foreign file)."""


@dataclass(frozen=True, slots=True)
class SpoolMeta:
    """What the writer needs besides the body: how to decode it and whom it came from."""

    signal: str
    format: str
    sender: str
    sha256: str
    size: int
    received_at: float


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    name: str
    path: Path
    size: int


class Spool:
    """A folder of spooled batches with byte and batch limits; safe for many writer threads
    (the request handlers) and one reader (the drain)."""

    def __init__(self, root: Path, *, max_bytes: int, max_batches: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.max_batches = max_batches
        self._tmp = root / "tmp"
        self._failed = root / "failed"
        self._tmp.mkdir(parents=True, exist_ok=True)
        for part in self._tmp.iterdir():  # never acknowledged: the sender has retried
            part.unlink()
        self._lock = threading.Lock()
        entries = self.ready()
        self._count = len(entries)
        self._bytes = sum(e.size for e in entries)
        # names go on after every kept file (a set-aside one must not be overwritten)
        names = [e.name for e in entries]
        if self._failed.is_dir():
            names += [f.name for f in self._failed.iterdir() if f.name.endswith(SUFFIX)]
        self._seq = max((int(n.removesuffix(SUFFIX)) for n in names
                         if n.removesuffix(SUFFIX).isdigit()), default=0)

    # -- accounting ---------------------------------------------------------------------
    @property
    def batches(self) -> int:
        return self._count

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def has_room(self, size: int) -> bool:
        """Room for a batch of ``size`` bytes (an empty spool takes any one batch)."""
        return self._count < self.max_batches and (
            self._count == 0 or self._bytes + size <= self.max_bytes)

    def _reserve(self, size: int) -> int:
        with self._lock:
            if not self.has_room(size):
                raise SpoolFull(f"spool full: {self._count} batches, {self._bytes} bytes")
            self._count += 1
            self._bytes += size
            self._seq += 1
            return self._seq

    def _release(self, size: int) -> None:
        with self._lock:
            self._count -= 1
            self._bytes -= size

    # -- write --------------------------------------------------------------------------
    def put(self, body: bytes, *, signal: str, fmt: str, sender: str) -> SpoolEntry:
        """Write one batch durably; raises SpoolFull, or OSError when the disk refuses."""
        meta = SpoolMeta(signal, fmt, sender, hashlib.sha256(body).hexdigest(), len(body),
                         time.time())
        head = MAGIC + orjson.dumps(asdict(meta)) + b"\n"
        size = len(head) + len(body)
        seq = self._reserve(size)
        name = f"{seq:012d}{SUFFIX}"
        part = self._tmp / name
        try:
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                _write_all(fd, head)
                _write_all(fd, body)
                os.fsync(fd)
            finally:
                os.close(fd)
            final = self.root / name
            os.rename(part, final)
            _fsync_dir(self.root)
        except BaseException:
            part.unlink(missing_ok=True)
            self._release(size)
            raise
        return SpoolEntry(name, final, size)

    # -- read ---------------------------------------------------------------------------
    def ready(self) -> list[SpoolEntry]:
        """The spooled batches, oldest first."""
        out = []
        with os.scandir(self.root) as it:
            for e in it:
                if e.name.endswith(SUFFIX) and e.is_file():
                    out.append(SpoolEntry(e.name, Path(e.path), e.stat().st_size))
        out.sort(key=lambda e: e.name)
        return out

    def read(self, entry: SpoolEntry) -> tuple[bytes, SpoolMeta]:
        data = entry.path.read_bytes()
        if not data.startswith(MAGIC) or b"\n" not in data[len(MAGIC):]:
            raise SpoolCorrupt("not a spool file", where=str(entry.path))
        line, body = data[len(MAGIC):].split(b"\n", 1)
        try:
            fields: dict[str, Any] = orjson.loads(line)
            meta = SpoolMeta(**fields)
        except (orjson.JSONDecodeError, TypeError) as exc:
            raise SpoolCorrupt(f"bad header: {exc}", where=str(entry.path)) from None
        if len(body) != meta.size or hashlib.sha256(body).hexdigest() != meta.sha256:
            raise SpoolCorrupt("body does not match its sha256", where=str(entry.path))
        return body, meta

    def remove(self, entry: SpoolEntry) -> None:
        """The batch is stored: forget it."""
        entry.path.unlink(missing_ok=True)
        self._release(entry.size)

    def quarantine(self, entry: SpoolEntry) -> Path:
        """Move a batch that cannot be stored to ``failed/`` (out of the drain's way)."""
        self._failed.mkdir(exist_ok=True)
        target = self._failed / entry.name
        os.replace(entry.path, target)
        self._release(entry.size)
        return target


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
