"""Metrics consistent with the spans, as OTLP/JSON ``ExportMetricsServiceRequest`` per day.

* ``http.server.request.duration`` (s, explicit-bucket Histogram, CUMULATIVE) for api-gateway
  and payments-service, one series per route/method/status code, recorded at span end;
  an exemplar points at the slowest bad request (> 500 ms or 5xx) of each interval.
* ``orders.created`` (monotonic cumulative Sum) per orders-service host.
* ``kafka.consumer.lag`` (Gauge) for ``order-events``.
* ``payments.provider.latency`` (s, ExponentialHistogram scale 3, DELTA).

Bucket rule (``metrics.proto``): explicit bucket i counts values in (bounds[i-1], bounds[i]];
exponential bucket i holds (base**i, base**(i+1)], base = 2**(2**-scale).
Every service is redeployed at 00:00 UTC: cumulative series restart with the first export
interval that starts on a new UTC day (new ``startTimeUnixNano``, counts from zero), so each
day file is self-contained and readers must handle counter resets.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable

from . import otlpjson
from .records import Attrs, Observation
from .topology import CONSUMER_GROUP, SERVICES, TOPIC

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
CUMULATIVE = 2
DELTA = 1
EXP_SCALE = 3
DAY_NS = 86_400_000_000_000

Points = dict[int, list[otlpjson.Json]]  # epoch day → data points
SeriesKey = tuple[str, str, int]  # route, method, status
Shape = Callable[[list[otlpjson.Json]], otlpjson.Json]


def exp_index(v: float, scale: int = EXP_SCALE) -> int:
    """Exponential-histogram bucket index of a positive value."""
    return math.ceil(math.log2(v) * (1 << scale)) - 1


def _metric(name: str, desc: str, unit: str, kind: str, extra: otlpjson.Json) -> otlpjson.Json:
    return {"name": name, "description": desc, "unit": unit, kind: extra}


class Meter:
    """Collects measurements during generation and exports them per UTC day.

    A point at ``start + k·interval`` covers measurements with time ≤ that instant; a point
    belongs to the day file of its interval's start.
    """

    def __init__(self, start_ns: int, interval_ns: int, rng: random.Random) -> None:
        self.start_ns = start_ns
        self.interval_ns = interval_ns
        self.rng = rng
        self.http: list[Observation] = []
        self.provider: list[tuple[int, float]] = []
        self.orders: list[tuple[str, int]] = []
        self.messages: list[tuple[int, int]] = []
        self.points = 0

    def slot(self, ts: int) -> int:
        """Index k of the first export (at ``start + k·interval``) that includes ``ts``."""
        return max(1, -(-(ts - self.start_ns) // self.interval_ns))

    def _day(self, k: int) -> int:
        return (self.start_ns + (k - 1) * self.interval_ns) // DAY_NS

    def _time(self, k: int) -> str:
        return str(self.start_ns + k * self.interval_ns)

    def _restarts(self, k: int) -> bool:
        """True when slot k is the first export of a new process (restart at 00:00 UTC)."""
        return k == 1 or self._day(k - 1) != self._day(k)

    # -- export --------------------------------------------------------------------------
    def export(self, end_ns: int) -> dict[int, otlpjson.Json]:
        """One OTLP/JSON request per epoch day."""
        times = [end_ns, *(o.end_ns for o in self.http), *(c for _, c in self.messages)]
        slots = range(1, self.slot(max(times)) + 1)
        per_day: dict[int, dict[tuple[str, str], list[otlpjson.Json]]] = defaultdict(dict)

        def add(service: str, host: str, points: Points, shape: Shape) -> None:
            for day, pts in points.items():
                if pts:
                    per_day[day].setdefault((service, host), []).append(shape(pts))
                    self.points += len(pts)

        for service, host in sorted({(o.service, o.host) for o in self.http}):
            add(service, host, self._durations(slots, service, host), self._duration_metric)
        payments = SERVICES["payments-service"].hosts[0]
        add("payments-service", payments, self._provider(slots), self._provider_metric)
        for host in sorted({h for h, _ in self.orders}):
            add("orders-service", host, self._orders(slots, host), self._orders_metric)
        worker = SERVICES["fulfillment-worker"].hosts[0]
        add("fulfillment-worker", worker, self._lag(slots), self._lag_metric)
        return {
            day: {"resourceMetrics": [self._resource(s, h, m) for (s, h), m in res.items()]}
            for day, res in sorted(per_day.items())
        }

    @staticmethod
    def _resource(service: str, host: str, metrics: list[otlpjson.Json]) -> otlpjson.Json:
        return {
            "resource": otlpjson.resource(service, host),
            "scopeMetrics": [{"scope": otlpjson.scope(), "metrics": metrics}],
            "schemaUrl": otlpjson.schema_url(),
        }

    # -- http.server.request.duration ----------------------------------------------------
    @staticmethod
    def _duration_metric(points: list[otlpjson.Json]) -> otlpjson.Json:
        body = {"dataPoints": points, "aggregationTemporality": CUMULATIVE}
        desc = "Duration of HTTP server requests."
        return _metric("http.server.request.duration", desc, "s", "histogram", body)

    def _durations(self, slots: range, service: str, host: str) -> Points:
        by_slot: dict[int, list[Observation]] = defaultdict(list)
        for o in self.http:
            if o.service == service and o.host == host:
                by_slot[self.slot(o.end_ns)].append(o)
        buckets: dict[SeriesKey, list[int]] = {}
        sums: dict[SeriesKey, float] = {}
        out: Points = defaultdict(list)
        start = ""
        for k in slots:
            if self._restarts(k):  # restart: cumulative series begin again
                buckets, sums, start = {}, {}, self._time(k - 1)
            worst: dict[SeriesKey, Observation] = {}
            for o in by_slot.get(k, ()):
                key = (o.route, o.method, o.status)
                counts = buckets.setdefault(key, [0] * (len(BOUNDS) + 1))
                counts[bisect_left(BOUNDS, o.seconds)] += 1
                sums[key] = sums.get(key, 0.0) + o.seconds
                bad = o.seconds > 0.5 or o.status >= 500
                if bad and (key not in worst or o.seconds > worst[key].seconds):
                    worst[key] = o
            for key in sorted(buckets):
                attrs: Attrs = [
                    ("http.route", key[0]),
                    ("http.request.method", key[1]),
                    ("http.response.status_code", key[2]),
                ]
                point: otlpjson.Json = {
                    "attributes": otlpjson.attributes(attrs),
                    "startTimeUnixNano": start,
                    "timeUnixNano": self._time(k),
                    "count": str(sum(buckets[key])),
                    "sum": round(sums[key], 6),
                    "bucketCounts": [str(c) for c in buckets[key]],
                    "explicitBounds": list(BOUNDS),
                }
                if key in worst:
                    w = worst[key]
                    point["exemplars"] = [
                        {
                            "timeUnixNano": str(w.end_ns),
                            "asDouble": round(w.seconds, 6),
                            "spanId": w.span_id.hex(),
                            "traceId": w.trace_id.hex(),
                        }
                    ]
                out[self._day(k)].append(point)
        return out

    # -- payments.provider.latency -------------------------------------------------------
    @staticmethod
    def _provider_metric(points: list[otlpjson.Json]) -> otlpjson.Json:
        body = {"dataPoints": points, "aggregationTemporality": DELTA}
        desc = "Latency of calls to the external payment provider."
        return _metric("payments.provider.latency", desc, "s", "exponentialHistogram", body)

    def _provider(self, slots: range) -> Points:
        by_slot: dict[int, list[float]] = defaultdict(list)
        for end, seconds in self.provider:
            by_slot[self.slot(end)].append(seconds)
        out: Points = defaultdict(list)
        for k in slots:
            values = by_slot.get(k)
            if not values:
                continue  # a delta SDK exports nothing for an idle interval
            idx = [exp_index(v) for v in values]
            lo = min(idx)
            counts = [0] * (max(idx) - lo + 1)
            for i in idx:
                counts[i - lo] += 1
            out[self._day(k)].append(
                {
                    "startTimeUnixNano": self._time(k - 1),
                    "timeUnixNano": self._time(k),
                    "count": str(len(values)),
                    "sum": round(sum(values), 6),
                    "scale": EXP_SCALE,
                    "zeroCount": "0",
                    "positive": {"offset": lo, "bucketCounts": [str(c) for c in counts]},
                    "min": round(min(values), 6),
                    "max": round(max(values), 6),
                }
            )
        return out

    # -- orders.created ------------------------------------------------------------------
    @staticmethod
    def _orders_metric(points: list[otlpjson.Json]) -> otlpjson.Json:
        body = {"dataPoints": points, "aggregationTemporality": CUMULATIVE, "isMonotonic": True}
        return _metric("orders.created", "Orders accepted.", "{order}", "sum", body)

    def _orders(self, slots: range, host: str) -> Points:
        per_slot: dict[int, int] = defaultdict(int)
        for h, ts in self.orders:
            if h == host:
                per_slot[self.slot(ts)] += 1
        out: Points = defaultdict(list)
        total, start = 0, ""
        for k in slots:
            if self._restarts(k):
                total, start = 0, self._time(k - 1)
            total += per_slot.get(k, 0)
            point = {"startTimeUnixNano": start, "timeUnixNano": self._time(k), "asInt": str(total)}
            out[self._day(k)].append(point)
        return out

    # -- kafka.consumer.lag --------------------------------------------------------------
    @staticmethod
    def _lag_metric(points: list[otlpjson.Json]) -> otlpjson.Json:
        desc = "Messages published but not yet processed by the consumer group."
        return _metric("kafka.consumer.lag", desc, "{message}", "gauge", {"dataPoints": points})

    def _lag(self, slots: range) -> Points:
        attrs = otlpjson.attributes(
            [
                ("messaging.system", "kafka"),
                ("messaging.destination.name", TOPIC),
                ("messaging.consumer.group.name", CONSUMER_GROUP),
            ]
        )
        events = sorted([(p, 1) for p, _ in self.messages] + [(c, -1) for _, c in self.messages])
        out: Points = defaultdict(list)
        pos, in_flight = 0, 0
        for k in slots:
            at = self.start_ns + k * self.interval_ns
            while pos < len(events) and events[pos][0] <= at:
                in_flight += events[pos][1]
                pos += 1
            lag = in_flight + self.rng.randrange(3)  # uncommitted offsets
            point = {"attributes": attrs, "timeUnixNano": str(at), "asInt": str(lag)}
            out[self._day(k)].append(point)
        return out
