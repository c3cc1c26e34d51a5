"""The simulated shop platform: services, hosts, layers, routes, clients.

Layers (resource attribute ``platform.layer``): gateway → service → queue → integration →
data, plus the nightly batch. Resource attributes follow the OpenTelemetry resource
semantic conventions (``service.*``, ``deployment.environment.name``, ``host.name``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .records import Attrs


@dataclass(frozen=True, slots=True)
class Service:
    """A deployable unit and the hosts it runs on."""

    name: str
    version: str
    layer: str
    hosts: tuple[str, ...]


SERVICES: dict[str, Service] = {
    s.name: s
    for s in (
        Service("api-gateway", "2.14.1", "gateway", ("edge-gw-1",)),
        Service("orders-service", "1.32.0", "service", ("orders-5d8b7-a", "orders-5d8b7-b")),
        Service("payments-service", "3.4.2", "service", ("payments-77c1f-a",)),
        Service(
            "inventory-service", "0.19.5", "service", ("inventory-6c4d2-a", "inventory-6c4d2-b")
        ),
        Service("fulfillment-worker", "1.8.0", "queue", ("fulfil-9a2e0-a",)),
        Service("webhook-dispatcher", "0.7.3", "integration", ("hooks-4b1f8-a",)),
        Service("legacy-batch", "11.2", "batch", ("batch-01",)),
        Service("warehouse-loader", "2.1.0", "data", ("etl-01",)),
    )
}

#: The inventory host whose clock runs +40 ms fast for a short window (documented defect).
SKEWED_HOST = "inventory-6c4d2-b"
SKEW_NS = 40_000_000

NAMESPACE = "shop"
ENVIRONMENT = "prod"
SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"
SCOPE_NAME = "shop.instrumentation"
SCOPE_VERSION = "1.45.0"


def resource_attrs(service: str, host: str) -> Attrs:
    """Resource attributes of one service instance."""
    svc = SERVICES[service]
    return [
        ("service.name", svc.name),
        ("service.namespace", NAMESPACE),
        ("service.version", svc.version),
        ("deployment.environment.name", ENVIRONMENT),
        ("host.name", host),
        ("platform.layer", svc.layer),
    ]


@dataclass(frozen=True, slots=True)
class Route:
    """A public gateway route and its share of traffic."""

    method: str
    template: str
    weight: float

    @property
    def name(self) -> str:
        """The span name / ``METHOD route`` label, e.g. ``GET /orders/{id}``."""
        return f"{self.method} {self.template}"


GET_ORDER = Route("GET", "/orders/{id}", 0.60)
POST_ORDER = Route("POST", "/orders", 0.25)
GET_STOCK = Route("GET", "/inventory/{sku}", 0.15)
ROUTES = (GET_ORDER, POST_ORDER, GET_STOCK)

TENANTS = ("acme", "globex", "initech", "umbrella", "hooli")
TENANT_WEIGHTS = (0.35, 0.25, 0.2, 0.12, 0.08)

USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "ShopApp/4.2.0 (Android 15; Pixel 8)",
    "python-requests/2.32.3",
    "okhttp/4.12.0",
)
UA_WEIGHTS = (0.3, 0.15, 0.15, 0.2, 0.1, 0.1)

#: Fake customers (RFC 2606 example.com) used as redaction bait.
EMAILS = (
    "jane.doe@example.com",
    "john.smith@example.com",
    "maria.garcia@example.org",
    "li.wei@example.net",
    "a.nowak@example.com",
)

PROVIDER_HOST = "api.payprovider.example"
PARTNER_HOST = "partner.example.com"
PARTNER_URL = "https://partner.example.com/hooks/orders"
TOPIC = "order-events"
CONSUMER_GROUP = "fulfillment"
PARTITIONS = 3


def client_pool(size: int = 400) -> tuple[str, ...]:
    """Client IPs from the RFC 5737 documentation ranges (deterministic, no rng needed)."""
    nets = ("203.0.113", "198.51.100", "192.0.2")
    return tuple(f"{nets[i % 3]}.{(i * 37) % 254 + 1}" for i in range(size))
