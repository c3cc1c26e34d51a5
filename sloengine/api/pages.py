"""The status pages over HTTP: GET / (every SLO), GET /slos/{name}, GET /traces/{id}, and the
sign-in form (GET/POST /login, POST /logout). Thin, as front doors are (ARCHITECTURE.md
rule 1): parse the query, call the Engine under the service's lock (one DuckDB connection,
not for concurrent use), and send the HTML that ``Engine.page_html`` renders.

Same access control as the API (api/access.py): every page but the sign-in form needs the
``pages:read`` permission, from ``Authorization: Bearer <key>`` or the ``sloengine_session``
cookie that POST /login sets (the key itself; HttpOnly, SameSite=Strict, Secure over TLS).
A browser without a valid key is sent to /login (303) instead of getting problem+json.

CSRF: the only state-changing requests here are the sign-in and sign-out forms; the cookie is
SameSite=Strict (a cross-site request never carries it) and both POSTs must come with an
Origin (or, failing that, Referer) of this very site, or they are refused (403).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from sloengine import telemetry
from sloengine.api.access import COOKIE, Access, Principal, Service, guard
from sloengine.api.problems import Problem
from sloengine.engine import Engine
from sloengine.errors import SloEngineError, TransientError

PERMISSION = "pages:read"
#: an HTML page must not be cached by shared caches, nor framed by another site
_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                       "img-src 'self' data:; form-action 'self'; "
                                       "frame-ancestors 'none'; base-uri 'none'",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
_LOCAL_PATH = re.compile(r"^/(?![/\\])[^\s\\]*$")
_MAX_BODY = 8192


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


class PageRoute(APIRoute):
    """Routes whose guard failure becomes a page for a browser: no or a bad key (401) →
    303 to /login?next=<this page>, a key without the permission (403) → an HTML 403.
    Other clients get the guard's problem+json unchanged."""

    #: set by build_pages_router (the error page is rendered by the engine)
    pages_engine: Engine

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
                if status not in (401, 403) or not wants_html(request):
                    raise
                if status == 401:
                    here = request.url.path + (f"?{request.url.query}" if request.url.query
                                               else "")
                    return RedirectResponse(f"/login?next={quote(here, safe='')}", 303,
                                            headers=_HEADERS)
                return _html(self.pages_engine, "error", 403, status=403, title="Not allowed",
                             detail="Your key's role may not read the status pages "
                                    f"({PERMISSION}).")

        return route


def _html(engine: Engine, page: str, code: int = 200, **context: Any) -> HTMLResponse:
    """A rendered page. Rendering touches no database, so the sign-in and error pages
    need no lock."""
    return HTMLResponse(engine.page_html(page, **context), code, headers=_HEADERS)


def _viewer(p: Principal) -> str:
    return f"{p.name} ({p.role})"


def _parse_time(value: str | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadQuery(f"{name}: {value!r} is not an ISO 8601 time "
                       "(e.g. 2026-11-21T14:30:00Z)") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class BadQuery(ValueError):
    """A query parameter that cannot be read (answered with a 400 page)."""


def _same_origin(request: Request) -> bool:
    """The request comes from a page of this site (Origin, else Referer, is this site)."""
    host = request.headers.get("host", "")
    own = f"{request.url.scheme}://{host}"
    origin = request.headers.get("origin")
    if origin is not None:
        return origin == own
    referer = request.headers.get("referer")
    if referer is None:
        return False
    parts = urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}" == own


def _next_path(value: str | None) -> str:
    """Only a path on this site (no ``//host``, no scheme): no open redirect."""
    return value if value and _LOCAL_PATH.match(value) else "/"


def build_pages_router(service: Service) -> APIRouter:
    class Route(PageRoute):
        pages_engine = service.engine

    router = APIRouter(route_class=Route, include_in_schema=False)
    reader = Depends(guard(PERMISSION))

    @contextmanager
    def engine_for(request: Request, who: Principal) -> Iterator[Engine]:
        """The engine under the lock, its audit entries naming the key and the request."""
        with service.lock:
            eng = service.engine
            actor, corr = eng.actor, eng.correlation_id
            eng.actor = who.actor
            given = telemetry.REQUEST_ID.get()  # the gate's X-Request-ID (api/gate.py)
            eng.correlation_id = given if given != "-" else uuid.uuid4().hex
            try:
                yield eng
            finally:
                eng.actor, eng.correlation_id = actor, corr

    def failed(exc: Exception, who: Principal, not_found: bool = False) -> HTMLResponse:
        if isinstance(exc, BadQuery):
            status, title = 400, "Bad request"
        elif isinstance(exc, TransientError):
            status, title = 503, "Try again"
        elif not_found:
            status, title = 404, "Not found"
        else:
            status, title = 500, "Cannot show this page"
        return _html(service.engine, "error", status, status=status, title=title,
                     detail=str(exc), user=_viewer(who))

    @router.get("/", response_class=HTMLResponse)
    def overview(request: Request, at: str | None = None,
                 who: Principal = reader) -> HTMLResponse:
        try:
            when = _parse_time(at, "at")
            with engine_for(request, who) as eng:
                html = eng.page_html("overview", results=eng.status(when),
                                     alerts=[] if when else eng.live_alerts(),
                                     now=eng.clock(), at=when, user=_viewer(who))
        except (BadQuery, SloEngineError) as exc:
            return failed(exc, who)
        return HTMLResponse(html, headers=_HEADERS)

    @router.get("/slos/{name}", response_class=HTMLResponse)
    def slo(request: Request, name: str, days: str = "7", to: str | None = None,
            who: Principal = reader) -> HTMLResponse:
        try:
            end = _parse_time(to, "to")
            if not days.isdigit() or not 1 <= int(days) <= 90:
                raise BadQuery(f"days: {days!r} is not a whole number of days from 1 to 90")
            with engine_for(request, who) as eng:
                known = {s.slo.metadata.name for s in eng.load_slos(record=False).slos}
                if name not in known:
                    return failed(LookupError(f"No SLO is named {name!r}."), who,
                                  not_found=True)
                t_to = end or eng.clock()
                doc = eng.report_doc(t_to - timedelta(days=int(days)), t_to, slos=[name],
                                     step_minutes=_step(int(days)))
                html = eng.page_html("slo", doc=doc, state=eng.status(end, name),
                                     days=int(days),
                                     at=end, user=_viewer(who))
        except (BadQuery, SloEngineError) as exc:
            return failed(exc, who)
        return HTMLResponse(html, headers=_HEADERS)

    @router.get("/traces/{ident}", response_class=HTMLResponse)
    def trace(request: Request, ident: str, who: Principal = reader) -> HTMLResponse:
        try:
            with engine_for(request, who) as eng:
                story = eng.trace_json(eng.trace(ident))
                html = eng.page_html("trace", story=story, user=_viewer(who))
        except TransientError as exc:
            return failed(exc, who)
        except SloEngineError as exc:  # the id matches no span or log record
            return failed(exc, who, not_found=True)
        return HTMLResponse(html, headers=_HEADERS)

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str | None = None) -> HTMLResponse:
        return _html(service.engine, "login", next_path=_next_path(next))

    @router.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        if not _same_origin(request):
            return _html(service.engine, "error", 403, status=403, title="Refused",
                         detail="The sign-in form must be sent from this site (Origin check).")
        body = await request.body()
        form = parse_qs(body[:_MAX_BODY].decode("utf-8", "replace"), max_num_fields=4)
        key = (form.get("api_key") or [""])[0].strip()
        target = _next_path((form.get("next") or ["/"])[0])
        problem = _check_key(request, key)
        if problem is not None:
            return _html(service.engine, "login", problem.status, next_path=target,
                         error=problem.detail)
        response = RedirectResponse(target, 303, headers=_HEADERS)
        response.set_cookie(COOKIE, key, httponly=True, samesite="strict", path="/",
                            secure=request.url.scheme == "https")
        return response

    @router.post("/logout")
    def logout(request: Request) -> Response:
        if not _same_origin(request):
            return _html(service.engine, "error", 403, status=403, title="Refused",
                         detail="Sign out must be sent from this site (Origin check).")
        response = RedirectResponse("/login", 303, headers=_HEADERS)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")
        return response

    return router


def _check_key(request: Request, key: str) -> Problem | None:
    """Whether the pasted key may read the pages: the same check as every request (api/
    access.py), on a copy of this request that carries the key as its bearer token — so a
    wrong key counts towards the address's failed-authentication limit like any other."""
    if not key:
        return Problem(401, "Paste an API key.")
    try:
        header = f"Bearer {key}".encode("latin-1")
    except UnicodeEncodeError:
        return Problem(401, "That is not an API key (slo_<id>_<secret>).")
    scope = dict(request.scope)
    scope["headers"] = [(b"authorization", header)]
    access: Access = request.app.state.access
    try:
        access.admit(access.authenticate(Request(scope)), PERMISSION)
    except Problem as exc:
        return exc
    return None


def _step(days: int) -> int:
    """Chart step: about 150–300 points over the period (1 day: 10 min, 7 days: 1 h)."""
    minutes = days * 1440
    return next((s for s in (5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)
                 if minutes / s <= 200), 1440)
