"""How an /api/v1 handler calls the Engine: on a worker thread, under the service's lock
(one DuckDB writer; its connection is not for concurrent use), as the caller (the audit
entries it writes carry ``apikey:<id>`` and the request's X-Request-ID), within the time
limit; and, for expensive reads, through an ETag cache keyed on the data version.

The cache key of a read is sha256(data version, path, sorted query); the data version is
``Engine.data_version()`` — newest batch id and batch count, record counts of spans, logs,
metric points, SLO buckets and alert transitions, the SLO definitions' content hashes, the
incidents file's mtime — computed after the read, so a read that materialises buckets
caches under the version it leaves behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sloengine import telemetry
from sloengine.api.access import Principal, Service
from sloengine.api.problems import Problem
from sloengine.engine import Engine

T = TypeVar("T")
JSON = "application/json"


def service_of(request: Request) -> Service:
    service: Service | None = request.app.state.service
    if service is None:
        raise Problem(503, "this app has no engine")
    return service


async def call(request: Request, principal: Principal, fn: Callable[[Engine], T], *,
               locked: bool = True) -> T:
    """Run ``fn(engine)`` as ``principal`` under the lock, off the event loop.
    ``locked=False`` is for reads that use only the store's reader connection
    (``Store.read``): they need not wait behind the writer (a spool drain, an evaluation)."""
    service = service_of(request)
    request_id = telemetry.REQUEST_ID.get()

    def work() -> T:
        if not locked:
            return fn(service.engine)
        with service.lock:
            engine = service.engine
            saved = engine.actor, engine.correlation_id
            engine.actor, engine.correlation_id = principal.actor, request_id
            try:
                return fn(engine)
            finally:
                engine.actor, engine.correlation_id = saved

    limit = service.settings.http.api_timeout_seconds
    try:
        return await asyncio.wait_for(run_in_threadpool(work), limit)
    except TimeoutError:
        raise Problem(503, f"the request took longer than {limit:g} s (it finishes in "
                      "the background; ask again later)",
                      headers={"Retry-After": str(int(limit))}) from None


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    return Response(orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS), status, headers, JSON)


class ReadCache:
    """Responses of expensive reads by ETag (a bounded LRU, shared by all keys: the
    permission is checked before the cache is asked)."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, etag: str) -> bytes | None:
        with self._lock:
            body = self._items.get(etag)
            if body is not None:
                self._items.move_to_end(etag)
            return body

    def put(self, etag: str, body: bytes) -> None:
        with self._lock:
            self._items[etag] = body
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def _etag(version: str, request: Request) -> str:
    query = sorted(request.query_params.multi_items())
    digest = hashlib.sha256(orjson.dumps([version, request.url.path, query])).hexdigest()
    return f'"{digest[:32]}"'


async def cached(request: Request, principal: Principal, fn: Callable[[Engine], Any]
                 ) -> Response:
    """A read through the ETag cache: 304 when If-None-Match names the current version,
    the cached body when another caller asked the same, else ``fn`` (then cached)."""
    cache: ReadCache = request.app.state.read_cache
    etag = await call(request, principal, lambda e: _etag(e.data_version(), request))
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    wanted = [t.strip() for t in request.headers.get("if-none-match", "").split(",")]
    if etag in wanted or "*" in wanted:
        return Response(status_code=304, headers=headers)
    body = cache.get(etag)
    if body is None:
        def compute(engine: Engine) -> tuple[str, bytes]:
            doc = fn(engine)
            return _etag(engine.data_version(), request), orjson.dumps(
                doc, option=orjson.OPT_NON_STR_KEYS)

        etag, made = await call(request, principal, compute)
        headers["ETag"] = etag
        cache.put(etag, made)
        body = made
    return Response(body, 200, headers, JSON)


def iso_minute(m: int | None) -> str | None:
    if m is None:
        return None
    return datetime.fromtimestamp(m * 60, UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: str, name: str) -> datetime:
    """ISO 8601; a time without a zone is UTC (as on the CLI)."""
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Problem(422, f"{name}: {value!r} is not an ISO 8601 time",
                      title="Request does not validate", kind="validation") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
