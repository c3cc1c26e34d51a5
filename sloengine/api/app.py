"""The HTTP front door of ``sloengine run``: one FastAPI app, served by uvicorn on a thread of
the same process (so it shares the one Engine and the one DuckDB writer), with

- the OTLP/HTTP export routes POST /v1/traces, /v1/logs, /v1/metrics (permission
  ``ingest:write``): media type, encoding and size are checked here, then the Receiver
  spools the bytes and answers;
- the versioned API /api/v1 (api/v1.py, api/admin.py), its OpenAPI document at
  /api/v1/openapi.json (committed as docs/openapi.json; ``sloengine openapi`` writes it);
- the status pages (api/pages.py, when present);
- the gate every request passes (api/gate.py) and one error shape (api/problems.py).

``app.state.service`` is the service (``.engine``, ``.lock``, ``.settings``: EngineService
or a stand-in), ``app.state.access`` the keys, rate limits and allowlist (api/access.py).
"""

from __future__ import annotations

import importlib
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from sloengine.api import admin, problems, v1
from sloengine.api.access import Access, Principal, Service, guard
from sloengine.api.calls import ReadCache
from sloengine.api.contract import shape_openapi
from sloengine.api.gate import Gate
from sloengine.api.otlp import (
    ENCODINGS,
    BadBody,
    BodyTooLarge,
    Reply,
    decompress,
    failure,
    request_format,
)
from sloengine.api.receiver import REQUESTS, Receiver
from sloengine.engine import Engine
from sloengine.errors import ConfigError
from sloengine.settings import HttpSettings, Settings

SIGNALS = ("traces", "logs", "metrics")


@dataclass
class StandIn:
    """A service for an app made around a bare Receiver (tests, benchmarks)."""

    engine: Engine
    lock: threading.RLock
    settings: Settings


def build_app(receiver: Receiver | None = None, *, service: Service | None = None,
              http: HttpSettings | None = None) -> FastAPI:
    """The app. ``service`` defaults to one around ``receiver``'s engine and lock; ``http``
    to the receiver's settings, else the service's (``http.auth`` false: no keys asked)."""
    if service is None and receiver is not None:
        service = StandIn(receiver.engine, receiver.lock, receiver.engine.settings)
    http = http or (receiver.settings if receiver is not None else
                    service.settings.http if service is not None else HttpSettings())
    app = FastAPI(title="sloengine API", version="1.0.0",
                  summary="SLOs, alerts, replays, traces, lineage, reports and the audit "
                          "trail of one sloengine",
                  openapi_url="/api/v1/openapi.json", redoc_url=None,
                  docs_url="/api/v1/docs" if http.docs else None)
    access = Access(http, service)
    app.state.service = service
    app.state.access = access
    app.state.read_cache = ReadCache()
    problems.install(app)
    if receiver is not None:
        _otlp_routes(app, receiver)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, object]:
        """Liveness for probes: open to all, says nothing but the spool's size."""
        if receiver is None:
            return {"status": "ok"}
        spool = receiver.spool
        return {"status": "closing" if receiver.closing.is_set() else "ok",
                "spool_batches": spool.batches, "spool_bytes": spool.size_bytes}

    app.include_router(v1.build_router())
    app.include_router(admin.build_router())
    pages = _pages_module()
    if pages is not None and service is not None:
        app.include_router(pages.build_pages_router(service))
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = shape_openapi(base())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(Gate, access=access)
    return app


def _pages_module() -> Any:
    """api/pages.py when it is there (the status pages), else None."""
    try:
        return importlib.import_module("sloengine.api.pages")
    except ModuleNotFoundError as exc:
        if exc.name != "sloengine.api.pages":
            raise
        return None


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the API (no engine needed): what docs/openapi.json holds."""
    return build_app(None, http=HttpSettings()).openapi()


def _otlp_routes(app: FastAPI, receiver: Receiver) -> None:
    limit = receiver.settings.max_body_bytes

    async def export(request: Request, signal: str) -> Response:
        fmt = request_format(request.headers.get("content-type"))
        if fmt is None:
            return _refuse(signal, failure(
                415, "Content-Type must be application/x-protobuf or application/json", None))
        encoding = request.headers.get("content-encoding", "").strip().lower()
        if encoding not in ENCODINGS:
            return _refuse(signal, failure(
                415, f"Content-Encoding {encoding!r} is not supported (gzip, deflate)", fmt))
        too_big = failure(413, f"the body is larger than {limit} bytes", fmt)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return _refuse(signal, too_big)
        body = bytearray()
        async for part in request.stream():
            body += part
            if len(body) > limit:
                return _refuse(signal, too_big)
        try:
            data = await run_in_threadpool(decompress, bytes(body), encoding, limit)
        except BodyTooLarge:
            return _refuse(signal, too_big)
        except BadBody as exc:
            return _refuse(signal, failure(400, str(exc), fmt))
        client = request.client
        peer = f"{client.host}:{client.port}" if client else "unknown"
        return _send(await run_in_threadpool(receiver.accept, data, signal, fmt, peer))

    def route(signal: str) -> object:
        async def handler(request: Request,
                          _who: Annotated[Principal, Depends(guard("ingest:write"))]
                          ) -> Response:
            return await export(request, signal)
        return handler

    for signal in SIGNALS:
        app.add_api_route(f"/v1/{signal}", route(signal),  # type: ignore[arg-type]
                          methods=["POST"], include_in_schema=False)


def _refuse(signal: str, reply: Reply) -> Response:
    REQUESTS.labels(signal, str(reply.status)).inc()
    return _send(reply)


def _send(reply: Reply) -> Response:
    return Response(reply.body, reply.status, reply.headers, reply.media_type)


class HttpServer:
    """uvicorn on a daemon thread, on a socket bound when it is made (a port in use fails
    at start, with a clear error, not later on a thread). HTTPS when given a certificate
    and its key (PEM files)."""

    def __init__(self, app: FastAPI, host: str, port: int, *, tls_cert: Path | None = None,
                 tls_key: Path | None = None) -> None:
        if (tls_cert is None) != (tls_key is None):
            raise ConfigError("give both http.tls_cert and http.tls_key, or neither",
                              where="http")
        for f in (tls_cert, tls_key):
            if f is not None and not f.is_file():
                raise ConfigError(f"no such file {f}", where="http")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self.sock = socket.create_server((host, port), family=family, backlog=1024)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                              where="http") from None
        self.host, self.port = host, int(self.sock.getsockname()[1])
        self.scheme = "https" if tls_cert is not None else "http"
        config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False,
                                lifespan="off", server_header=False, date_header=False,
                                timeout_graceful_shutdown=10,
                                ssl_certfile=str(tls_cert) if tls_cert else None,
                                ssl_keyfile=str(tls_key) if tls_key else None)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                        name="otlp-http", daemon=True)

    def start(self, timeout: float = 10) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                raise ConfigError("the HTTP server did not start", where="http")
            time.sleep(0.01)

    def stop(self, timeout: float = 15) -> None:
        """Stop accepting; requests in flight finish (their batches are spooled)."""
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.sock.close()
