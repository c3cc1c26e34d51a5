"""The real servers start on loopback and answer (the fixtures other tests build on)."""

from __future__ import annotations

from pathlib import Path

import httpx
from servers import alertmanager, backfill, prometheus

OM = """# HELP http_requests Requests.
# TYPE http_requests counter
http_requests_total{code="200"} 10 1763600000
http_requests_total{code="200"} 70 1763600060
# EOF
"""


def test_prometheus_serves_backfilled_history(tmp_path: Path) -> None:
    data = tmp_path / "data"
    backfill(OM, data)
    with prometheus(data) as url:
        r = httpx.get(f"{url}/api/v1/query", params={
            "query": "http_requests_total", "time": "1763600060"}).json()
        assert r["data"]["result"][0]["value"][1] == "70"


def test_alertmanager_accepts_alerts(tmp_path: Path) -> None:
    with alertmanager(tmp_path) as url:
        r = httpx.post(f"{url}/api/v2/alerts", json=[
            {"labels": {"alertname": "Test", "slo": "x"}, "annotations": {"summary": "s"}}])
        assert r.status_code == 200
        got = httpx.get(f"{url}/api/v2/alerts").json()
        assert [a["labels"]["alertname"] for a in got] == ["Test"]
