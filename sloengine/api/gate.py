"""The gate every HTTP request passes (a plain ASGI middleware, so the OTLP routes still
stream their bodies):

- X-Request-ID: the caller's (at most 128 printable ASCII characters) or a new uuid4; put
  in the logging context (telemetry.REQUEST_ID, and the correlation id) and echoed back;
  handlers put it in the audit entries of the request (calls.call).
- the optional IP allowlist (``http.allow_ips``): others get 403 before anything else.
- /api bodies above ``http.api_max_body_bytes``: 413 (declared, or counted as read).
- headers on every answer: X-Content-Type-Options, and for /api ``Cache-Control: no-store``
  unless the route set its own (ETag reads); retired routes get ``Deprecation``, ``Sunset``
  and a ``Link`` to their successor (RFC 9745, RFC 8594).
- an exception nobody handled: logged with its traceback, answered as a problem+json 500
  without one.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sloengine import telemetry
from sloengine.api import problems
from sloengine.api.access import Access

log = logging.getLogger("sloengine.api")

_REQUEST_ID = re.compile(r"^[\x20-\x7e]{1,128}$")
#: (method, path) → (successor, sunset as an HTTP date): routes kept for old clients
RETIRED: dict[tuple[str, str], tuple[str, str]] = {
    ("GET", "/api/v1/state"): ("/api/v1/slos", "Thu, 31 Dec 2026 23:59:59 GMT"),
}


class Gate:
    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else str(uuid.uuid4())
        tokens = (telemetry.REQUEST_ID.set(request_id),
                  telemetry.CORRELATION_ID.set(request_id))
        path: str = scope.get("path", "")
        started = False

        async def send_with(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                extra = [(b"x-request-id", request_id.encode()),
                         (b"x-content-type-options", b"nosniff")]
                have = {k.lower() for k, _ in message.get("headers", [])}
                if path.startswith("/api/") and b"cache-control" not in have:
                    extra.append((b"cache-control", b"no-store"))
                retired = RETIRED.get((scope.get("method", ""), path))
                if retired is not None:
                    extra += [(b"deprecation", b"true"), (b"sunset", retired[1].encode()),
                              (b"link", f'<{retired[0]}>; rel="successor-version"'.encode())]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        async def answer(status: int, detail: str, hdrs: dict[str, str] | None = None) -> None:
            resp = problems.response(status, detail, path, headers=hdrs)
            await resp(scope, receive, send_with)

        try:
            client = scope.get("client")
            if not self.access.client_allowed(client[0] if client else None):
                await answer(403, "this address may not use the service")
                return
            limit = self.access.http.api_max_body_bytes
            if path.startswith("/api/") and scope.get("method") in ("POST", "PUT", "PATCH"):
                declared = headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    await answer(413, f"the body is larger than {limit} bytes")
                    return
                body = await _read(receive, limit)
                if body is None:
                    await answer(413, f"the body is larger than {limit} bytes")
                    return
                receive = _replay(body, receive)
            await self.app(scope, receive, send_with)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), path)
            if not started:
                await answer(500, "the server failed; quote the request id")
        finally:
            telemetry.CORRELATION_ID.reset(tokens[1])
            telemetry.REQUEST_ID.reset(tokens[0])


async def _read(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None past ``limit`` bytes (an /api body is small)."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return bytes(body)
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            return bytes(body)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # http.disconnect, when it comes

    return replay
