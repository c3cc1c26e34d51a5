"""The API under test: a real app (FastAPI's TestClient in front of build_app) on a real
DuckDB file holding the checked-in sample platform data (sample_data/), with one API key per
role plus an expired and a revoked one.

The sample is ingested, caught up through the alert state machine and evaluated once per
test process, into a template file that each test module copies (ingest takes seconds)."""

from __future__ import annotations

import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from conftest import ROOT

from sloengine.api import Receiver, Spool, build_app
from sloengine.api.access import Buckets
from sloengine.api.app import StandIn
from sloengine.engine import Engine
from sloengine.settings import Settings, load_settings

with warnings.catch_warnings():  # Starlette's note that its TestClient will move off httpx
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

#: "now" for the engine under test: just after the four sample days
NOW = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
ROLES = ("admin", "sre", "oncall", "auditor", "ingest")
_TEMPLATE: list[Path] = []


def clock() -> datetime:
    return NOW


def settings_for(db: Path, work: Path, **http: Any) -> Settings:
    return load_settings(None, db=db, slo_dir=ROOT / "slo_definitions",
                         incidents_file=ROOT / "sample_data" / "incidents.json",
                         reports_dir=work / "reports", notify_file=work / "notify.yaml",
                         metrics_port=0, http={"rate_per_second": 1000, "rate_burst": 1000,
                                               **http})


def sample_db(dest: Path) -> Path:
    """A copy of the sample database (made once per process)."""
    if not _TEMPLATE:
        work = Path(tempfile.mkdtemp(prefix="sloengine-api-"))
        db = work / "sample.duckdb"
        with Engine(settings_for(db, work), clock=clock) as engine:
            engine.ingest([ROOT / "sample_data"])
            engine.catch_up(NOW - timedelta(days=1))
            engine.evaluate(NOW)
        _TEMPLATE.append(db)
    shutil.copy(_TEMPLATE[0], dest)
    return dest


@dataclass
class Api:
    client: TestClient
    engine: Engine
    keys: dict[str, str]
    ids: dict[str, str]
    service: StandIn

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"} if who in self.keys else {}


@contextmanager
def api(work: Path, *, failures: int = 1000, **http: Any) -> Iterator[Api]:
    """The app on a copy of the sample, keys for every role, 'expired' and 'revoked'.
    ``failures``: failed authentications an address may make at once (the service allows
    20; tests that walk bad keys through every route need more)."""
    db = sample_db(work / "api.duckdb")
    settings = settings_for(db, work, **http)
    engine = Engine(settings, clock=clock)
    keys, ids = {}, {}
    for role in ROLES:
        row, keys[role] = engine.create_key(role, f"{role} key")
        ids[role] = row.key_id
    row, keys["expired"] = engine.create_key("admin", "expired key", NOW - timedelta(days=1))
    ids["expired"] = row.key_id
    row, keys["revoked"] = engine.create_key("admin", "revoked key")
    ids["revoked"] = engine.revoke_key(row.key_id).key_id  # type: ignore[union-attr]
    lock = threading.RLock()
    spool = Spool(work / "spool", max_bytes=1 << 26, max_batches=1000)
    receiver = Receiver(engine, spool, lock, settings.http)
    service = StandIn(engine, lock, settings)
    app = build_app(receiver, service=service)
    app.state.access.failures = Buckets(1.0, failures)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Api(client, engine, keys, ids, service)
    finally:
        engine.close()
