"""Decoded chunks from worker processes to the writer through shared memory, not a pipe.

A worker's result went back pickled through the process pool's pipe: the Arrow buffers
were copied into a pickle, through the kernel, and out again, ~65 MiB per 122,880 spans —
about 2 CPU s per million spans in the writer alone (benchmarks/README.md). Instead the
worker writes each table as an Arrow IPC file into a directory on ``/dev/shm`` (memory; the
system temporary directory where there is none) and returns only its path; the writer maps
the file (no copy: the table's buffers are the mapped pages) and unlinks it at once, so the
memory goes back when the table is dropped.

A table that cannot be written (the directory is full: containers often give ``/dev/shm``
64 MiB) travels pickled as before. Files of results never received (an ingest stopped midway)
go with the directory when the pool closes; a directory left by a writer that was killed is
removed by the next one that starts (its name carries the writer's pid).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from sloengine.model import Chunk

_PREFIX = "sloengine-handoff-"
_TABLES = ("spans", "span_events", "resources", "logs", "metric_points")


@dataclass(frozen=True, slots=True)
class Shipped:
    """A table left in a file for the writer (what travels through the pipe instead)."""

    path: str


def base_dir() -> Path:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    return Path(tempfile.gettempdir())


class Handoff:
    """The writer's directory for one pool of workers; ``close`` removes it."""

    def __init__(self, base: Path | None = None) -> None:
        base = base or base_dir()
        _remove_stale(base)
        self.dir = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=base)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def ship(chunks: list[Chunk], directory: str | None) -> list[Chunk]:
    """In a worker: each table of ``chunks`` into a file of ``directory``, replaced by its
    ``Shipped`` path (tables that cannot be written stay as they are)."""
    if directory is None:
        return chunks
    for chunk in chunks:
        for name in _TABLES:
            tbl = getattr(chunk, name)
            if tbl is None or not tbl.num_rows:
                continue
            path = None
            try:
                fd, path = tempfile.mkstemp(suffix=f".{name}.arrow", dir=directory)
                with os.fdopen(fd, "wb") as fh, pa.ipc.new_file(fh, tbl.schema) as w:
                    w.write_table(tbl)
            except OSError:  # no room (or no directory): this one goes through the pipe
                if path is not None:
                    with contextlib.suppress(OSError):
                        os.unlink(path)
                continue
            setattr(chunk, name, Shipped(path))
    return chunks


def receive(chunks: list[Chunk]) -> list[Chunk]:
    """In the writer: the tables of ``chunks``, mapped from their files (then unlinked)."""
    for chunk in chunks:
        for name in _TABLES:
            ref = getattr(chunk, name)
            if isinstance(ref, Shipped):
                setattr(chunk, name, _load(ref.path))
    return chunks


def discard(chunks: list[Chunk]) -> None:
    """In the writer: drop results it will not store (an ingest stopped midway)."""
    for chunk in chunks:
        for name in _TABLES:
            ref = getattr(chunk, name)
            if isinstance(ref, Shipped):
                with contextlib.suppress(OSError):
                    os.unlink(ref.path)


def _load(path: str) -> Any:
    try:
        return pa.ipc.open_file(pa.memory_map(path, "r")).read_all()
    finally:
        os.unlink(path)  # the mapping keeps the pages until the table is dropped


def _remove_stale(base: Path) -> None:
    """Directories of writers that are gone (killed before they could clean up)."""
    for d in base.glob(f"{_PREFIX}*"):
        try:
            pid = int(d.name[len(_PREFIX):].split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not alive(pid):
            shutil.rmtree(d, ignore_errors=True)


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
