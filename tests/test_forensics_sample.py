"""Request reconstruction over the checked-in sample platform data (sample_data/README.md):
the fast-burn incident's error origin, a POST /orders story across the Kafka hop, the planted
orphans and clock skew (imperfections.json), and SLO exemplars."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import ROOT

from sloengine.compute.exemplars import bad_event_filter
from sloengine.engine import Engine
from sloengine.forensics import compare, exemplars, reconstruct, render_tree, story_json
from sloengine.settings import load_settings
from sloengine.spec import load_paths

FAST_BURN = (datetime(2026, 11, 21, 14, 10, tzinfo=UTC), datetime(2026, 11, 21, 14, 35, tzinfo=UTC))


def ns(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000_000


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    db = tmp_path_factory.mktemp("forensics") / "sample.duckdb"
    engine = Engine(load_settings(None, db=db))
    results = engine.ingest([ROOT / "sample_data"])
    assert sum(r.counts.rejected for r in results) == 0
    yield engine
    engine.close()


def _fast_burn_502s(engine: Engine) -> list[tuple[Any, ...]]:
    return engine.store.rows(
        "SELECT correlation_id, trace_id FROM spans WHERE service_name = 'api-gateway' "
        "AND kind = 'SERVER' AND http_status_code = 502 AND start_time_unix_nano >= ? "
        "AND start_time_unix_nano < ? ORDER BY start_time_unix_nano",
        [ns(FAST_BURN[0]), ns(FAST_BURN[1])])


def test_fast_burn_502_error_origin_is_the_payments_provider_call(sample: Engine) -> None:
    failures = _fast_burn_502s(sample)
    assert len(failures) >= 5
    for corr, trace_id in failures[:5]:
        story = reconstruct(sample.store, corr)
        assert story.matched_as == ["correlation_id"] and story.trace_ids == [trace_id]
        eo = story.error_origin
        assert eo is not None and eo.propagated_to_root
        origin = story.spans[eo.key]
        assert origin.service == "payments-service"
        assert origin.attrs["http_status_code"] == 503
        # the chain the error travelled: provider 503 → payments 503 → orders 502 → gateway 502
        chain = [n.service for n in story.spans.values() if n.is_error]
        assert chain[0] == "api-gateway" and chain[-1] == "payments-service"
        bodies = [lg.body or "" for lg in eo.logs]
        assert any("payment provider unavailable" in b for b in bodies)
        assert any(lg.source_kind == "accesslog" for lg in story.logs)  # gateway access log
        assert story.critical_path[-1] == eo.key
        # no order is published for a failed order, so no consumer trace joins the story
        assert not any(n.edge == "link" for n in story.spans.values())


def _order_with_consumer(engine: Engine) -> tuple[str, str, str]:
    corr, consumer_trace, producer_trace = engine.store.rows(
        "SELECT c.correlation_id, c.trace_id, c.links[1].trace_id FROM spans c "
        "WHERE c.kind = 'CONSUMER' AND c.correlation_id IS NOT NULL "
        "ORDER BY c.start_time_unix_nano LIMIT 1 OFFSET 100")[0]
    return str(corr), str(consumer_trace), str(producer_trace)


def test_post_orders_story_crosses_the_queue(sample: Engine) -> None:
    corr, consumer_trace, producer_trace = _order_with_consumer(sample)
    story = reconstruct(sample.store, corr)
    assert set(story.trace_ids) == {producer_trace, consumer_trace}
    by_service = {n.service: n for n in story.spans.values()}
    root = story.spans[story.roots[0]]
    assert (root.service, root.name, root.edge) == ("api-gateway", "POST /orders", "root")
    consumer = by_service["fulfillment-worker"]
    producer = story.spans[consumer.tree_parent] if consumer.tree_parent else None
    assert consumer.edge == "link" and producer is not None and producer.kind == "PRODUCER"
    webhook = by_service["webhook-dispatcher"]
    assert webhook.tree_parent == consumer.key and webhook.kind == "CLIENT"
    assert {"api-gateway", "orders-service", "inventory-service", "payments-service",
            "fulfillment-worker", "webhook-dispatcher"} <= set(by_service)
    # the consumer and its webhook are async: shown, but not on the request's critical path
    assert consumer.key not in story.critical_path and webhook.key not in story.critical_path
    assert story.critical_path[0] == root.key
    # the same story from either trace id, and from the consumer's span id
    same = [story_json(reconstruct(sample.store, i))
            for i in (producer_trace, consumer_trace, consumer.span_id)]
    body = {k: v for k, v in story_json(story).items() if k != "query"}
    assert all({k: v for k, v in j.items() if k != "query"} == body for j in same)


def test_planted_orphans_are_flagged(sample: Engine) -> None:
    planted = json.loads((ROOT / "sample_data" / "imperfections.json").read_text())
    missing = [p for p in planted if p["kind"] == "missing-span"]
    assert len(missing) == 5
    for p in missing:
        story = reconstruct(sample.store, p["trace_id"])
        orphans = {n.span_id for n in story.spans.values() if n.edge == "orphan"}
        assert orphans == set(p["orphans"])
        stand_in = story.spans[(p["trace_id"], p["span_id"])]
        assert stand_in.synthetic and stand_in.edge == "root"
        assert {story.spans[c].span_id for c in stand_in.children} == set(p["orphans"])
        assert not story.complete
        assert any(w.startswith("trace may be incomplete") and p["span_id"] in w
                   for w in story.warnings)
        assert any(ln.startswith("?") and f"(missing span) {p['span_id']}" in ln
                   for ln in render_tree(story).splitlines())


def test_planted_clock_skew_is_flagged_with_its_amount(sample: Engine) -> None:
    skew = next(p for p in json.loads((ROOT / "sample_data" / "imperfections.json").read_text())
                if p["kind"] == "clock-skew")
    lo = datetime.fromisoformat(skew["start"].replace("Z", "+00:00"))
    hi = datetime.fromisoformat(skew["end"].replace("Z", "+00:00"))
    rows = sample.store.rows(
        "SELECT DISTINCT trace_id FROM spans JOIN resources USING (resource_id)"
        " WHERE attributes['host.name'] = ? "
        "AND start_time_unix_nano >= ? AND start_time_unix_nano < ? ORDER BY 1",
        [skew["host"], ns(lo), ns(hi)])
    assert rows
    flagged = 0
    for (trace_id,) in rows:
        story = reconstruct(sample.store, trace_id)
        for n in story.spans.values():
            if n.host == skew["host"] and n.skew is not None:
                flagged += 1
                assert n.skew.estimated_offset_ns is not None
                assert abs(n.skew.estimated_offset_ns / 1e6 - skew["skew_ms"]) < 2.0
        assert all(n.skew is None for n in story.spans.values() if n.host != skew["host"])
    assert flagged >= 1


def test_fast_burn_exemplars_are_the_gateway_502s(sample: Engine) -> None:
    slos = {s.slo.metadata.name: s.slo for s in load_paths([ROOT / "slo_definitions"]).slos}
    table, where, params = bad_event_filter(slos["gateway-availability"])
    ex = exemplars(sample.store, table, where, params, t_from_ns=ns(FAST_BURN[0]),
                   t_to_ns=ns(FAST_BURN[1]), limit=100, order="newest")
    assert {e.correlation_id for e in ex} == {c for c, _ in _fast_burn_502s(sample)}
    assert all(e.is_error and e.route == "POST /orders" and e.status == "502" for e in ex)
    assert [e.time_unix_nano for e in ex] == sorted((e.time_unix_nano for e in ex),
                                                    reverse=True)
    # every exemplar opens as a story whose origin is the provider call
    story = reconstruct(sample.store, ex[0].trace_id or "")
    assert story.error_origin is not None
    assert story.spans[story.error_origin.key].service == "payments-service"


def test_compare_failed_and_successful_order(sample: Engine) -> None:
    corr_ok, _, _ = _order_with_consumer(sample)
    corr_bad = _fast_burn_502s(sample)[0][0]
    c = compare(reconstruct(sample.store, corr_ok), reconstruct(sample.store, corr_bad))
    assert c["same_route"] and c["a"]["route"] == "POST /orders" and c["b"]["is_error"]
    only_ok = {e["name"] for e in c["only_in_a"]}
    assert {"INSERT orders", "publish order-events", "process order-events"} <= only_ok
    assert "api-gateway:POST /orders#0" in {e["path"] for e in c["error_diffs"]}
