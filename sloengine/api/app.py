"""The HTTP front door of ``sloengine run``: a FastAPI app with the OTLP/HTTP export routes
(POST /v1/traces, /v1/logs, /v1/metrics), served by uvicorn on a thread of the same
process, so the receiver shares the one Engine and the one DuckDB writer.

Thin, as front doors are (ARCHITECTURE.md rule 1): it checks media type, encoding and size,
then hands the bytes to the Receiver and sends its answer.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

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
from sloengine.errors import ConfigError

SIGNALS = ("traces", "logs", "metrics")


def build_app(receiver: Receiver) -> FastAPI:
    app = FastAPI(title="sloengine OTLP/HTTP receiver", docs_url=None, redoc_url=None,
                  openapi_url=None)
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
        async def handler(request: Request) -> Response:
            return await export(request, signal)
        return handler

    for signal in SIGNALS:
        app.add_api_route(f"/v1/{signal}", route(signal),  # type: ignore[arg-type]
                          methods=["POST"], include_in_schema=False)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, object]:
        spool = receiver.spool
        return {"status": "closing" if receiver.closing.is_set() else "ok",
                "spool_batches": spool.batches, "spool_bytes": spool.size_bytes}

    return app


def _refuse(signal: str, reply: Reply) -> Response:
    REQUESTS.labels(signal, str(reply.status)).inc()
    return _send(reply)


def _send(reply: Reply) -> Response:
    return Response(reply.body, reply.status, reply.headers, reply.media_type)


class HttpServer:
    """uvicorn on a daemon thread, on a socket bound when it is made (a port in use fails
    at start, with a clear error, not later on a thread)."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self.sock = socket.create_server((host, port), family=family, backlog=1024)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                              where="http") from None
        self.host, self.port = host, int(self.sock.getsockname()[1])
        config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False,
                                lifespan="off", server_header=False,
                                timeout_graceful_shutdown=10)
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
