"""The status pages (sloengine/api/pages.py, sloengine/report/pages.py) on the sample data.

- Over HTTP in process (FastAPI's TestClient on the pages router with the real access
  control): what each page says at 2026-11-21T14:30Z, inside the fast burn of
  sample_data/README.md (14:10–14:35Z), exactly; sign-in, sign-out, CSRF and redirects.
- In a real browser: headless Chromium (playwright, the system's /usr/bin/chromium) against
  a running ``sloengine run`` on the sample data: sign in through the form, read the
  overview, an SLO page and a trace page as a person would.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ROOT
from fastapi.testclient import TestClient
from otlp_factory import span, trace_request
from servers import free_port, need

from sloengine.api.app import build_app
from sloengine.api.pages import COOKIE
from sloengine.engine import Engine
from sloengine.scheduler import EngineService
from sloengine.settings import load_settings

AT = datetime(2026, 11, 21, 14, 30, tzinfo=UTC)
XSS = '<script>alert("span")</script><img src=x onerror=alert(1)>'
XSS_TRACE = f"{0xFEED:032x}"
HTML = {"accept": "text/html,application/xhtml+xml"}


# -- the sample store ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample data, alert state caught up to 14:30 on 2026-11-21, a span whose name and
    attribute are HTML, and two keys (oncall, ingest); closed, so tests copy it."""
    db = tmp_path_factory.mktemp("pages") / "sample.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        engine = Engine(_settings(db), clock=lambda: AT)
        engine.ingest([ROOT / "sample_data"])
        req = trace_request([span(0xFEED, 1, name=XSS, attrs={"note": "<b>bold</b>"}),
                             span(0xFEED, 2, 1, name="child & <i>", start_ms=2, dur_ms=5)],
                            service="<svc>")
        engine.ingest_bytes(req.SerializeToString(), "traces", "otlp-proto", "test")
        engine.catch_up()
        engine.close()
    return db


def _settings(db: Path, **kw: Any) -> Any:
    return load_settings(None, db=db, slo_dir=ROOT / "slo_definitions", **kw)


def _copy(pristine: Path, to: Path) -> Path:
    to.mkdir(parents=True, exist_ok=True)
    shutil.copy(pristine, to / "sample.duckdb")
    return to / "sample.duckdb"


@pytest.fixture(scope="module")
def client(pristine: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The app of ``sloengine run`` (pages, access control, gate) over a copy of the store,
    and keys by role. The engine's clock stands at 14:30 (the fast burn)."""
    db = _copy(pristine, tmp_path_factory.mktemp("client"))
    settings = _settings(db)
    service = EngineService(settings, Engine(settings, clock=lambda: AT))
    keys = {role: service.engine.create_key(role, f"{role}-person")[1]
            for role in ("oncall", "ingest", "auditor")}
    app = build_app(service=service)  # the app of `sloengine run`, without the receiver
    with TestClient(app, base_url="http://127.0.0.1:8080") as tc:
        yield tc, keys
    service.close()


def _get(c: TestClient, path: str, key: str) -> httpx.Response:
    r = c.get(path, headers={**HTML, "authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text[:500]
    assert r.headers["content-type"].startswith("text/html")
    return r


class Tables(HTMLParser):
    """Text of every cell of every table with a class, links, and the <script> tags seen."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.links: list[str] = []
        self.scripts = 0
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("class"):
            self._table = str(a["class"]).split()[0]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []
        elif tag == "a" and a.get("href"):
            self.links.append(str(a["href"]))
        elif tag == "script":
            self.scripts += 1
        if self._cell is not None:
            self._cell.append(" ")  # <br>, <span>: words apart, as a person reads them

    def handle_endtag(self, tag: str) -> None:
        if self._cell is not None:
            self._cell.append(" ")
        if tag in ("td", "th") and self._table and self._cell is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


# -- what the pages say ----------------------------------------------------------------------
def test_overview_inside_the_fast_burn(client: tuple[TestClient, dict[str, str]]) -> None:
    c, keys = client
    page = Tables(_get(c, "/", keys["oncall"]).text)
    assert page.scripts == 0
    # the live state machine at 14:30 (catch_up replayed the incident minute by minute)
    alerts = [f"{r[0]} {r[1]} {r[2]}/{r[3]}/{r[4]}/{r[5]} since {r[6]}"
              for r in page.tables["alerts"][1:]]
    assert alerts == [
        "firing page payments-availability/0.999/–/page-slow since 2026-11-21 14:14",
        "firing ticket payments-availability/0.999/–/ticket-slow since 2026-11-21 14:14",
        "firing ticket payments-availability/0.999/–/ticket-fast since 2026-11-21 14:15",
        "firing ticket gateway-availability-accesslog/0.999/–/ticket-slow since 2026-11-21 14:21",
        "firing ticket gateway-availability/99.9/–/ticket-slow since 2026-11-21 14:21",
        "firing ticket orders-availability/0.999/–/ticket-slow since 2026-11-21 14:21",
        "firing page gateway-availability-accesslog/0.999/–/page-fast since 2026-11-21 14:22",
        "firing page gateway-availability/99.9/–/page-fast since 2026-11-21 14:22",
        "firing page gateway-route-availability/0.995/route=/orders/page-fast since "
        "2026-11-21 14:22",
        "firing page orders-availability/0.999/–/page-fast since 2026-11-21 14:22",
        "firing page payments-availability/0.999/–/page-fast since 2026-11-21 14:22",
        "firing page gateway-availability-accesslog/0.999/–/page-slow since 2026-11-21 14:24",
        "firing page gateway-availability/99.9/–/page-slow since 2026-11-21 14:24",
        "firing ticket gateway-route-availability/0.995/route=/orders/ticket-slow since "
        "2026-11-21 14:24",
        "firing page orders-availability/0.999/–/page-slow since 2026-11-21 14:24",
        "firing ticket gateway-availability-accesslog/0.999/–/ticket-fast since 2026-11-21 14:27",
        "firing ticket gateway-availability/99.9/–/ticket-fast since 2026-11-21 14:27",
        "firing ticket orders-availability/0.999/–/ticket-fast since 2026-11-21 14:27",
    ]
    assert Tables(_get(c, "/", keys["oncall"]).text).tables["alerts"] == page.tables["alerts"]
    slos = {row[0].split(" ")[0]: row[1:] for row in page.tables["slos"][1:] if row[0]}
    assert page.tables["slos"][0] == ["SLO", "Objective · group", "Status", "SLI (window)",
                                      "Target", "Error budget left",
                                      "Burn rate per window", "Alerts"]
    assert sorted(slos) == [
        "api-gateway-prometheus-availability", "fulfillment-freshness",
        "gateway-availability", "gateway-availability-accesslog", "gateway-latency",
        "gateway-latency-metrics", "gateway-route-availability", "inventory-grpc-uptime",
        "legacy-settlement-success", "orders-availability", "orders-db-latency",
        "partner-webhook-delivery", "payments-availability", "payments-latency"]
    assert slos["gateway-availability"] == [
        "–", "ok", "99.777% 4,468 / 4,478", "99.90%", "-123.3%",
        "5m 100.00× 30m 98.90× 1h 52.94× 2h 26.16× 6h 8.98× 1d 3.57× 3d 2.23×",
        "page-fast firing page-slow firing ticket-fast firing ticket-slow firing"]
    # no Prometheus configured: a status, not a number
    assert slos["api-gateway-prometheus-availability"] == [
        "–", "source unavailable", "– 0 / 0", "99.90%", "–",
        "5m – 30m – 1h – 2h – 6h – 1d – 3d –", "–"]
    assert slos["legacy-settlement-success"][4:] == ["100.0%", "1h – 1d 0.00×", "–"]
    by_route = [r[1:] for r in page.tables["slos"][1:]
                if r[1].startswith("route=")]
    assert [(r[0], r[4], r[6]) for r in by_route] == [
        ("route=/inventory/{sku}", "68.4%", "–"),
        ("route=/orders", "-59.6%", "page-fast firing ticket-slow firing"),
        ("route=/orders/{id}", "100.0%", "–")]
    assert "/slos/gateway-availability" in page.links


def test_overview_looking_back_and_its_headers(client: tuple[TestClient, dict[str, str]]
                                              ) -> None:
    c, keys = client
    before = _get(c, "/?at=2026-11-21T12:00:00Z", keys["oncall"])
    assert "State at 2026-11-21 12:00 UTC (a look back in time" in before.text
    page = Tables(before.text)
    assert "alerts" not in page.tables  # the live alert list belongs to now only
    assert [r[-1] for r in page.tables["slos"][1:]] == ["–"] * 16
    assert '<div class="v good" id="firing-count">0</div>' in before.text
    during = _get(c, "/?at=2026-11-21T14:30:00Z", keys["oncall"]).text
    assert '<div class="v bad" id="firing-count">18</div>' in during  # conditions holding
    assert before.headers["x-frame-options"] == "DENY"
    assert before.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in before.headers["content-security-policy"]


def test_slo_page_charts_alert_timeline_and_exemplars(
        client: tuple[TestClient, dict[str, str]]) -> None:
    c, keys = client
    html = _get(c, "/slos/gateway-availability?days=1", keys["oncall"]).text
    page = Tables(html)
    assert html.count("<svg") == 4  # SLI over the window, SLI per step, budget, alerts
    assert [r[:6] for r in page.tables["alert-timeline"][1:]] == [
        ["page-fast", "page", "–", "2026-11-21 14:15", "2026-11-21 14:15", "2026-11-21 14:19"],
        ["ticket-slow", "ticket", "–", "2026-11-21 14:21", "2026-11-21 14:21", "still firing"],
        ["page-fast", "page", "–", "2026-11-21 14:22", "2026-11-21 14:22", "still firing"],
        ["page-slow", "page", "–", "2026-11-21 14:24", "2026-11-21 14:24", "still firing"],
        ["ticket-fast", "ticket", "–", "2026-11-21 14:27", "2026-11-21 14:27", "still firing"],
    ]
    assert [r[-1] for r in page.tables["tiers"][1:]] == ["firing"] * 4
    exemplars = [h for h in page.links if h.startswith("/traces/")]
    assert exemplars[:2] == ["/traces/4684f06b06638c7e089ef65d065b666c",
                             "/traces/2ec8833c50a2d93e25f133b91540fd77"]
    assert len(exemplars) == len(page.tables["exemplars"]) - 1 == 5


def test_trace_page_waterfall(client: tuple[TestClient, dict[str, str]]) -> None:
    c, keys = client
    page = Tables(_get(c, "/traces/2ec8833c50a2d93e25f133b91540fd77", keys["oncall"]).text)
    names = [r[1] for r in page.tables["waterfall"][1:] if len(r) == 5]
    assert names[0].startswith("api-gateway POST /orders server 502")
    assert len(names) > 5


def test_untrusted_text_is_escaped(client: tuple[TestClient, dict[str, str]]) -> None:
    c, keys = client
    html = _get(c, f"/traces/{XSS_TRACE}", keys["oncall"]).text
    assert "<script>" not in html and "<img" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(&#34;span&#34;)&lt;/script&gt;&lt;img src=x" in html
    assert "&lt;svc&gt;" in html and "child &amp; &lt;i&gt;" in html
    assert Tables(html).scripts == 0
    # a hostile SLO name in the path is shown as text on the 404 page
    r = c.get("/slos/%3Cscript%3Ex", headers={**HTML, "authorization":
                                               f"Bearer {keys['oncall']}"})
    assert r.status_code == 404 and "&lt;script&gt;x" in r.text and "<script>" not in r.text


def test_errors_are_pages(client: tuple[TestClient, dict[str, str]]) -> None:
    c, keys = client
    auth = {**HTML, "authorization": f"Bearer {keys['oncall']}"}
    assert c.get("/traces/ffffffffffffffffffffffffffffffff", headers=auth).status_code == 404
    bad = c.get("/?at=yesterday", headers=auth)
    assert bad.status_code == 400 and "is not an ISO 8601 time" in bad.text
    assert c.get("/slos/gateway-availability?days=0", headers=auth).status_code == 400


# -- access ----------------------------------------------------------------------------------
def test_a_browser_without_a_key_goes_to_login(
        client: tuple[TestClient, dict[str, str]]) -> None:
    c, keys = client
    r = c.get("/slos/gateway-availability?days=1", headers=HTML, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fslos%2Fgateway-availability%3Fdays%3D1"
    api = c.get("/", headers={"accept": "application/json"})
    assert api.status_code == 401
    assert api.headers["content-type"] == "application/problem+json"
    denied = c.get("/", headers={**HTML, "authorization": f"Bearer {keys['ingest']}"})
    assert denied.status_code == 403 and "pages:read" in denied.text
    assert c.get("/", headers={**HTML, "authorization": f"Bearer {keys['auditor']}"}
                 ).status_code == 200
    form = c.get("/login?next=%2Fslos%2Fx")
    assert form.status_code == 200 and 'name="next" value="/slos/x"' in form.text


def test_login_sets_a_strict_cookie_and_logout_clears_it(
        client: tuple[TestClient, dict[str, str]]) -> None:
    c, keys = client
    own = {"origin": "http://127.0.0.1:8080"}
    r = c.post("/login", data={"api_key": keys["oncall"], "next": "/slos/gateway-latency"},
               headers=own, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/slos/gateway-latency"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={keys['oncall']};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http here; Secure when served over TLS
    assert c.get("/", headers=HTML).status_code == 200  # the cookie alone lets one in
    out = c.post("/logout", headers=own, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert 'Max-Age=0' in out.headers["set-cookie"]
    c.cookies.clear()
    assert c.get("/", headers=HTML, follow_redirects=False).status_code == 303


def test_login_refuses_bad_keys_other_sites_and_open_redirects(
        client: tuple[TestClient, dict[str, str]]) -> None:
    c, keys = client
    own = {"origin": "http://127.0.0.1:8080"}
    bad = c.post("/login", data={"api_key": "slo_000000000000_" + "x" * 43}, headers=own)
    assert bad.status_code == 401 and "the API key is not valid" in bad.text
    assert "set-cookie" not in bad.headers
    ingest = c.post("/login", data={"api_key": keys["ingest"]}, headers=own)
    assert ingest.status_code == 403 and "set-cookie" not in ingest.headers
    for origin in ({"origin": "https://evil.example"}, {"referer": "https://evil.example/x"},
                   {}):
        r = c.post("/login", data={"api_key": keys["oncall"]}, headers=origin)
        assert r.status_code == 403 and "set-cookie" not in r.headers, origin
        assert c.post("/logout", headers=origin).status_code == 403
    tls = TestClient(c.app, base_url="https://127.0.0.1:8443")
    r = tls.post("/login", data={"api_key": keys["oncall"]},
                 headers={"origin": "https://127.0.0.1:8443"}, follow_redirects=False)
    assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]
    same = c.post("/login", data={"api_key": keys["oncall"], "next": "//evil.example/"},
                  headers={"referer": "http://127.0.0.1:8080/login"}, follow_redirects=False)
    assert same.status_code == 303 and same.headers["location"] == "/"
    c.cookies.clear()


# -- a person with a browser -----------------------------------------------------------------
def test_in_a_real_browser(pristine: Path, tmp_path: Path) -> None:
    """``sloengine run`` serving the sample store; Chromium signs in with a key made by
    ``sloengine keys create`` and reads the pages."""
    chromium = need("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[test]')")
    db = _copy(pristine, tmp_path)
    port = free_port()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    cfg = tmp_path / "sloengine.yaml"
    cfg.write_text(f"db: {db}\ninputs: [{inbox}]\nslo_dir: {ROOT / 'slo_definitions'}\n"
                   f"reports_dir: {tmp_path / 'reports'}\nmetrics_port: 0\n"
                   f"http: {{port: {port}}}\n"
                   "schedule: {ingest_seconds: 3600, evaluate_seconds: 3600}\n")
    key = _create_key(cfg)
    base = f"http://127.0.0.1:{port}"
    with _service(cfg, base), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium,
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(base + "/")
        assert page.url == base + "/login?next=%2F"
        assert page.locator("h1").inner_text() == "Sign in"
        page.fill("#api_key", key)
        page.click("button[type=submit]")
        assert page.url == base + "/"
        assert "signed in as browser-person (oncall)" in page.locator("header").inner_text()
        names = page.locator("a.slo-name").all_inner_texts()
        assert "gateway-availability" in names and len(names) == 14
        row = page.locator("tr[data-slo='api-gateway-prometheus-availability']")
        assert "source unavailable" in row.inner_text()
        page.click("a.slo-name:text-is('gateway-availability')")
        assert page.url == base + "/slos/gateway-availability"
        page.goto(base + "/slos/gateway-availability?days=7&to=2026-11-24T00:00:00Z")
        assert page.locator("h1").inner_text() == "gateway-availability"
        assert page.locator("svg.chart").count() == 4
        fired = page.locator("table.alert-timeline tbody tr").all_inner_texts()
        assert any(r.startswith("page-fast\tpage") and "2026-11-21 14:15" in r for r in fired)
        page.click("table.exemplars a.trace >> nth=0")
        assert "/traces/" in page.url
        rows = page.locator("table.waterfall tr.span")
        assert rows.count() >= 3 and "api-gateway" in rows.nth(0).inner_text()
        page.goto(f"{base}/traces/{XSS_TRACE}")
        assert XSS in page.locator("table.waterfall").inner_text()
        assert dialogs == []  # the payload stayed text: no script ran
        page.click("header button")  # sign out
        assert page.url == base + "/login"
        page.goto(base + "/")
        assert page.url == base + "/login?next=%2F"
        browser.close()


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _create_key(cfg: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "sloengine", "keys", "create", "--role",
                           "oncall", "--name", "browser-person", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return next(w for w in proc.stdout.split() if w.startswith("slo_"))


class _service:
    """``sloengine run --config cfg`` until the block ends (SIGTERM, then a clean exit)."""

    def __init__(self, cfg: Path, base: str) -> None:
        self.cfg, self.base = cfg, base
        self.log = cfg.parent / "service.log"

    def __enter__(self) -> subprocess.Popen[str]:
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sloengine", "run", "--config", str(self.cfg)],
                cwd=ROOT, stdout=out, stderr=out, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(self.base + "/login", timeout=1).status_code == 200:
                    return self.proc
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"service not up: {self.log.read_text()[-3000:]}")

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
