"""PromQL SLIs pulled from a real Prometheus into the per-minute buckets, against numbers
computed by hand from the same counters (sloengine/sources/promql.py has the convention).

History (backfilled with promtool): job "payments", instances a and b, 50 requests/min each
for 200 minutes; 1 error/min per instance (code 500), 15/min from minute 180 — so 100/min
with 2 errors/min for 3 h, then 30 errors/min for 20 min. The latency histogram puts, per
instance and minute, every error and all but 1 (10 from minute 180) of the successes at or
below le=0.4: good(≤400 ms) = 98/min, then 80/min. Instance b restarts at minute 99, so all
its counters reset (the sample at minute boundary 100 holds minute 99 only).
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from servers import backfill, free_port, need, prometheus
from slo_helpers import budget, load_one, ref_burn, ref_sum

from sloengine.compute import evaluate_slo
from sloengine.compute.pulled import (
    gaps,
    mark_unavailable,
    needed_range,
    pull_slo,
    unavailable,
    write_pulled,
)
from sloengine.errors import ConfigError, SourceUnavailable
from sloengine.sources import (
    CircuitBreaker,
    InMemorySource,
    PrometheusSettings,
    PrometheusSource,
    auth_headers,
    per_minute,
)
from sloengine.sources.promql import histogram_of
from sloengine.spec import LoadedSLO, load_paths
from sloengine.store import Store

T0 = 1_763_596_800  # 2025-11-20T00:00:00Z
M0 = T0 // 60
MINUTES, SURGE, RESET = 200, 180, 99
T_END = M0 + MINUTES
SLOTH_FILE = Path(__file__).parent / "fixtures" / "slo" / "sloth-payments.yaml"
FAST = {"retries": 0, "backoff_seconds": 0, "chunk_minutes": 10_000}


def errors(m: int) -> int:
    """Errors per instance in minute m."""
    return 1 if m < SURGE else 15


def slow(m: int) -> int:
    """Successful requests above 0.4 s per instance in minute m."""
    return 1 if m < SURGE else 10


#: minute → (good, total) by hand, both instances together
AVAILABILITY = {M0 + m: (100.0 - 2 * errors(m), 100.0) for m in range(MINUTES)}
LATENCY = {M0 + m: (100.0 - 2 * slow(m), 100.0) for m in range(MINUTES)}


def openmetrics() -> str:
    """The history, as `promtool tsdb create-blocks-from openmetrics` reads it."""
    les = ("0.1", "0.25", "0.4", "0.5", "+Inf")
    cum: dict[tuple[str, str, str], float] = {}
    lines = ["# TYPE http_request_duration_seconds histogram"]
    for k in range(MINUTES + 1):  # sample k at the END of minute k-1
        for inst in ("a", "b"):
            if inst == "b" and k == RESET + 1:  # restarted at the start of minute 99
                for key in [key for key in cum if key[0] == "b"]:
                    cum[key] = 0.0
            m = k - 1
            for code in ("200", "500"):
                n = 0 if m < 0 else (50 - errors(m) if code == "200" else errors(m))
                fast = {"0.1": n - 4, "0.25": n - 2, "0.4": n - slow(m), "0.5": n,
                        "+Inf": n} if code == "200" and m >= 0 else dict.fromkeys(les, n)
                lab = f'job="payments",instance="{inst}",code="{code}"'
                for le in les:
                    key = (inst, code, le)
                    cum[key] = cum.get(key, 0.0) + fast[le]
                    lines.append(f'http_request_duration_seconds_bucket{{{lab},le="{le}"}} '
                                 f"{cum[key]:g} {T0 + k * 60}")
                key = (inst, code, "sum")
                cum[key] = cum.get(key, 0.0) + n * 0.125
                lines.append(f"http_request_duration_seconds_count{{{lab}}} "
                             f"{cum[(inst, code, '+Inf')]:g} {T0 + k * 60}")
                lines.append(f"http_request_duration_seconds_sum{{{lab}}} {cum[key]:g} "
                             f"{T0 + k * 60}")
    return "\n".join([*lines, "# EOF", ""])


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("prom") / "data"
    backfill(openmetrics(), data)
    return data


@pytest.fixture(scope="module")
def prom_url(history: Path) -> Iterator[str]:
    with prometheus(history) as url:
        yield url


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "p.duckdb")
    yield s
    s.close()


def source(url: str, **kw: Any) -> PrometheusSource:
    return PrometheusSource(PrometheusSettings(url=url, **{**FAST, **kw}))


def buckets(store: Store, name: str, grp: str = "") -> dict[int, tuple[float, float]]:
    return {m: (g, n) for m, g, n in store.rows(
        "SELECT minute, good, total FROM slo_buckets WHERE slo_name = ? AND grp = ? "
        "ORDER BY minute", [name, grp])}


def ratio_spec(total: str, bad: str, **extra: Any) -> dict[str, Any]:
    return {"indicator": {"kind": "ratio", "total": {"source": "prometheus", "query": total},
                          "bad": {"source": "prometheus", "query": bad}},
            "objectives": [{"target": 0.999}], "window": {"rolling": "30d"}, **extra}


SLOTH_TOTAL = 'sum(rate(http_request_duration_seconds_count{job="payments"}[{{.window}}]))'
SLOTH_BAD = ('sum(rate(http_request_duration_seconds_count{job="payments",code=~"5.."}'
             "[{{.window}}]))")


def check_against_hand(store: Store, loaded: LoadedSLO, hand: dict[int, tuple[float, float]],
                       target: float) -> None:
    """SLI, budget and every burn rate at the end of the history equal the hand numbers."""
    [r] = evaluate_slo(store, loaded, T_END)
    g, n = ref_sum(hand, T_END - 43_200, T_END)
    assert (r.status, r.good, r.total, r.sli) == ("ok", g, n, g / n)
    assert r.error_budget.allowed == budget(target) * n
    assert r.error_budget.consumed == n - g
    for label, minutes in (("5m", 5), ("30m", 30), ("1h", 60), ("6h", 360)):
        assert r.burn_rates[label] == ref_burn(hand, T_END, minutes, target), label


# -- the convention, without a server ----------------------------------------------------


def test_per_minute_convention() -> None:
    q = per_minute('sum(rate(x_total{h="rate(y)",c=~"5.."}[{{ .window }}]))')
    assert (q.expr, q.mode) == ('sum(increase(x_total{h="rate(y)",c=~"5.."}[1m]))', "increase")
    q = per_minute("sum(irate(x[{{.window}}])) / sum(increase(y[{{.window}}]))")
    assert q.expr == "sum(irate(x[1m])) / sum(increase(y[1m]))"
    q = per_minute('  http_requests_total{code="500"} ')
    assert (q.expr, q.mode) == ('http_requests_total{code="500"}', "cumulative")


def test_histogram_selector_and_bounds() -> None:
    h = histogram_of('lat_seconds_bucket{job="api"}', 0.25)
    assert (h.base, h.matchers, h.bucket_selector()) == (
        "lat_seconds", 'job="api"', 'lat_seconds_bucket{job="api"}')
    good, total = h.queries(h.matching(["0.1", "0.25", "+Inf"]), ["route"])
    assert good.expr == ('sum by (route) (increase(lat_seconds_bucket{job="api", le="0.25"}'
                         "[1m]))")
    assert total.expr == 'sum by (route) (increase(lat_seconds_count{job="api"}[1m]))'
    one = histogram_of("lat_seconds_count", 1.0)
    assert one.queries(one.matching(["1", "1.0", "2.5"]), [])[0].expr == (
        'sum(increase(lat_seconds_bucket{le=~"1|1\\\\.0"}[1m]))')
    with pytest.raises(ConfigError, match=r"0\.3s is not a bucket bound .*nearest le: 0\.25, "
                       r"0\.5.*cannot interpolate"):
        histogram_of("lat_seconds", 0.3).matching(["0.1", "0.25", "0.5", "+Inf"])
    for bad in ('rate(lat_seconds_bucket[5m])', 'lat_seconds_bucket{le="0.25"}'):
        with pytest.raises(ConfigError):
            histogram_of(bad, 0.25)


def test_settings_auth_headers_and_validation(tmp_path: Path) -> None:
    basic = PrometheusSettings(url="https://p:9090/", username="u", password="p w",
                               headers={"X-Scope-OrgID": "t1"})
    assert basic.url == "https://p:9090"
    assert auth_headers(basic) == {"X-Scope-OrgID": "t1", "Authorization": "Basic "
                                   + base64.b64encode(b"u:p w").decode()}
    tok = tmp_path / "token"
    tok.write_text("abc\n")
    assert auth_headers(PrometheusSettings(url="http://p", bearer_token_file=tok)) == {
        "Authorization": "Bearer abc"}
    assert "p w" not in repr(basic)
    for bad in ({"url": "p:9090"}, {"username": "u"}, {"username": "u", "password": "p",
                                                       "bearer_token": "t"},
                {"ca_file": tmp_path, "verify_tls": False}, {"client_key": tmp_path},
                {"bearer_token": "t", "headers": {"authorization": "x"}}):
        with pytest.raises(ValueError):
            PrometheusSettings(**{"url": "http://p", **bad})


def test_circuit_breaker_states() -> None:
    now = [0.0]
    b = CircuitBreaker(failures=2, reset_seconds=30, clock=lambda: now[0])
    assert b.allow() and b.state == "closed"
    b.failure()
    assert b.state == "closed"
    b.failure()
    assert (b.state, b.allow(), b.retry_in()) == ("open", False, 30.0)
    now[0] = 30.0
    assert b.state == "half_open"
    assert b.allow() and not b.allow()  # one trial at a time
    b.failure()  # the trial failed: open again
    assert (b.state, b.retry_in()) == ("open", 30.0)
    now[0] = 60.0
    assert b.allow()
    b.success()
    assert (b.state, b.allow()) == ("closed", True)


class FlakyClient:
    """Fails ``fail`` times with a connection error, then answers like Prometheus."""

    headers: Any = None

    def __init__(self, fail: int, exc: Exception | None = None) -> None:
        self.fail, self.calls, self.exc = fail, 0, exc

    def custom_query_range(self, query: str, start_time: datetime, end_time: datetime,
                           step: str, params: dict[str, Any] | None = None) -> Any:
        import requests

        self.calls += 1
        if self.calls <= self.fail:
            raise self.exc or requests.ConnectionError("connection refused")
        ts = int(end_time.timestamp())
        return [{"metric": {}, "values": [[ts, "1" if "5.." in query else "10"]]}]

    def get_label_values(self, label_name: str, params: dict[str, Any] | None = None) -> Any:
        raise AssertionError("not a histogram SLO")


def test_retries_backoff_breaker_and_terminal_errors(tmp_path: Path) -> None:
    from prometheus_api_client.exceptions import PrometheusApiClientException

    slo = load_one(tmp_path, ratio_spec(SLOTH_TOTAL, SLOTH_BAD)).slo
    waits: list[float] = []
    settings = PrometheusSettings(url="http://p", retries=2, backoff_seconds=1,
                                  backoff_max_seconds=3, breaker_failures=2)
    client = FlakyClient(fail=2)
    src = PrometheusSource(settings, client=client, sleep=waits.append)
    assert src.fetch(slo, 100, 101) == [("", 100, 9.0, 10.0)]
    assert client.calls == 4 and len(waits) == 2  # 2 failures retried, then 2 queries
    assert 1 <= waits[0] <= 2 and 2 <= waits[1] <= 3  # exponential, with jitter
    # down for good: each call fails after its retries; the second opens the circuit
    client = FlakyClient(fail=10**6)
    src = PrometheusSource(settings, client=client, sleep=lambda s: None)
    for _ in range(2):
        with pytest.raises(SourceUnavailable, match="ConnectionError"):
            src.fetch(slo, 100, 101)
    assert (client.calls, src.breaker.state) == (6, "open")
    with pytest.raises(SourceUnavailable, match="circuit open"):
        src.fetch(slo, 100, 101)
    assert client.calls == 6  # refused without touching the network
    # a refused query is terminal: no retry, and the server counts as up
    refused = PrometheusApiClientException(
        'HTTP Status Code 400 (b\'{"status":"error","error":"parse error: unexpected }"}\')')
    client = FlakyClient(fail=1, exc=refused)
    src = PrometheusSource(settings, client=client, sleep=lambda s: None)
    with pytest.raises(ConfigError, match=r"HTTP 400\): parse error: unexpected }"):
        src.fetch(slo, 100, 101)
    assert (client.calls, src.breaker.state) == (1, "closed")
    client = FlakyClient(fail=1, exc=PrometheusApiClientException("HTTP Status Code 503 (b'')"))
    src = PrometheusSource(settings, client=client, sleep=lambda s: None)
    assert src.fetch(slo, 100, 101) and client.calls == 3  # 503 retried


def test_pull_fills_gaps_refetches_unsettled_and_resets(tmp_path: Path, store: Store) -> None:
    loaded = load_one(tmp_path, ratio_spec("a[{{.window}}]", "b[{{.window}}]"))
    slo = loaded.slo
    t = M0 + 2000
    lo, _ = needed_range(slo, t)
    assert lo == t - 43_200  # the 30-day period (longer than any alert window)
    mem = InMemorySource({"s": {("", m): (9.0, 10.0) for m in range(t - 100, t + 100)}},
                         max_minutes=20_000, settle_minutes=2)
    wall = datetime.fromtimestamp((t - 50) * 60, UTC)  # "now": 50 minutes before t
    rep = pull_slo(store, slo, t - 60, mem, now=wall)
    assert (rep.outcome, rep.fetched, rep.gaps) == ("ok", [(lo - 60, t - 60)], [])
    mem.up = False
    rep = pull_slo(store, slo, t, mem, now=wall)
    assert (rep.outcome, rep.gaps, rep.fetched) == ("unavailable", [(t - 60, t)], [])
    assert "in-memory source is down" in (rep.error or "")
    assert max(buckets(store, "s")) == t - 61
    assert unavailable(store, slo, t) == [(t - 60, t)]
    [r] = mark_unavailable(evaluate_slo(store, loaded, t))
    assert r.status == "source_unavailable" and r.sli == 0.9  # minutes fetched: not 100 % bad
    assert all(not d.condition and d.state == "unknown" for d in r.alerts)
    mem.up = True
    now = datetime.fromtimestamp(t * 60, UTC)
    rep = pull_slo(store, slo, t, mem, now=now)
    # just the gap (the first pull ended 10 minutes before its wall clock: all settled)
    assert (rep.outcome, rep.fetched, rep.gaps) == ("ok", [(t - 60, t)], [])
    rep = pull_slo(store, slo, t, mem, now=now)
    assert rep.fetched == [(t - 2, t)]  # only the unsettled tail
    assert store.rows("SELECT lo_minute, hi_minute, settled_minute FROM source_ranges") == [
        (lo - 60, t - 2, t - 2), (t - 2, t, t - 2)]
    assert len(buckets(store, "s")) == 100 and unavailable(store, slo, t) == []
    # a changed indicator drops the old buckets and ranges: the next pull starts afresh
    changed = load_one(tmp_path, ratio_spec("a[{{.window}}]", "c[{{.window}}]"))
    assert gaps(store, changed.slo, lo, t) == [(lo, t)]
    write_pulled(store, slo, t, t + 1, [("", t, 1.0, 1.0)])
    rep = pull_slo(store, changed.slo, t, mem, now=now)
    assert rep.fetched == [(lo, t)] and max(buckets(store, "s")) == t - 1
    assert pull_slo(store, slo, t, None).error == (
        "no Prometheus source configured (prometheus.url)")


# -- against a real Prometheus -----------------------------------------------------------


def test_sloth_file_matches_hand_computed(tmp_path: Path, store: Store, prom_url: str) -> None:
    """The Sloth example file as written: availability and latency (count − bucket)."""
    res = load_paths([SLOTH_FILE])
    slos = {s.slo.metadata.name: s for s in res.slos}
    src = source(prom_url)
    for name, hand, target in (("payments-requests-availability", AVAILABILITY, 0.999),
                               ("payments-requests-latency", LATENCY, 0.99)):
        rep = pull_slo(store, slos[name].slo, T_END, src)
        assert (rep.outcome, rep.gaps) == ("ok", []), rep.error
        assert buckets(store, name) == hand  # exact, minute by minute, reset included
        check_against_hand(store, slos[name], hand, target)
    [r] = evaluate_slo(store, slos["payments-requests-availability"], T_END)
    assert r.sli == 1 - 960 / 20_000  # 180·2 + 20·30 errors in 20,000 requests
    assert r.error_budget.consumed == 960.0
    assert r.burn_rates["5m"] == pytest.approx(300.0)  # 150/500 / 0.001
    assert r.burn_rates["1h"] == pytest.approx(680 / 6000 / 0.001)
    [r] = evaluate_slo(store, slos["payments-requests-latency"], T_END)
    assert r.burn_rates["5m"] == pytest.approx(20.0)  # 100/500 / 0.01
    assert r.burn_rates["1h"] == pytest.approx(8.0)  # (40·2 + 20·20)/6000 / 0.01


def test_cumulative_queries_and_groups(tmp_path: Path, store: Store, prom_url: str) -> None:
    """Queries without the placeholder are counters, differenced per series (b's reset is
    the new value); groupBy labels split the buckets."""
    verbatim = load_one(tmp_path, ratio_spec(
        'http_request_duration_seconds_count{job="payments"}',
        'http_request_duration_seconds_count{job="payments",code="500"}'), "verbatim")
    rep = pull_slo(store, verbatim.slo, T_END, source(prom_url))
    assert rep.outcome == "ok", rep.error
    assert buckets(store, "verbatim") == AVAILABILITY
    check_against_hand(store, verbatim, AVAILABILITY, 0.999)
    grouped = load_one(tmp_path, ratio_spec(
        'sum by (instance) (rate(http_request_duration_seconds_count{job="payments"}'
        "[{{.window}}]))",
        'sum by (instance) (increase(http_request_duration_seconds_count{job="payments",'
        'code="500"}[{{.window}}]))', groupBy=["instance"]), "grouped")
    assert pull_slo(store, grouped.slo, T_END, source(prom_url)).outcome == "ok"
    per_instance = {M0 + m: (50.0 - errors(m), 50.0) for m in range(MINUTES)}
    assert buckets(store, "grouped", "instance=a") == per_instance
    assert buckets(store, "grouped", "instance=b") == per_instance


def test_histogram_latency(tmp_path: Path, store: Store, prom_url: str) -> None:
    spec = {"indicator": {"kind": "latency", "threshold": "400ms", "total": {
        "source": "prometheus", "query": 'http_request_duration_seconds{job="payments"}'}},
        "objectives": [{"target": 0.99}], "window": {"rolling": "30d"}}
    lat = load_one(tmp_path, spec, "lat")
    rep = pull_slo(store, lat.slo, T_END, source(prom_url))
    assert rep.outcome == "ok", rep.error
    assert buckets(store, "lat") == LATENCY
    check_against_hand(store, lat, LATENCY, 0.99)
    spec["indicator"]["threshold"] = "300ms"  # type: ignore[index]
    off = load_one(tmp_path, spec, "off")
    rep = pull_slo(store, off.slo, T_END, source(prom_url))
    assert rep.outcome == "error" and rep.fetched == [] and buckets(store, "off") == {}
    assert "0.3s is not a bucket bound" in (rep.error or "")
    assert "nearest le: 0.25, 0.4" in (rep.error or "")


def test_server_down_then_back(tmp_path: Path, store: Store) -> None:
    data = tmp_path / "data"
    backfill(openmetrics(), data)
    loaded = load_one(tmp_path, ratio_spec(SLOTH_TOTAL, SLOTH_BAD))
    t1 = M0 + 150
    with prometheus(data) as url:
        src = source(url, retries=1, breaker_failures=2)
        assert pull_slo(store, loaded.slo, t1, src).outcome == "ok"
    # stopped: the pull up to the end of the history fails, nothing is written for the gap
    rep = pull_slo(store, loaded.slo, T_END, src)
    assert (rep.outcome, rep.gaps) == ("unavailable", [(t1, T_END)])
    assert "ConnectionError" in (rep.error or "")
    assert max(buckets(store, "s")) == t1 - 1
    assert unavailable(store, loaded.slo, T_END) == [(t1, T_END)]
    [r] = mark_unavailable(evaluate_slo(store, loaded, T_END))
    assert r.status == "source_unavailable"
    assert r.sli == 1 - 2 * 150 / 15_000  # the minutes it has: not "100 % bad"
    rep = pull_slo(store, loaded.slo, T_END, src)  # second failure opens the circuit
    assert src.breaker.state == "open"
    assert "circuit open" in (pull_slo(store, loaded.slo, T_END, src).error or "")
    with prometheus(data) as url:  # back (on another port)
        rep = pull_slo(store, loaded.slo, T_END, source(url))
    assert (rep.outcome, rep.fetched, rep.gaps) == ("ok", [(t1, T_END)], [])
    assert buckets(store, "s") == AVAILABILITY
    assert unavailable(store, loaded.slo, T_END) == []
    check_against_hand(store, loaded, AVAILABILITY, 0.999)


# -- authentication and TLS ----------------------------------------------------------------


def _bcrypt(password: str) -> str:
    """Prometheus' web config wants bcrypt: the stdlib crypt (libxcrypt, Python < 3.13), or
    the bcrypt package."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    except ImportError:
        bcrypt = pytest.importorskip("bcrypt")
        return str(bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode())


def _tls_files(work: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
    import ipaddress

    pytest.importorskip("cryptography")

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)

    def cert(subject: str, key: Any, issuer: str, signer: Any, ca: bool) -> Any:
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
             .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            b = b.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return b.sign(signer, hashes.SHA256())

    ca_key, srv_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    pem = serialization.Encoding.PEM
    files = (work / "ca.pem", work / "server.pem", work / "server.key")
    files[0].write_bytes(cert("test-ca", ca_key, "test-ca", ca_key, True).public_bytes(pem))
    files[1].write_bytes(cert("127.0.0.1", srv_key, "test-ca", ca_key, False).public_bytes(pem))
    files[2].write_bytes(srv_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return files


def test_basic_auth_and_tls_against_prometheus(tmp_path: Path, store: Store) -> None:
    """Prometheus' own web config: TLS with a private CA and basic auth (bcrypt)."""
    binary = need("prometheus")
    ca, crt, key = _tls_files(tmp_path)
    hashed = _bcrypt("s3cret")
    data = tmp_path / "data"
    backfill(openmetrics(), data)
    web = tmp_path / "web.yml"
    web.write_text(json.dumps({"tls_server_config": {"cert_file": str(crt), "key_file": str(key)},
                               "basic_auth_users": {"alice": hashed}}))
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("scrape_configs: []\n")
    port, log = free_port(), tmp_path / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, f"--config.file={cfg}", f"--web.config.file={web}",
                                 f"--storage.tsdb.path={data}", "--storage.tsdb.retention.time=60d",
                                 f"--web.listen-address=127.0.0.1:{port}"], stdout=out, stderr=out)
    url = f"https://127.0.0.1:{port}"
    try:
        _wait_until_tls_ready(url, ca, proc, log)
        loaded = load_one(tmp_path, ratio_spec(SLOTH_TOTAL, SLOTH_BAD))
        ok = source(url, username="alice", password="s3cret", ca_file=ca, method="POST")
        rep = pull_slo(store, loaded.slo, T_END, ok)
        assert (rep.outcome, rep.error) == ("ok", None)
        assert buckets(store, "s") == AVAILABILITY
        wrong = source(url, username="alice", password="nope", ca_file=ca)
        rep = pull_slo(store, loaded.slo, T_END + 1, wrong)
        assert rep.outcome == "error" and "HTTP 401" in (rep.error or "")
        untrusted = source(url, username="alice", password="s3cret")
        rep = pull_slo(store, loaded.slo, T_END + 1, untrusted)
        assert rep.outcome == "error" and "TLS" in (rep.error or "")
        assert untrusted.breaker.state == "closed"  # terminal: no retries, no breaker trip
    finally:
        proc.terminate()
        proc.wait(10)


def _wait_until_tls_ready(url: str, ca: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prometheus exited: {log.read_text()[-2000:]}")
        try:
            r = httpx.get(f"{url}/-/ready", timeout=0.5, verify=ssl.create_default_context(
                cafile=str(ca)), auth=("alice", "s3cret"))
            if r.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"prometheus not ready: {log.read_text()[-2000:]}")


class _Stub(BaseHTTPRequestHandler):
    """A Prometheus-compatible endpoint that records what it was sent."""

    seen: ClassVar[list[dict[str, Any]]] = []

    def do_GET(self) -> None:
        q = parse_qs(urlsplit(self.path).query)
        type(self).seen.append({"path": urlsplit(self.path).path, "headers": dict(self.headers),
                                "query": q})
        if self.headers.get("Authorization") != "Bearer tok-2":
            self.send_response(401)
            self.end_headers()
            return
        start, end = int(q["start"][0]), int(q["end"][0])
        value = "1" if "500" in q["query"][0] else "10"
        body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {}, "values": [[ts, value] for ts in range(start, end + 1, 60)]}]}})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


def test_bearer_token_file_and_tenant_header(tmp_path: Path, store: Store) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = tmp_path / "token"
    token.write_text("tok-1\n")
    try:
        loaded = load_one(tmp_path, ratio_spec(
            'sum(rate(x_total[{{.window}}]))', 'sum(rate(x_total{code="500"}[{{.window}}]))'))
        src = source(f"http://127.0.0.1:{server.server_port}", bearer_token_file=token,
                     headers={"X-Scope-OrgID": "tenant-1"},
                     query_params={"partial_response": "false"})
        rep = pull_slo(store, loaded.slo, M0 + 10, src, lo=M0)
        assert rep.outcome == "error" and "HTTP 401" in (rep.error or "")
        token.write_text("tok-2\n")  # rotated: read again before every request
        rep = pull_slo(store, loaded.slo, M0 + 10, src, lo=M0)
        assert (rep.outcome, rep.rows) == ("ok", 10)
        assert buckets(store, "s")[M0] == (9.0, 10.0)
        last = _Stub.seen[-1]
        assert last["headers"]["X-Scope-OrgID"] == "tenant-1"
        assert last["query"]["partial_response"] == ["false"]
        assert last["query"]["step"] == ["60s"] and last["query"]["timeout"] == ["30s"]
        assert (last["query"]["start"], last["query"]["end"]) == (
            [str((M0 + 1) * 60)], [str((M0 + 10) * 60)])
    finally:
        server.shutdown()
        server.server_close()

