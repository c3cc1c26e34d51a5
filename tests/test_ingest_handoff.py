"""Worker results travel as Arrow IPC files in shared memory (ingest/handoff.py): the tables
come back equal, nothing is left behind, a full directory falls back to the pipe, and the
directory of a killed writer is removed by the next one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from sloengine.ingest.handoff import Handoff, Shipped, receive, ship
from sloengine.model import Chunk


def _chunk() -> Chunk:
    spans = pa.table({"span_id": ["a", "b"], "attrs": pa.array(
        [[("k", "v")], []], pa.map_(pa.string(), pa.string()))})
    return Chunk(spans=spans, logs=pa.table({"body": ["x"]}), span_events=None,
                 warnings=["w"])


def test_tables_round_trip_and_leave_nothing(tmp_path: Path) -> None:
    h = Handoff(tmp_path)
    want = _chunk()
    [sent] = ship([_chunk()], h.dir)
    assert isinstance(sent.spans, Shipped) and isinstance(sent.logs, Shipped)
    assert sent.span_events is None and sent.warnings == ["w"]
    assert len(os.listdir(h.dir)) == 2
    [got] = receive([sent])
    assert got.spans.equals(want.spans) and got.logs.equals(want.logs)
    assert os.listdir(h.dir) == []  # unlinked once mapped; the table still reads
    assert got.spans.column("attrs").to_pylist() == [[("k", "v")], []]
    h.close()
    assert not Path(h.dir).exists()


def test_a_directory_that_cannot_take_the_file_falls_back_to_the_pipe(tmp_path: Path
                                                                        ) -> None:
    [sent] = ship([_chunk()], str(tmp_path / "missing"))
    assert isinstance(sent.spans, pa.Table) and sent.spans.equals(_chunk().spans)


def test_the_directory_of_a_dead_writer_is_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = tmp_path / f"sloengine-handoff-{int(dead.stdout)}-x"
    stale.mkdir()
    (stale / "t.spans.arrow").write_bytes(b"left over")
    mine = Handoff(tmp_path)
    other_live = tmp_path / f"sloengine-handoff-{os.getppid()}-y"
    other_live.mkdir()
    Handoff(tmp_path).close()
    assert not stale.exists() and other_live.exists() and Path(mine.dir).exists()
    mine.close()


def test_results_dropped_midway_leave_no_file(tmp_path: Path) -> None:
    from sloengine.ingest.handoff import discard

    h = Handoff(tmp_path)
    sent = ship([_chunk(), _chunk()], h.dir)
    assert len(os.listdir(h.dir)) == 4
    discard(sent)
    assert os.listdir(h.dir) == []
    h.close()
