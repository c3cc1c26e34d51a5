"""The span decoder derives kind, status, duration and the error flag per chunk, over columns
(ingest/traces.py ``_span_codes``); the rule is ``semconv.is_error``. Both must agree on every
combination, and promotion must not depend on the order attributes were sent in."""

from __future__ import annotations

import itertools

import pyarrow as pa
from otlp_factory import kv, span, trace_request

from sloengine.engine import Engine
from sloengine.ingest.semconv import (
    GRPC_CODES,
    LOG_PROMOTED,
    SPAN_KINDS,
    SPAN_PROMOTED,
    STATUS_CODES,
    is_error,
)
from sloengine.ingest.traces import is_error_array


def test_vectorised_error_rule_equals_the_scalar_one() -> None:
    https: list[int | None] = [None, 0, 100, 200, 399, 400, 404, 499, 500, 503, 599, 999]
    rpcs: list[str | None] = [None, *GRPC_CODES, "WEIRD"]
    combos = list(itertools.product(SPAN_KINDS, STATUS_CODES, https, rpcs))
    kinds, statuses, hs, rs = (list(x) for x in zip(*combos, strict=True))
    got = is_error_array(pa.array(kinds), pa.array(statuses), pa.array(hs, pa.int32()),
                         pa.array(rs, pa.string())).to_pylist()
    want = [is_error(k, s, h, r) for k, s, h, r in combos]
    assert len(combos) == 6 * 3 * 12 * 19
    assert got == want


def test_names_of_one_column_have_distinct_priorities() -> None:
    for table in (SPAN_PROMOTED, LOG_PROMOTED):
        seen: dict[tuple[str, int], str] = {}
        for name, (col, rank) in table.items():
            assert (col, rank) not in seen, f"{name} and {seen[(col, rank)]} tie for {col}"
            seen[(col, rank)] = name


def test_promotion_and_codes_whatever_the_attribute_order(engine: Engine) -> None:
    attrs = {"rpc.grpc.status_code": 14, "rpc.status_code": "ok",
             "rpc.response.status_code": "unavailable", "http.status_code": "200",
             "http.response.status_code": 503, "enduser.role": "admin", "n": 3}
    spans = []
    for i, order in enumerate(itertools.permutations(list(attrs)[:4])):
        spans.append(span(1, i + 1, kind=3 if i % 2 else 9, status=i % 4,
                          attrs={k: attrs[k] for k in [*order, *list(attrs)[4:]]}))
    engine.ingest_bytes(trace_request(spans).SerializeToString(), "traces", "otlp-proto",
                        "10.0.0.1:1")
    rows = engine.store.rows(
        "SELECT DISTINCT rpc_status_code, http_status_code, attr_str, attr_int FROM spans")
    assert rows == [("UNAVAILABLE", 503, {"enduser.role": "admin"}, {"n": 3})]
    got = engine.store.rows("SELECT kind, status_code, is_error, duration_ns FROM spans"
                            " ORDER BY span_id")
    want = []
    for i in range(len(spans)):
        kind = "CLIENT" if i % 2 else "UNSPECIFIED"
        status = STATUS_CODES[i % 4] if i % 4 < 3 else "UNSET"
        want.append((kind, status, is_error(kind, status, 503, "UNAVAILABLE"), 10_000_000))
    assert got == want


def test_repeated_attribute_keys_keep_the_last_value_in_both_encodings(engine: Engine
                                                                       ) -> None:
    """OTLP-NOTES.md §8: a key sent twice keeps its last value, in the place of the first —
    also when the two values have different types (the decoder's exact path)."""
    import orjson

    sp = span(1, 1)
    for k, v in (("a", "x"), ("n", 1), ("a", 5), ("b", "y"), ("c", True), ("b", "z"),
                 ("http.route", "/old"), ("http.route", "/new")):
        sp.attributes.append(kv(k, v))
    engine.ingest_bytes(trace_request([sp]).SerializeToString(), "traces", "otlp-proto",
                        "10.0.0.1:1")
    attrs = [{"key": k, "value": {"stringValue": v} if isinstance(v, str) else
              {"boolValue": v} if isinstance(v, bool) else {"intValue": str(v)}}
             for k, v in (("a", "x"), ("n", 1), ("a", 5), ("b", "y"), ("c", True),
                          ("b", "z"), ("http.route", "/old"), ("http.route", "/new"))]
    body = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "svc"}}]}, "scopeSpans": [{"spans": [{
            "traceId": f"{2:032x}", "spanId": f"{2:016x}", "name": "op", "kind": 2,
            "startTimeUnixNano": "1", "endTimeUnixNano": "2", "attributes": attrs}]}]}]}
    engine.ingest_bytes(orjson.dumps(body), "traces", "otlp-json", "10.0.0.1:1")
    rows = engine.store.rows("SELECT span_id, http_route, attr_str, attr_int, attr_bool"
                             " FROM spans ORDER BY span_id")
    want = ("/new", {"b": "z"}, {"a": 5, "n": 1}, {"c": True})
    assert [r[1:] for r in rows] == [want, want]
    # the int map keeps the first position of "a" (before "n")
    assert engine.store.rows("SELECT map_keys(attr_int) FROM spans") == [(["a", "n"],)] * 2
