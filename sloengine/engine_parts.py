"""What the parts of the Engine façade (engine_ingest.py, engine_views.py) use of the
Engine: declared here so each part type-checks on its own; ``Engine`` (engine.py) defines
them. The façade is split by what it serves — ingest, the read side — to keep modules small
(ARCHITECTURE.md rule 9); there is still one Engine."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sloengine.ingest import DecodePool, ReadOptions
from sloengine.model import SloResult
from sloengine.settings import Settings
from sloengine.store import Store

if TYPE_CHECKING:  # spec (pydantic models, YAML) is not needed to ingest
    from sloengine.spec import LoadedSLO, LoadResult

Clock = Callable[[], datetime]


class EngineParts:
    settings: Settings
    clock: Clock
    #: who acts (OS user or "apikey:<id>") and the id of this invocation, in every audit
    #: entry it writes
    actor: str
    correlation_id: str
    store: Store
    _read_options: ReadOptions | None
    _decode_pool: DecodePool | None
    #: files a folder walk passed over because they are not telemetry
    last_skipped: list[Path]

    def audit(self, action: str, obj: str, outcome: str = "ok",
              detail: dict[str, Any] | None = None) -> None:
        raise NotImplementedError

    def load_slos(self, paths: Iterable[Path] | None = None, *, record: bool = True
                  ) -> LoadResult:
        raise NotImplementedError

    def _selected(self, slo: str | None) -> list[LoadedSLO]:
        raise NotImplementedError

    def materialize(self, slos: list[LoadedSLO]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _status(self, s: LoadedSLO, results: list[SloResult], t: int) -> list[SloResult]:
        raise NotImplementedError


def _unix_ns(t: datetime) -> int:
    """Exact unix nanoseconds of an aware datetime (no float rounding)."""
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000
