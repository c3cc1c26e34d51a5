"""The asynchronous side of POST /orders: a Kafka consumer in a new trace, linked back.

Per the messaging semantic conventions the consumer trace is a separate trace whose CONSUMER
span carries a span link to the PRODUCER span; its child is the integration layer's outbound
webhook (a CLIENT span in ``webhook-dispatcher``).
"""

from __future__ import annotations

import random

from .builder import TraceBuilder
from .identity import IdSource
from .records import CLIENT, CONSUMER, Attrs, Span
from .topology import CONSUMER_GROUP, PARTNER_HOST, PARTNER_URL, TOPIC

WEBHOOK_FAILURE = 0.01


def consume(
    ids: IdSource,
    rng: random.Random,
    producer: Span,
    correlation_id: str,
    *,
    sampled: bool,
    offset: int,
) -> TraceBuilder:
    """Build the consumer trace for one published order event (5–500 ms after the send)."""
    origin = producer.end_ns + round(rng.uniform(5.0, 500.0) * 1000) * 1000
    b = TraceBuilder(ids, rng, origin, correlation_id, sampled=sampled)
    attrs = dict(producer.attrs)
    key = str(attrs["messaging.kafka.message.key"])
    partition = str(attrs["messaging.destination.partition.id"])
    consumer_attrs: Attrs = [
        ("messaging.system", "kafka"),
        ("messaging.destination.name", TOPIC),
        ("messaging.operation.type", "process"),
        ("messaging.operation.name", "process"),
        ("messaging.consumer.group.name", CONSUMER_GROUP),
        ("messaging.destination.partition.id", partition),
        ("messaging.kafka.offset", offset),
        ("messaging.kafka.message.key", key),
        ("correlation.id", correlation_id),
    ]
    worker = "fulfillment-worker"
    c = b.open(worker, b.host(worker), f"process {TOPIC}", CONSUMER, 0.0, None, consumer_attrs)
    c.links.append((producer.trace_id, producer.span_id))
    at = b.lat(2.0, 0.4, 0.5, 10.0)
    hook_attrs: Attrs = [
        ("http.request.method", "POST"),
        ("url.full", PARTNER_URL),
        ("server.address", PARTNER_HOST),
        ("server.port", 443),
        ("correlation.id", correlation_id),
    ]
    dispatcher = "webhook-dispatcher"
    hook = b.open(dispatcher, b.host(dispatcher), "POST", CLIENT, at, c, hook_attrs)
    failed = rng.random() < WEBHOOK_FAILURE
    status = rng.choice((500, 503)) if failed else 200
    at += b.lat(120.0, 0.4, 30.0, 400.0)
    b.put(hook, "http.response.status_code", status)
    b.close(
        hook, at, f"HTTP {status}" if failed else None, "WebhookDeliveryError" if failed else None
    )
    if failed:
        b.error(
            hook, f"webhook delivery failed: POST {PARTNER_URL} -> {status}", "WebhookDeliveryError"
        )
    at += b.lat(1.0, 0.3, 0.2, 5.0)
    b.close(c, at, "webhook delivery failed; will retry" if failed else None)
    b.info(c, f"processed {TOPIC} partition={partition} offset={offset} key={key} in {at:.1f} ms")
    return b
