"""Real Prometheus and Alertmanager servers for tests, on 127.0.0.1 with ports chosen at run
time, stopped afterwards (STACK-NOTES.md "Real servers for tests").

Locally a missing binary skips the test with the reason; with ``CI=true`` it fails instead,
so CI cannot go green without the servers (.ci/run installs them)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        msg = (f"{binary} is not installed (Debian packages prometheus, "
               "prometheus-alertmanager, chromium; .ci/run installs them)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server not ready at {url}: {log.read_text()[-2000:]}")


@contextmanager
def _running(proc: subprocess.Popen[bytes], ready_url: str, log: Path) -> Iterator[None]:
    """Wait until the server answers, and stop it afterwards whatever happens."""
    try:
        _wait_ready(ready_url, proc, log)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def prometheus(data_dir: Path, retention: str = "60d") -> Iterator[str]:
    """A Prometheus serving ``data_dir`` (e.g. blocks made by ``promtool tsdb
    create-blocks-from openmetrics``); yields its base URL."""
    binary = need("prometheus")
    port = free_port()
    cfg = data_dir.parent / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
    log = data_dir.parent / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, f"--config.file={cfg}", f"--storage.tsdb.path={data_dir}",
             f"--storage.tsdb.retention.time={retention}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    with _running(proc, f"{url}/-/ready", log):
        yield url


def backfill(openmetrics: str, data_dir: Path) -> None:
    """Load history with ``promtool tsdb create-blocks-from openmetrics``."""
    promtool = need("promtool")
    src = data_dir.parent / "history.om"
    src.write_text(openmetrics)
    data_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(src),
                    str(data_dir)], check=True, capture_output=True)


@contextmanager
def alertmanager(work: Path, config: str | None = None, port: int | None = None
                 ) -> Iterator[str]:
    """An Alertmanager with no gossip port; yields its base URL. Give the ``port`` of an
    earlier one (and the same ``work``) to restart it."""
    binary = need("prometheus-alertmanager")
    port = port or free_port()
    cfg = work / "alertmanager.yml"
    cfg.write_text(config or (
        "route:\n  receiver: 'null'\n  group_wait: 1s\n  group_interval: 1s\n"
        "receivers:\n  - name: 'null'\n"))
    log = work / "alertmanager.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, f"--config.file={cfg}", f"--storage.path={work / 'am-data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
            stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    with _running(proc, f"{url}/-/ready", log):
        yield url
