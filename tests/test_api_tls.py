"""HTTPS: with http.tls_cert/tls_key set, the real server (uvicorn on 127.0.0.1) speaks TLS
only, the API works over it with a key, and the pages' session cookie is marked Secure."""

from __future__ import annotations

import ssl
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
from api_helpers import clock, sample_db, settings_for
from servers import need

from sloengine.api import Receiver, Spool, build_app
from sloengine.api.app import HttpServer, StandIn
from sloengine.engine import Engine


def _self_signed(work: Path) -> tuple[Path, Path]:
    openssl = need("openssl")
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_https_serves_the_api_and_secure_cookies(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    settings = settings_for(sample_db(tmp_path / "tls.duckdb"), tmp_path,
                            tls_cert=cert, tls_key=key)
    engine = Engine(settings, clock=clock)
    _, secret = engine.create_key("oncall", "pager")
    lock = threading.RLock()
    spool = Spool(tmp_path / "spool", max_bytes=1 << 24, max_batches=100)
    receiver = Receiver(engine, spool, lock, settings.http)
    app = build_app(receiver, service=StandIn(engine, lock, settings))
    server = HttpServer(app, "127.0.0.1", 0, tls_cert=cert, tls_key=key)
    server.start()
    base = f"https://127.0.0.1:{server.port}"
    try:
        with httpx.Client(verify=ssl.create_default_context(cafile=cert),
                          timeout=10) as c:
            who = c.get(f"{base}/api/v1/whoami", headers={"Authorization": f"Bearer {secret}"})
            assert who.status_code == 200 and who.json()["role"] == "oncall"
            assert c.get(f"{base}/api/v1/whoami").status_code == 401
            login = c.post(f"{base}/login", data={"api_key": secret},
                           headers={"Origin": base}, follow_redirects=False)
            assert login.status_code == 303
            cookie = login.headers["set-cookie"].lower()
            assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        with pytest.raises(httpx.HTTPError):  # no plain HTTP on the TLS port
            httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5).raise_for_status()
        with pytest.raises(httpx.ConnectError):  # and the certificate is checked
            httpx.get(f"{base}/healthz", timeout=5)
    finally:
        server.stop()
        engine.close()
