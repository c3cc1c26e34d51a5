"""Per-minute good/total counts pulled from Prometheus and Prometheus-compatible servers
(Thanos Query, Grafana Mimir, VictoriaMetrics) through their shared HTTP API
(``/api/v1/query_range``, ``/api/v1/label/<name>/values``) with prometheus-api-client.

How queries become per-minute counts is in ``promql.py``. Here: authentication (basic or
bearer, extra headers such as Mimir's ``X-Scope-OrgID``), TLS (verify, CA bundle, client
certificate) through a requests session, a timeout per request, retries with exponential
backoff and jitter (tenacity) for transient failures, and a circuit breaker (breaker.py).
Failures are sorted once (errors.py): connection problems, timeouts, HTTP 408/429/5xx and
answers that are not the Prometheus API are ``SourceUnavailable`` (retried, then the SLO is
``source_unavailable``); a refused query (HTTP 400/422), refused credentials (401/403) or a
certificate that does not verify is a ``ConfigError`` (retrying cannot help).
"""

from __future__ import annotations

import base64
import math
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from sloengine.errors import ConfigError, SourceUnavailable
from sloengine.sources.breaker import CircuitBreaker
from sloengine.sources.promql import PromQuery, group_key, plan

if TYPE_CHECKING:
    from sloengine.spec.model import SLO

# requests, tenacity and prometheus_api_client are imported where a pull uses them: settings.py
# imports PrometheusSettings on every CLI start, and most commands never pull.

T = TypeVar("T")
#: (group, minute, good, total) — one row of ``slo_buckets`` without the SLO columns.
Row = tuple[str, int, float, float]
_STATUS = re.compile(r"HTTP Status Code (\d{3})")
_ERROR = re.compile(r'"error"\s*:\s*"((?:[^"\\]|\\.)*)"')


class PrometheusSettings(BaseModel):
    """``prometheus:`` in sloengine.yaml, or ``SLOENGINE_PROMETHEUS__<FIELD>``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Base URL of the HTTP API (``https://thanos-query:9090``, ``http://mimir/prometheus``).
    #: Unset: SLOs with PromQL SLIs are ``source_unavailable``.
    url: str | None = None
    #: Extra request headers, e.g. ``X-Scope-OrgID`` for a Mimir or Cortex tenant.
    headers: dict[str, str] = Field(default_factory=dict)
    username: str | None = None
    password: SecretStr | None = None
    bearer_token: SecretStr | None = None
    #: Read before every request (rotated service-account tokens).
    bearer_token_file: Path | None = None
    verify_tls: bool = True
    #: CA bundle (PEM) to verify the server with, instead of the system store.
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    timeout_seconds: float = Field(default=30.0, gt=0)
    #: Retries after the first attempt, for transient failures only.
    retries: int = Field(default=3, ge=0, le=20)
    backoff_seconds: float = Field(default=0.5, ge=0)
    backoff_max_seconds: float = Field(default=30.0, ge=0)
    #: Consecutive failed calls (after retries) that open the circuit, and how long it stays
    #: open before one trial call.
    breaker_failures: int = Field(default=5, ge=1)
    breaker_reset_seconds: float = Field(default=60.0, ge=0)
    #: Minutes per range query (Prometheus refuses more than 11,000 points per series).
    chunk_minutes: int = Field(default=1440, ge=1, le=10_000)
    #: The newest minutes are fetched again on the next pull: a server may not have ingested
    #: the last scrapes yet (VictoriaMetrics hides the newest 30 s by default).
    settle_minutes: int = Field(default=2, ge=0, le=60)
    #: POST keeps long queries out of URLs (Prometheus, Thanos, Mimir and VictoriaMetrics
    #: accept both).
    method: Literal["GET", "POST"] = "GET"
    #: Extra query parameters, e.g. ``{partial_response: "false"}`` for Thanos.
    query_params: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and urlsplit(v).scheme not in ("http", "https"):
            raise ValueError("prometheus url must start with http:// or https://")
        return v.rstrip("/") if v is not None else None

    @model_validator(mode="after")
    def _auth(self) -> PrometheusSettings:
        basic = self.username is not None or self.password is not None
        bearer = self.bearer_token is not None or self.bearer_token_file is not None
        if basic and bearer:
            raise ValueError("give basic auth (username/password) or a bearer token, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("basic auth needs both username and password")
        if self.bearer_token is not None and self.bearer_token_file is not None:
            raise ValueError("give bearer_token or bearer_token_file, not both")
        if (basic or bearer) and any(k.lower() == "authorization" for k in self.headers):
            raise ValueError("an Authorization header and username/bearer_token conflict")
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("client_key needs client_cert")
        if self.ca_file is not None and not self.verify_tls:
            raise ValueError("ca_file is given but verify_tls is false")
        return self


def auth_headers(s: PrometheusSettings) -> dict[str, str]:
    """The request headers: ``headers`` plus ``Authorization`` (RFC 7617 basic or RFC 6750
    bearer)."""
    out = dict(s.headers)
    if s.username is not None and s.password is not None:
        pair = f"{s.username}:{s.password.get_secret_value()}".encode()
        out["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    token = None
    if s.bearer_token is not None:
        token = s.bearer_token.get_secret_value()
    elif s.bearer_token_file is not None:
        try:
            token = s.bearer_token_file.read_text("utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read bearer_token_file: {exc.strerror}",
                              where=str(s.bearer_token_file)) from None
    if token is not None:
        out["Authorization"] = f"Bearer {token}"
    return out


class PromClient(Protocol):
    """The part of ``prometheus_api_client.PrometheusConnect`` this module uses."""

    headers: Any

    def custom_query_range(self, query: str, start_time: datetime, end_time: datetime,
                           step: str, params: dict[str, Any] | None = None) -> Any: ...

    def get_label_values(self, label_name: str, params: dict[str, Any] | None = None
                         ) -> Any: ...


def connect(s: PrometheusSettings) -> PromClient:
    """A PrometheusConnect on a requests session carrying the TLS settings; its own urllib3
    retries are off (tenacity retries here, with the breaker watching)."""
    import requests
    from prometheus_api_client import PrometheusConnect
    from urllib3.util.retry import Retry

    if s.url is None:
        raise ConfigError("no Prometheus URL: set prometheus.url (SLOENGINE_PROMETHEUS__URL)")
    session = requests.Session()
    session.verify = str(s.ca_file) if s.ca_file is not None else s.verify_tls
    if s.client_cert is not None:
        session.cert = ((str(s.client_cert), str(s.client_key)) if s.client_key is not None
                        else str(s.client_cert))
    client: PromClient = PrometheusConnect(
        url=s.url, headers=auth_headers(s), disable_ssl=not s.verify_tls,
        retry=Retry(total=0, raise_on_status=False), session=session,
        timeout=s.timeout_seconds, method=s.method)
    return client


class PrometheusSource:
    """Pulls the per-minute buckets of PromQL SLIs (the ``MinuteSource`` of
    compute/pulled.py). One instance per server: the circuit breaker lives here."""

    def __init__(self, settings: PrometheusSettings, *, client: PromClient | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._client = client if client is not None else connect(settings)
        self._sleep = sleep
        self.breaker = CircuitBreaker(settings.breaker_failures,
                                      settings.breaker_reset_seconds, clock)
        parts = urlsplit(settings.url or "memory:")
        # never echo credentials embedded in the URL
        self.where = urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path,
                                 "", ""))

    @property
    def max_minutes(self) -> int:
        return self.settings.chunk_minutes

    @property
    def settle_minutes(self) -> int:
        return self.settings.settle_minutes

    def fetch(self, slo: SLO, lo: int, hi: int) -> list[Row]:
        """Good/total per (group, minute) for the minutes [lo, hi)."""
        p = plan(slo)
        if p.histogram is not None:
            h = p.histogram
            les = self._call(lambda: self._client.get_label_values("le", params={
                "match[]": h.bucket_selector(), "start": lo * 60, "end": hi * 60}))
            if not les:
                return []
            good_q, total_q = h.queries(h.matching([str(v) for v in les]), p.group_by)
            total = self._series(total_q, lo, hi, p.group_by)
            good = self._series(good_q, lo, hi, p.group_by)
            return _rows(total, good, is_bad=False)
        assert p.total is not None and p.other is not None
        total = self._series(p.total, lo, hi, p.group_by)
        other = self._series(p.other, lo, hi, p.group_by)
        return _rows(total, other, is_bad=p.other_is_bad)

    def _series(self, q: PromQuery, lo: int, hi: int, group_by: tuple[str, ...]
                ) -> dict[tuple[str, int], float]:
        """Per (group, minute) counts of one query over [lo, hi) (promql.py conventions)."""
        first = lo + 1 if q.mode == "increase" else lo  # cumulative: one boundary earlier
        params = {"timeout": f"{self.settings.timeout_seconds:g}s",
                  **self.settings.query_params}
        result = self._call(lambda: self._client.custom_query_range(
            q.expr, start_time=_at(first), end_time=_at(hi), step="60s", params=params))
        acc: dict[tuple[str, int], float] = {}
        for series in result:
            grp = group_key(series.get("metric", {}), group_by)
            points = [(round(float(ts)) // 60, float(v)) for ts, v in series.get("values", [])]
            if q.mode == "increase":
                counts = [(k - 1, v) for k, v in points]
            else:
                counts = [(k1 - 1, v1 - v0 if v1 >= v0 else v1)
                          for (k0, v0), (k1, v1) in pairwise(points)
                          if k1 == k0 + 1]
            for minute, v in counts:
                if lo <= minute < hi and math.isfinite(v):
                    acc[(grp, minute)] = acc.get((grp, minute), 0.0) + v
        return acc

    def _call(self, fn: Callable[[], T]) -> T:
        """One request: breaker, then retries with backoff for transient failures only."""
        from tenacity import (
            Retrying,
            retry_if_exception_type,
            stop_after_attempt,
            wait_exponential,
            wait_random,
        )

        if not self.breaker.allow():
            raise SourceUnavailable(
                f"circuit open after {self.breaker.failures} failed calls; next try in "
                f"{self.breaker.retry_in():.0f}s", where=self.where)
        s = self.settings
        retrying = Retrying(
            stop=stop_after_attempt(s.retries + 1),
            wait=wait_exponential(multiplier=s.backoff_seconds, max=s.backoff_max_seconds)
            + wait_random(0, s.backoff_seconds),
            retry=retry_if_exception_type(SourceUnavailable), sleep=self._sleep, reraise=True)
        try:
            result: T = retrying(self._once, fn)
        except SourceUnavailable:
            self.breaker.failure()
            raise
        except ConfigError:
            self.breaker.success()  # the server answered
            raise
        self.breaker.success()
        return result

    def _once(self, fn: Callable[[], T]) -> T:
        import requests
        from prometheus_api_client.exceptions import PrometheusApiClientException

        if self.settings.bearer_token_file is not None:
            self._client.headers = auth_headers(self.settings)
        try:
            return fn()
        except PrometheusApiClientException as exc:
            text = str(exc)
            m, e = _STATUS.search(text), _ERROR.search(text)
            code = int(m.group(1)) if m else None
            detail = e.group(1) if e else text[:300]
            if code is None or code in (408, 429) or code >= 500:
                raise SourceUnavailable(f"HTTP {code}: {detail}", where=self.where) from None
            raise ConfigError(f"Prometheus refused the request (HTTP {code}): {detail}",
                              where=self.where) from None
        except requests.exceptions.SSLError as exc:
            raise ConfigError(f"TLS: {_first_line(exc)} (set prometheus.ca_file)",
                              where=self.where) from None
        except requests.RequestException as exc:
            raise SourceUnavailable(f"{type(exc).__name__}: {_first_line(exc)}",
                                    where=self.where) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceUnavailable(f"not a Prometheus API answer: {exc!r}",
                                    where=self.where) from None


def _rows(total: dict[tuple[str, int], float], other: dict[tuple[str, int], float],
          *, is_bad: bool) -> list[Row]:
    """Combine per (group, minute); a minute counts when total > 0 or good > 0 (as
    compute/buckets.py keeps event minutes). Not clamped: good > total shows a query bug."""
    out: list[Row] = []
    for key in sorted(set(total) | set(other)):
        n, o = total.get(key, 0.0), other.get(key, 0.0)
        good = n - o if is_bad else o
        if n > 0 or good > 0:
            out.append((key[0], key[1], good, n))
    return out


def _at(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, UTC)


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
