"""The generation loop: arrivals → outcomes → span trees, logs, access lines, metrics → files.

Independent random streams (``Random(f"{seed}:<purpose>")``, seeded through SHA-512, so not
affected by ``PYTHONHASHSEED``) keep traffic and faults stable when cosmetic details change.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sloengine.errors import ConfigError

from . import accesslog, docs
from .batch import nightly
from .builder import TraceBuilder
from .fulfillment import consume
from .identity import IdSource
from .journal import Journal
from .manifest import Defect, Incident, SampleCounts, SampleManifest
from .meter import Meter
from .otlpjson import readable
from .outcome import FaultModel
from .output import Output
from .records import CLIENT, SERVER, Span
from .request import Request, Visit
from .schedule import (
    EMPTY,
    SKEW_MS,
    SKEW_SERVICE,
    Window,
    arrivals,
    batch_times,
    incidents,
    skew_window,
    utc_ns,
)
from .topology import (
    EMAILS,
    GET_ORDER,
    GET_STOCK,
    PARTITIONS,
    POST_ORDER,
    ROUTES,
    SKEWED_HOST,
    TENANT_WEIGHTS,
    TENANTS,
    UA_WEIGHTS,
    USER_AGENTS,
    client_pool,
)

#: Share of traces whose services write INFO lines (ERROR/WARN lines are never sampled).
LOG_SAMPLE = 0.1
#: Share of gateway spans carrying ``user.email`` (redaction bait).
EMAIL_SHARE = 0.01
#: Defaults of :func:`generate` (chosen so the checked-in set stays near 5 MB).
DEFAULT_SEED = 7
DEFAULT_DAYS = 4.0
DEFAULT_START = datetime(2026, 11, 20, tzinfo=UTC)
DEFAULT_RATE = 2.0
#: Metric export interval; the OTel SDK default is 60 s, but 60 s points make ~6 MB of plain
#: JSON per day, so the checked-in set exports every 15 minutes.
DEFAULT_METRIC_INTERVAL_S = 900
#: Spans dropped from five POST /orders traces: (service, kind, name).
DROPS = (
    ("orders-service", SERVER, "POST /orders"),
    ("api-gateway", CLIENT, "POST"),
    ("payments-service", SERVER, "POST /payments"),
    ("orders-service", CLIENT, "POST"),
    ("orders-service", SERVER, "POST /orders"),
)


def _window(incident: Incident | None) -> Window:
    return Window(utc_ns(incident.start), utc_ns(incident.end)) if incident else EMPTY


def _drop(b: TraceBuilder, service: str, kind: int, name: str) -> Defect | None:
    victim = next(
        (s for s in b.spans if (s.service, s.kind, s.name) == (service, kind, name)), None
    )
    if victim is None:
        return None
    b.spans.remove(victim)
    orphans = tuple(s.span_id.hex() for s in b.spans if s.parent_id == victim.span_id)
    return Defect(
        kind="missing-span",
        trace_id=victim.trace_id.hex(),
        span_id=victim.span_id.hex(),
        service=service,
        span_name=name,
        orphans=orphans,
    )


def generate(
    out: Path,
    *,
    seed: int = DEFAULT_SEED,
    days: float = DEFAULT_DAYS,
    start: datetime = DEFAULT_START,
    rate_per_min: float = DEFAULT_RATE,
    metric_interval_s: int = DEFAULT_METRIC_INTERVAL_S,
) -> SampleManifest:
    """Write the sample data set into ``out`` and describe it (same args ⇒ same bytes).

    ``rate_per_min`` is the mean gateway request rate (diurnal, ×0.5…×1.5); incidents and
    the clock-skew window are offsets from ``start`` and appear only if they fit in ``days``.
    Raises :class:`~sloengine.errors.ConfigError` for a naive ``start`` or non-positive sizes.
    """
    if start.tzinfo is None:
        raise ConfigError("start must be timezone-aware (UTC)", where="sample.generate")
    if not days > 0 or not rate_per_min > 0 or metric_interval_s < 1:
        raise ConfigError(
            "days, rate_per_min and metric_interval_s must be positive", where="sample.generate"
        )
    start = start.astimezone(UTC)
    return _Run(out, seed, start, start + timedelta(days=days), metric_interval_s).run(rate_per_min)


class _Run:
    """State of one generation: random streams, fault model, buffers, counters."""

    def __init__(
        self, out: Path, seed: int, start: datetime, end: datetime, interval_s: int
    ) -> None:
        self.seed, self.start, self.end, self.interval_s = seed, start, end, interval_s
        self.start_ns, self.end_ns = utc_ns(start), utc_ns(end)
        self.found = incidents(start, end)
        by_id = {i.id: i for i in self.found}
        self.skew_span = skew_window(start, end)
        lo_hi = self.skew_span
        self.skew = Window(utc_ns(lo_hi[0]), utc_ns(lo_hi[1])) if lo_hi else EMPTY
        self.traffic = random.Random(f"{seed}:traffic")
        self.latency = random.Random(f"{seed}:latency")
        self.ids = IdSource(random.Random(f"{seed}:ids"))
        self.model = FaultModel(
            random.Random(f"{seed}:faults"),
            _window(by_id.get("fast-burn")),
            _window(by_id.get("slow-burn")),
        )
        interval_ns = interval_s * 1_000_000_000
        self.meter = Meter(self.start_ns, interval_ns, random.Random(f"{seed}:metrics"))
        self.output = Output(out)
        self.journal = Journal(self.output, self.start_ns, self.end_ns, self.skew)
        self.clients = client_pool()
        n = len(DROPS)
        span = self.end_ns - self.start_ns
        self.targets = [self.start_ns + span * (2 * k + 1) // (2 * n) for k in range(n)]
        self.defects: list[Defect] = []
        self.offsets = [0] * PARTITIONS
        self.requests = self.emails = self.bait = 0
        self.windows = [(i, _window(i)) for i in self.found]
        #: incident id (or "baseline") → [requests, 5xx, slower than 500 ms]
        self.tally: dict[str, list[int]] = {i.id: [0, 0, 0] for i in self.found}
        self.tally["baseline"] = [0, 0, 0]

    def run(self, rate: float) -> SampleManifest:
        batch_days = batch_times(self.start, self.end)
        for t0 in arrivals(self.traffic, self.start_ns, self.end_ns, rate):
            while batch_days and utc_ns(batch_days[0]) <= t0:
                self.journal.add(nightly(self.ids, self.latency, batch_days.pop(0)))
            self.request(t0)
            self.journal.flush(t0)
        for when in batch_days:
            self.journal.add(nightly(self.ids, self.latency, when))
        self.journal.close()
        for day, body in self.meter.export(self.end_ns).items():
            date = datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")
            text = readable(body, frozenset({"dataPoints", "attributes"})) + "\n"
            self.output.write(f"metrics/metrics-{date}.json", text.encode(), "metrics", "otlp-json")
        if self.skew_span:
            lo, hi = self.skew_span
            skew = Defect(kind="clock-skew", service=SKEW_SERVICE, host=SKEWED_HOST)
            self.defects.append(replace(skew, skew_ms=SKEW_MS, start=lo, end=hi))
        return docs.finish(
            self.output,
            seed=self.seed,
            start=self.start,
            end=self.end,
            rate=rate,
            interval_s=self.interval_s,
            counts=self.counts(),
            found=self.found,
            defects=tuple(self.defects),
            tally=self.tally,
        )

    def counts(self) -> SampleCounts:
        return SampleCounts(
            requests=self.requests,
            traces=self.journal.trace_count,
            spans=self.journal.span_count,
            logs=self.journal.log_count,
            metric_points=self.meter.points,
            orphan_spans=sum(len(d.orphans) for d in self.defects),
            email_spans=self.emails,
            bait_log_bodies=self.bait,
        )

    def visit(self, t0: int) -> Visit:
        """Who calls which route, and what will go wrong."""
        tr = self.traffic
        route = tr.choices(ROUTES, weights=[r.weight for r in ROUTES])[0]
        key = self.ids.sku() if route is GET_STOCK else self.ids.order_id()
        path = {GET_ORDER: f"/orders/{key}", POST_ORDER: "/orders"}.get(route, f"/inventory/{key}")
        email = tr.choice(EMAILS) if tr.random() < EMAIL_SHARE else None
        return Visit(
            route=route,
            path=path,
            key=key,
            tenant=tr.choices(TENANTS, weights=TENANT_WEIGHTS)[0],
            client_ip=tr.choice(self.clients),
            user_agent=tr.choices(USER_AGENTS, weights=UA_WEIGHTS)[0],
            email=email,
            outcome=self.model.decide(route, t0),
        )

    def request(self, t0: int) -> None:
        """One gateway request, its access line, metrics, and (for orders) its consumer."""
        visit = self.visit(t0)
        sampled = self.traffic.random() < LOG_SAMPLE
        b = TraceBuilder(self.ids, self.latency, t0, self.ids.correlation_id(), sampled=sampled)
        res = Request(b, visit).build()
        self.requests += 1
        self.emails += visit.email is not None
        size = accesslog.bytes_sent(self.traffic, visit.route.template, res.status)
        line = accesslog.line(res.gateway, visit, res.status, b.correlation_id, size)
        self.journal.add_access(t0, line)
        where = next((i.id for i, w in self.windows if t0 in w), "baseline")
        tally = self.tally[where]
        tally[0] += 1
        tally[1] += res.status >= 500
        tally[2] += res.gateway.end_ns - res.gateway.start_ns > 500_000_000
        self.meter.http.extend(res.observations)
        if res.provider_seconds is not None:
            self.meter.provider.append((res.gateway.end_ns, res.provider_seconds))
        producer = res.producer
        if producer and self.targets and t0 >= self.targets[0] and t0 not in self.skew:
            self.targets.pop(0)
            defect = _drop(b, *DROPS[len(self.defects)])
            if defect:
                self.defects.append(defect)
        self.bait += b.bait
        self.journal.add(b)
        if producer is not None:
            self.consume(producer, b.correlation_id, sampled)

    def consume(self, producer: Span, correlation_id: str, sampled: bool) -> None:
        self.meter.orders.append((producer.host, producer.end_ns))
        partition = int(str(dict(producer.attrs)["messaging.destination.partition.id"]))
        self.offsets[partition] += 1
        c = consume(
            self.ids,
            self.latency,
            producer,
            correlation_id,
            sampled=sampled,
            offset=self.offsets[partition],
        )
        self.meter.messages.append((producer.end_ns, c.spans[0].start_ns))
        self.bait += c.bait
        self.journal.add(c)
