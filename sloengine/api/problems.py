"""One error shape for the whole HTTP front door: RFC 7807 / RFC 9457 problem details
(``application/problem+json``), made once here (ARCHITECTURE.md rule 5).

``type`` is a stable URI per kind of problem, ``title`` its short name, ``detail`` what went
wrong with this request, ``instance`` the path, and ``request_id`` the X-Request-ID to quote.
Nothing else leaves: no stack trace, no SQL, no file path of the server, and a validation
error names the field, never echoes the value sent.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from sloengine import telemetry
from sloengine.errors import (
    ConfigError,
    DecodeError,
    QueryRefused,
    SloEngineError,
    TransientError,
)

log = logging.getLogger("sloengine.api")

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://sloengine.dev/problems/"


class Problem(Exception):
    """Raise anywhere in a request to answer with this problem."""

    def __init__(self, status: int, detail: str, *, title: str | None = None,
                 headers: dict[str, str] | None = None, kind: str | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers or {}
        self.kind = kind or _slug(self.title)
        self.extra = extra or {}


def _slug(title: str) -> str:
    return "-".join(title.lower().replace("'", "").split())


def body(status: int, title: str, detail: str, instance: str, *, kind: str | None = None,
         extra: dict[str, Any] | None = None) -> bytes:
    doc: dict[str, Any] = {"type": TYPE_BASE + (kind or _slug(title)), "title": title,
                           "status": status, "detail": detail, "instance": instance,
                           "request_id": telemetry.REQUEST_ID.get()}
    doc.update(extra or {})
    return orjson.dumps(doc)


def response(status: int, detail: str, instance: str, *, title: str | None = None,
             headers: dict[str, str] | None = None, kind: str | None = None,
             extra: dict[str, Any] | None = None) -> Response:
    title = title or HTTPStatus(status).phrase
    return Response(body(status, title, detail, instance, kind=kind, extra=extra), status,
                    headers, MEDIA_TYPE)


def of(exc: Problem, instance: str) -> Response:
    return response(exc.status, exc.detail, instance, title=exc.title, headers=exc.headers,
                    kind=exc.kind, extra=exc.extra)


#: the engine's terminal errors a caller can fix: 422 with the engine's own message
_CALLER_ERRORS = (ConfigError, DecodeError, QueryRefused)


def install(app: FastAPI) -> None:
    """Exception handlers: every error the app can raise becomes problem+json."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return of(exc, request.url.path)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(
            exc.status_code).phrase
        if exc.status_code == 404:
            detail = f"no route {request.url.path}"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
            exact = _allowed(request.app.routes, request.url.path, exact=True)
            headers["Allow"] = ", ".join(exact or _allowed(request.app.routes,
                                                           request.url.path))
        return response(exc.status_code, detail, request.url.path, headers=headers)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [{"field": ".".join(str(p) for p in e.get("loc", ())),
                   "message": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                  for e in exc.errors()]
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        return response(422, f"{first['field']}: {first['message']}", request.url.path,
                        title="Request does not validate", kind="validation",
                        extra={"errors": errors})

    async def on_engine(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SloEngineError)
        if isinstance(exc, TransientError):
            return response(503, "a source is unavailable; retry later", request.url.path,
                            headers={"Retry-After": "5"})
        if type(exc).__name__.endswith("NotFound"):  # forensics' TraceNotFound, ...
            return response(404, exc.message, request.url.path)
        if isinstance(exc, _CALLER_ERRORS):
            return response(422, exc.message, request.url.path,
                            title="Request cannot be carried out", kind="engine-refused")
        log.error("engine error on %s: %s", request.url.path, exc)
        return response(500, "the engine failed; quote the request id", request.url.path)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(SloEngineError, on_engine)


def _allowed(routes: list[Any], path: str, *, exact: bool = False) -> list[str]:
    """Every method some route offers on ``path`` (Starlette names only the first route's,
    so GET and POST /api/v1/keys would say ``Allow: GET``)."""
    out: set[str] = set()
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            out.update(_allowed(inner.routes, path, exact=exact))
        elif (route.path == path) if exact else (
                getattr(route, "path_regex", None) is not None and route.path_regex.match(path)):
            out.update(getattr(route, "methods", None) or ())
    return sorted(out)
