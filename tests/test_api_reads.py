"""GET /api/v1/slos reads the newest stored evaluation on the store's reader connection: it
answers while the writer's lock is held (a long spool drain or evaluation), and it sees what
the writer commits, never what it has not committed yet."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from api_helpers import api


def test_state_read_does_not_wait_for_the_writer(tmp_path: Path) -> None:
    with api(tmp_path) as a:
        auth = a.auth("oncall")
        before = a.client.get("/api/v1/slos", headers=auth)
        assert before.status_code == 200
        names = {r["name"] for r in before.json()["results"]}
        assert "gateway-availability" in names
        held, release = threading.Event(), threading.Event()

        def writer() -> None:  # holds the engine lock inside an open transaction
            with a.service.lock, a.engine.store.transaction():
                a.engine.store.exec_("DELETE FROM slo_evaluations")
                held.set()
                release.wait(30)
                raise RuntimeError("roll back")

        t = threading.Thread(target=lambda: _swallow(writer))
        t.start()
        try:
            assert held.wait(10)
            answers: list[Any] = []
            reader = threading.Thread(
                target=lambda: answers.append(a.client.get("/api/v1/slos", headers=auth)))
            reader.start()
            reader.join(20)  # the lock is still held: a locked read would still wait
            answered_while_locked = bool(answers)
            release.set()  # let the writer go before asserting, so a failure cannot hang
            t.join(10)
            reader.join(30)
            assert answered_while_locked, "GET /api/v1/slos waited for the writer's lock"
            during = answers[0]
            assert during.status_code == 200
            assert during.json()["results"] == before.json()["results"]  # not the delete
        finally:
            release.set()
            t.join(10)
        # a locked read still works once the writer is done
        assert a.client.get("/api/v1/slos/gateway-availability", headers=auth).status_code == 200


def _swallow(fn: Callable[[], None]) -> None:
    with contextlib.suppress(RuntimeError):
        fn()
