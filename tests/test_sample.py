"""The sample-data generator: determinism, OTLP well-formedness, and SLO ground truth."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from sloengine.errors import ConfigError
from sloengine.sample import SampleManifest, generate

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5
ACCESS_KEYS = {
    "ts",
    "method",
    "route",
    "path",
    "status",
    "latency_ms",
    "trace_id",
    "span_id",
    "request_id",
    "client_ip",
    "user_agent",
    "bytes_sent",
    "tenant",
    "service",
}
INCIDENT_KEYS = {
    "id",
    "kind",
    "start",
    "end",
    "services",
    "routes",
    "slo_hint",
    "description",
    "expected_error_ratio",
}


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> SampleManifest:
    """Four days (both incidents) at a low rate: ~5.8k requests, ~1.5 s."""
    return generate(tmp_path_factory.mktemp("full"), days=4, rate_per_min=1.0)


@pytest.fixture(scope="module")
def root(full: SampleManifest) -> Path:
    return Path(full.out)


class Spans:
    """Every span of a generated set, with its resource attributes."""

    def __init__(self, root: Path) -> None:
        self.items: list[tuple[dict[str, str], Any]] = []
        for path in sorted(root.glob("traces/*.binpb.gz")):
            req = ExportTraceServiceRequest()
            req.ParseFromString(gzip.decompress(path.read_bytes()))
            for rs in req.resource_spans:
                res = {kv.key: kv.value.string_value for kv in rs.resource.attributes}
                for ss in rs.scope_spans:
                    self.items.extend((res, s) for s in ss.spans)
        self.by_id = {s.span_id: (res, s) for res, s in self.items}
        self.children: dict[bytes, list[Any]] = defaultdict(list)
        for _, s in self.items:
            self.children[s.parent_span_id].append(s)

    @staticmethod
    def attrs(span: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kv in span.attributes:
            kind = kv.value.WhichOneof("value")
            if kind == "array_value":
                out[kv.key] = [v.string_value for v in kv.value.array_value.values]
            else:
                out[kv.key] = getattr(kv.value, kind)
        return out


@pytest.fixture(scope="module")
def spans(root: Path) -> Spans:
    return Spans(root)


def _jsonl(path: Path) -> list[Any]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def access(root: Path) -> list[dict[str, Any]]:
    return [row for p in sorted(root.glob("access/*.jsonl.gz")) for row in _jsonl(p)]


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _strict(doc: Any, message: Any) -> Any:
    """Parse OTLP/JSON strictly (unknown fields fail) after turning hex ids into base64."""

    def fix(o: Any) -> Any:
        if isinstance(o, dict):
            return {
                k: base64.b64encode(bytes.fromhex(v)).decode()
                if k in ("traceId", "spanId")
                else fix(v)
                for k, v in o.items()
            }
        return [fix(x) for x in o] if isinstance(o, list) else o

    return json_format.ParseDict(fix(doc), message)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- determinism and files -------------------------------------------------------------------
def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", days=0.25, rate_per_min=2.0)
    b = generate(tmp_path / "b", days=0.25, rate_per_min=2.0)
    c = generate(tmp_path / "c", seed=8, days=0.25, rate_per_min=2.0)
    ha, hb, hc = _hashes(tmp_path / "a"), _hashes(tmp_path / "b"), _hashes(tmp_path / "c")
    assert ha == hb
    assert {f.path: f.sha256 for f in a.files} == ha
    assert [f.bytes for f in a.files] == [f.bytes for f in b.files]
    data = [p for p in ha if p.startswith(("traces/", "logs/", "access/", "metrics/"))]
    assert data and all(ha[p] != hc.get(p) for p in data)
    assert c.counts != a.counts or c.defects != a.defects


def test_gzip_headers_carry_no_time_or_name(root: Path) -> None:
    for path in root.rglob("*.gz"):
        head = path.read_bytes()[:10]
        assert head[:3] == b"\x1f\x8b\x08"
        assert head[3] & 0x08 == 0, "FNAME flag set"
        assert head[4:8] == b"\x00\x00\x00\x00", "mtime set"


def test_manifest_lists_every_file_with_its_size(full: SampleManifest, root: Path) -> None:
    on_disk = _hashes(root)
    assert {f.path: f.sha256 for f in full.files} == on_disk
    for f in full.files:
        assert (root / f.path).stat().st_size == f.bytes
    kinds = Counter((f.signal, f.format) for f in full.data_files)
    assert kinds == {
        ("traces", "otlp-proto"): 4,
        ("logs", "otlp-jsonl"): 4,
        ("logs", "jsonl-log"): 4,
        ("metrics", "otlp-json"): 4,
    }
    names = {f.path for f in full.files}
    assert {"traces/traces-2026-11-20.binpb.gz", "metrics/metrics-2026-11-23.json"} <= names
    assert {"README.md", "incidents.json", "imperfections.json"} <= names


def test_rerun_removes_stale_day_files(tmp_path: Path) -> None:
    late = datetime(2026, 11, 20, 23, 0, tzinfo=UTC)
    generate(tmp_path, days=0.1, start=late, rate_per_min=1.0)
    assert (tmp_path / "access/gateway-access-2026-11-21.jsonl.gz").exists()
    generate(tmp_path, days=0.02, start=late - timedelta(hours=12), rate_per_min=1.0)
    assert not list(tmp_path.rglob("*2026-11-21*"))


def test_bad_arguments_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        generate(tmp_path, start=datetime(2026, 11, 20))  # naive
    with pytest.raises(ConfigError):
        generate(tmp_path, days=0)


# -- traces ----------------------------------------------------------------------------------
def test_traces_parse_with_valid_ids_and_statuses(full: SampleManifest, spans: Spans) -> None:
    assert len(spans.items) == full.counts.spans
    assert len(spans.by_id) == full.counts.spans  # span ids unique
    assert len({s.trace_id for _, s in spans.items}) == full.counts.traces
    for res, s in spans.items:
        assert len(s.trace_id) == 16 and any(s.trace_id)
        assert len(s.span_id) == 8 and any(s.span_id)
        assert len(s.parent_span_id) in (0, 8)
        assert s.start_time_unix_nano <= s.end_time_unix_nano
        assert res["service.namespace"] == "shop" and res["deployment.environment.name"] == "prod"
        assert res["platform.layer"] in {
            "gateway",
            "service",
            "queue",
            "integration",
            "data",
            "batch",
        }
        a = Spans.attrs(s)
        status = a.get("http.response.status_code")
        if s.kind == SERVER and isinstance(status, int):
            assert (s.status.code == 2) == (status >= 500), (s.name, status)
            assert s.status.code != 2 or s.status.message
        if s.kind == SERVER and "rpc.grpc.status_code" in a:
            assert (s.status.code == 2) == (a["rpc.grpc.status_code"] in {2, 4, 12, 13, 14, 15})


def test_gateway_spans_carry_the_required_attributes(spans: Spans, access: list[Any]) -> None:
    gateway = [
        s for res, s in spans.items if res["service.name"] == "api-gateway" and s.kind == SERVER
    ]
    assert len(gateway) == len(access)
    for s in gateway:
        a = Spans.attrs(s)
        assert s.name == f"{a['http.request.method']} {a['http.route']}"
        assert isinstance(a["http.response.status_code"], int)
        assert a["http.request.header.x-request-id"] == [a["correlation.id"]]
        for key in ("url.path", "server.address", "client.address", "user_agent.original"):
            assert a[key]
        assert a["tenant.id"]
    routes = Counter(s.name for s in gateway)
    share = routes["GET /orders/{id}"] / len(gateway)
    assert 0.55 < share < 0.65
    emails = sum("user.email" in Spans.attrs(s) for s in gateway)
    assert 0.003 < emails / len(gateway) < 0.02


def test_errors_propagate_from_payments_to_gateway(spans: Spans) -> None:
    payments = [s for _, s in spans.items if s.name == "POST /payments" and s.kind == SERVER]
    failed_payments = [s for s in payments if Spans.attrs(s)["http.response.status_code"] == 503]
    assert failed_payments
    for s in failed_payments:
        assert any(e.name == "exception" for e in s.events)
        chain = []
        cur = s
        while cur.parent_span_id in spans.by_id:
            cur = spans.by_id[cur.parent_span_id][1]
            chain.append((cur.name, cur.kind, Spans.attrs(cur).get("http.response.status_code")))
        if chain and chain[-1][0] == "POST /orders":  # skip traces with a planted gap
            assert chain[-1] == ("POST /orders", SERVER, 502)
            assert ("POST /orders", SERVER, 502) in chain[:-1]


def test_orphans_are_exactly_the_planted_ones(full: SampleManifest, spans: Spans) -> None:
    orphans = {
        s.span_id.hex()
        for _, s in spans.items
        if s.parent_span_id and s.parent_span_id not in spans.by_id
    }
    missing = [d for d in full.defects if d.kind == "missing-span"]
    assert len(missing) == 5
    assert orphans == {o for d in missing for o in d.orphans}
    assert full.counts.orphan_spans == len(orphans)
    for d in missing:
        assert bytes.fromhex(d.span_id) not in spans.by_id
        assert any(s.trace_id.hex() == d.trace_id for _, s in spans.items)


def test_clock_skew_shifts_one_inventory_host(full: SampleManifest, spans: Spans) -> None:
    (skew,) = [d for d in full.defects if d.kind == "clock-skew"]
    assert skew.start and skew.end and skew.skew_ms == 40.0
    lo, hi = skew.start.timestamp() * 1e9, skew.end.timestamp() * 1e9
    gaps: dict[bool, list[float]] = defaultdict(list)
    for res, s in spans.items:
        if res["service.name"] == "inventory-service" and s.kind == SERVER:
            parent = spans.by_id[s.parent_span_id][1]
            skewed = res["host.name"] == skew.host and lo <= parent.start_time_unix_nano < hi
            gaps[skewed].append((s.start_time_unix_nano - parent.start_time_unix_nano) / 1e6)
    assert gaps[True] and all(g >= 40.0 for g in gaps[True])
    assert gaps[False] and all(g < 1.0 for g in gaps[False])


def test_consumer_traces_link_back_to_producer_spans(spans: Spans, access: list[Any]) -> None:
    consumers = [(r, s) for r, s in spans.items if s.kind == CONSUMER]
    producers = {s.span_id for _, s in spans.items if s.kind == PRODUCER}
    assert len(producers) == len(consumers) > 0
    created = sum(1 for row in access if row["route"] == "/orders" and row["status"] == 201)
    assert len(consumers) == created
    for res, c in consumers:
        assert res["service.name"] == "fulfillment-worker" and not c.parent_span_id
        (link,) = c.links
        assert len(link.trace_id) == 16 and len(link.span_id) == 8
        assert link.trace_id != c.trace_id
        _, p = spans.by_id[link.span_id]
        assert p.kind == PRODUCER and p.trace_id == link.trace_id
        assert p.name == "publish order-events" == c.name.replace("process", "publish")
        delay_ms = (c.start_time_unix_nano - p.end_time_unix_nano) / 1e6
        assert 5.0 <= delay_ms <= 500.0
        ca, pa = Spans.attrs(c), Spans.attrs(p)
        assert ca["correlation.id"] == pa["correlation.id"]
        assert ca["messaging.system"] == "kafka" and pa["messaging.operation.type"] == "send"
        hooks = spans.children[c.span_id]
        assert [Spans.attrs(h)["server.address"] for h in hooks] == ["partner.example.com"]


def test_nightly_batch_runs_once_a_day(spans: Spans) -> None:
    roots = [s for _, s in spans.items if s.name == "nightly-settlement"]
    assert len(roots) == 4
    for r in roots:
        started = datetime.fromtimestamp(r.start_time_unix_nano / 1e9, UTC)
        assert (started.hour, started.minute) == (2, 0)
        assert Spans.attrs(r)["batch.file"] == f"settlement-{started:%Y-%m-%d}.csv"
        assert "warehouse-load" in {k.name for k in spans.children[r.span_id]}


# -- logs ------------------------------------------------------------------------------------
def test_log_lines_are_otlp_json_with_hex_ids(
    full: SampleManifest, root: Path, spans: Spans
) -> None:
    records = 0
    bait = 0
    for path in sorted(root.glob("logs/*.jsonl.gz")):
        for req in _jsonl(path):
            _strict(req, ExportLogsServiceRequest())
            for rl in req["resourceLogs"]:
                assert rl["resource"]["attributes"][0]["key"] == "service.name"
                for sl in rl["scopeLogs"]:
                    for r in sl["logRecords"]:
                        records += 1
                        assert HEX32.match(r["traceId"]) and HEX16.match(r["spanId"])
                        assert r["timeUnixNano"].isdigit()
                        assert r["severityNumber"] in (9, 13, 17)
                        body = r["body"]["stringValue"]
                        keys = [a["key"] for a in r["attributes"]]
                        assert "correlation.id" in keys
                        if r["severityNumber"] == 17:
                            assert "exception.message" in keys
                        bait += bool(
                            re.search(r"@example\.(com|org|net)|Authorization: Bearer eyJ", body)
                        )
    assert records == full.counts.logs
    assert bait == full.counts.bait_log_bodies > 0
    trace_ids = {s.trace_id.hex() for _, s in spans.items}
    some = _jsonl(sorted(root.glob("logs/*.jsonl.gz"))[1])[0]
    assert some["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["traceId"] in trace_ids


# -- access log and SLO ground truth ---------------------------------------------------------
def test_access_log_fields(full: SampleManifest, access: list[Any], spans: Spans) -> None:
    assert len(access) == full.counts.requests
    for row in access:
        assert set(row) == ACCESS_KEYS
        assert TS.match(row["ts"]) and HEX32.match(row["trace_id"]) and HEX16.match(row["span_id"])
        assert isinstance(row["status"], int) and isinstance(row["latency_ms"], float)
        assert row["service"] == "api-gateway"
    tss = [row["ts"] for row in access]
    assert tss == sorted(tss)
    res, gw = spans.by_id[bytes.fromhex(access[100]["span_id"])]
    assert res["service.name"] == "api-gateway" and gw.trace_id.hex() == access[100]["trace_id"]
    assert Spans.attrs(gw)["correlation.id"] == access[100]["request_id"]


def _ratios(rows: list[Any]) -> tuple[float, float]:
    n = len(rows)
    return (
        sum(r["status"] >= 500 for r in rows) / n,
        sum(r["latency_ms"] > 500 for r in rows) / n,
    )


def test_incident_windows_hold_the_intended_ratios(full: SampleManifest, access: list[Any]) -> None:
    inc = {i.id: i for i in full.incidents}
    inside: dict[str, list[Any]] = {"fast-burn": [], "slow-burn": [], "baseline": []}
    for row in access:
        ts = _utc(row["ts"])
        key = next((k for k, i in inc.items() if i.start <= ts < i.end), "baseline")
        inside[key].append(row)
    fast_err, fast_slow = _ratios(inside["fast-burn"])
    slow_err, slow_slow = _ratios(inside["slow-burn"])
    base_err, base_slow = _ratios(inside["baseline"])
    assert 0.06 < fast_err < 0.3  # ≫ 14.4 × 0.1 % = 1.44 %
    assert fast_slow == 0.0
    assert all(r["route"] == "/orders" for r in inside["fast-burn"] if r["status"] >= 500)
    assert 0.035 < slow_slow < 0.055  # ≈ 4.5 × the 1 % latency budget
    assert slow_err < 0.002
    assert base_err < 0.001 and base_slow < 0.004  # healthy
    assert inc["fast-burn"].expected_error_ratio == pytest.approx(0.15, abs=0.01)
    assert inc["slow-burn"].expected_error_ratio == 0.045


def test_slow_burn_stays_below_the_page_tiers(full: SampleManifest, access: list[Any]) -> None:
    """Latency 99 %: tier 6 needs > 6 % on 6 h, tier 14.4 > 14.4 % on 1 h; tier 3 fires."""
    t0 = full.start
    minutes: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for row in access:
        m = int((_utc(row["ts"]) - t0).total_seconds() // 60)
        minutes[m][0] += 1
        minutes[m][1] += row["latency_ms"] > 500
    total = max(minutes) + 1
    cum_n, cum_bad = [0], [0]
    for m in range(total):
        cum_n.append(cum_n[-1] + minutes[m][0])
        cum_bad.append(cum_bad[-1] + minutes[m][1])

    def worst(window: int) -> float:
        return max(
            (cum_bad[m] - cum_bad[m - window]) / (cum_n[m] - cum_n[m - window])
            for m in range(window, total + 1)
        )

    assert worst(360) < 0.06
    assert worst(60) < 0.144
    assert worst(1440) > 0.03  # ticket tier 3 (1 d ∧ 2 h) does fire


def test_incidents_json_matches_the_manifest(full: SampleManifest, root: Path) -> None:
    doc = json.loads((root / "incidents.json").read_text())
    assert doc == [i.to_json() for i in full.incidents]
    assert [(d["id"], d["start"], d["end"]) for d in doc] == [
        ("fast-burn", "2026-11-21T14:10:00Z", "2026-11-21T14:35:00Z"),
        ("slow-burn", "2026-11-22T06:00:00Z", "2026-11-23T12:00:00Z"),
    ]
    assert all(set(d) == INCIDENT_KEYS for d in doc)
    assert json.loads(json.dumps(full.to_json()))["incidents"] == doc
    assert "incident fast-burn: 2026-11-21T14:10:00Z" in full.describe()
    defects = json.loads((root / "imperfections.json").read_text())
    assert defects == [d.to_json() for d in full.defects]
    readme = (root / "README.md").read_text()
    assert "2026-11-21T14:10:00Z" in readme and "sloengine sample --out sample_data" in readme


def test_short_runs_leave_incidents_out(tmp_path: Path) -> None:
    m = generate(tmp_path, days=0.2, rate_per_min=1.0)
    assert m.incidents == ()
    assert json.loads((tmp_path / "incidents.json").read_text()) == []
    assert [d.kind for d in m.defects] == ["missing-span"] * 5


# -- metrics ---------------------------------------------------------------------------------
def test_metrics_are_otlp_json_and_agree_with_the_access_log(
    full: SampleManifest, root: Path, access: list[Any]
) -> None:
    final: dict[tuple[str, str, tuple[str, ...]], int] = {}
    points = 0
    kinds: dict[str, str] = {}
    for path in sorted(root.glob("metrics/*.json")):
        doc = json.loads(path.read_text())
        parsed = _strict(doc, ExportMetricsServiceRequest())
        assert len(parsed.resource_metrics) == len(doc["resourceMetrics"])
        for rm in doc["resourceMetrics"]:
            service = rm["resource"]["attributes"][0]["value"]["stringValue"]
            for sm in rm["scopeMetrics"]:
                for metric in sm["metrics"]:
                    kind = next(k for k in metric if k not in {"name", "description", "unit"})
                    kinds[metric["name"]] = kind
                    body = metric[kind]
                    points += len(body["dataPoints"])
                    for p in body["dataPoints"]:
                        assert p["timeUnixNano"].isdigit()
                    if metric["name"] != "http.server.request.duration":
                        continue
                    assert metric["unit"] == "s" and body["aggregationTemporality"] == 2
                    for p in body["dataPoints"]:
                        assert p["explicitBounds"] == BOUNDS
                        counts = [int(c) for c in p["bucketCounts"]]
                        assert len(counts) == len(BOUNDS) + 1 and sum(counts) == int(p["count"])
                        for ex in p.get("exemplars", []):
                            assert HEX32.match(ex["traceId"]) and HEX16.match(ex["spanId"])
                        key = tuple(str(next(iter(a["value"].values()))) for a in p["attributes"])
                        final[(path.name, service, key)] = int(p["count"])  # last point wins
    assert points == full.counts.metric_points
    assert kinds == {
        "http.server.request.duration": "histogram",
        "payments.provider.latency": "exponentialHistogram",
        "orders.created": "sum",
        "kafka.consumer.lag": "gauge",
    }
    gateway = sum(v for (_, svc, _), v in final.items() if svc == "api-gateway")
    assert gateway == len(access)  # daily restarts: per-day finals add up to all requests
    errors = sum(v for (_, svc, k), v in final.items() if svc == "api-gateway" and int(k[2]) >= 500)
    assert errors == sum(row["status"] >= 500 for row in access)
