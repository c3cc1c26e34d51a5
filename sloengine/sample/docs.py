"""The sidecar files of a sample set: ``incidents.json``, ``imperfections.json``, ``README.md``."""

from __future__ import annotations

import json
from datetime import datetime

from .manifest import Defect, Incident, SampleCounts, SampleManifest, iso
from .output import Output

README = """\
# Sample telemetry: a layered shop platform

Synthetic, deterministic OpenTelemetry data for sloengine tests and demos. Regenerate with

    sloengine sample --out sample_data --seed {seed} --days {days:g}

or `python -c "from pathlib import Path; from sloengine.sample import generate; \\
generate(Path('sample_data'), seed={seed}, days={days:g})"`. Same arguments ⇒ byte-identical
files (gzip headers carry no time stamp or file name).

Run: {start} → {end} (UTC), seed {seed}. Counts: {c.requests} gateway requests,
{c.traces} traces, {c.spans} spans, {c.logs} OTLP log records, {c.metric_points} metric points.

## Platform (resource attribute `platform.layer`)

| layer | service (`service.name`) | hosts (`host.name`) | role |
| --- | --- | --- | --- |
| gateway | api-gateway | edge-gw-1 | public routes, SERVER span + CLIENT span downstream |
| service | orders-service | orders-5d8b7-a/b | orders API, postgres, Kafka producer |
| service | payments-service | payments-77c1f-a | `POST /payments`, calls api.payprovider.example |
| service | inventory-service | inventory-6c4d2-a/b | gRPC `inventory.Inventory` (Reserve, Lookup) |
| queue | fulfillment-worker | fulfil-9a2e0-a | Kafka consumer of `order-events` |
| integration | webhook-dispatcher | hooks-4b1f8-a | POST to partner.example.com/hooks/orders |
| batch | legacy-batch | batch-01 | `nightly-settlement` at 02:00 UTC |
| data | warehouse-loader | etl-01 | `warehouse-load` into BigQuery `warehouse.fact_orders` |

Every resource has `service.namespace`=`shop`, `service.version`,
`deployment.environment.name`=`prod`. Routes: `GET /orders/{{id}}` (60 %),
`POST /orders` (25 %), `GET /inventory/{{sku}}` (15 %); traffic is diurnal (×0.5 at 02:00,
×1.5 at 14:00 UTC) around {rate:g} requests/min.

Trace shapes: gateway SERVER → gateway CLIENT → service SERVER → postgres CLIENT
(`db.system.name`, `db.namespace`, `db.collection.name`, `db.operation.name`,
`db.query.text`). `POST /orders` also calls inventory over gRPC (`rpc.system`=`grpc`,
`rpc.service`, `rpc.method`, `rpc.grpc.status_code` int), payments over HTTP (which calls the
provider), INSERTs, then a PRODUCER span `publish order-events`. Each successful order starts
a **new trace** 5–500 ms after the publish: CONSUMER `process order-events` in
fulfillment-worker with a span **link** to the producer span, whose child is the webhook
CLIENT span. The nightly batch is an INTERNAL root `nightly-settlement` (`batch.file`), one
`settle-partition` child per partition, and a `warehouse-load` CLIENT span.

Correlation: gateway spans carry `correlation.id` and `http.request.header.x-request-id`
(string array); all SERVER, PRODUCER and CONSUMER spans and every log record carry
`correlation.id`; the access log's `request_id` is the same value. The consumer trace reuses
the order's correlation id; each batch run has its own.

Status: HTTP SERVER spans are ERROR (code 2, with a message) only for 5xx, HTTP CLIENT spans
for ≥ 400; gRPC SERVER spans for UNKNOWN/DEADLINE_EXCEEDED/UNIMPLEMENTED/INTERNAL/UNAVAILABLE/
DATA_LOSS, gRPC CLIENT spans for anything but OK; otherwise status is left UNSET. Errors
propagate like proxies do (provider 503 → payments 503 → orders 502 → gateway 502). Failing
spans that raise carry an `exception` event.

## Files

| file | signal | format | bytes |
| --- | --- | --- | --- |
{files}

* `traces/traces-YYYY-MM-DD.binpb.gz`: one gzipped protobuf `ExportTraceServiceRequest` per
  UTC day (by root span start; a trace never spans two files). ResourceSpans are batched per
  minute and (service, host).
* `logs/service-logs-YYYY-MM-DD.jsonl.gz`: OTLP/JSON Lines like the Collector file exporter,
  one `ExportLogsServiceRequest` per line, one line per minute. `traceId`/`spanId` are
  lower-case hex, times are decimal strings, `severityNumber` an integer (INFO 9, WARN 13,
  ERROR 17). INFO lines exist for a 10 % sample of traces; every failure writes ERROR lines
  (with `exception.type`/`exception.message` attributes); DB calls over 500 ms write WARN
  `slow query` lines.
* `access/gateway-access-YYYY-MM-DD.jsonl.gz`: the gateway access log (not OTLP), one JSON
  object per request: `ts` (request start, ISO 8601 UTC, ms, `Z`), `method`, `route`, `path`,
  `status` (int), `latency_ms` (float, = gateway span duration), `trace_id` (32 hex),
  `span_id` (16 hex, the gateway SERVER span), `request_id` (the correlation id),
  `client_ip`, `user_agent`, `bytes_sent`, `tenant`, `service`.
* `metrics/metrics-YYYY-MM-DD.json`: one OTLP/JSON `ExportMetricsServiceRequest` per day
  (plain JSON, one data point per line), exported every {interval} s:
  `http.server.request.duration` (s; explicit-bucket histogram, cumulative; api-gateway and
  payments-service; attributes `http.route`, `http.request.method`,
  `http.response.status_code`; bounds 0.005 … 10; measured at span end; exemplars with hex
  ids point at the slowest bad request of an interval), `orders.created` (monotonic
  cumulative sum per orders host), `kafka.consumer.lag` (gauge), `payments.provider.latency`
  (exponential histogram, scale 3, delta). A point at time t covers measurements ending ≤ t
  and lives in the file of its interval's start. The services are redeployed at 00:00 UTC,
  so cumulative series restart every day (new `startTimeUnixNano`, counts from zero): each
  file is self-contained and readers must handle counter resets. The histograms count every
  request, including those whose span was lost (see below). 60 s points are possible
  (`metric_interval_s=60`) but cost ~6 MB of JSON per day.
* `incidents.json`: the incidents below; `imperfections.json`: the planted defects.

## Incidents (ground truth; a request belongs to an incident when its `ts` is inside [start, end))

Incident windows are offsets from the run start (day 2 14:10 for 25 min; day 3 06:00 for
30 h) and are left out of shorter runs. Ratios below are over gateway requests.

{incidents}

Healthy baseline: gateway 5xx ≈ 0.035 % and ≈ 0.2 % of requests over 500 ms (the rest stay
under ~450 ms); observed outside the incidents: {baseline}. Incident and baseline rates are
spread evenly (error diffusion, not coin flips), so any alert window sees close to the
intended ratio; the route mix is random, so short windows still wobble.

## Imperfect data (on purpose, for forensics)

{defects}

## Redaction bait

About 1 % of gateway SERVER spans carry `user.email` (fake `@example.com/.org/.net`
addresses); about 20 % of ERROR log bodies end in `(customer <email>)` and about 15 % in
`request headers: Authorization: Bearer eyJ…` (a JWT-shaped fake). Ingest redaction must
remove them. In this set: {c.email_spans} spans with `user.email`, {c.bait_log_bodies} baited
log bodies.
"""


def _observed(t: list[int]) -> str:
    n, errors, slow = t
    if not n:
        return "no requests"
    return f"{n} requests, {errors} 5xx ({errors / n:.3%}), {slow} over 500 ms ({slow / n:.3%})"


def _incident_md(i: Incident, t: list[int]) -> str:
    return (
        f"* **{i.id}** ({i.kind}): {iso(i.start)} → {iso(i.end)}; services "
        f"{', '.join(i.services)}; routes {', '.join(i.routes)}; expected bad ratio "
        f"{i.expected_error_ratio:g}; observed in this set: {_observed(t)}. "
        f"{i.description} SLO hint: {i.slo_hint}."
    )


def _defect_md(d: Defect) -> str:
    if d.kind == "missing-span":
        return (
            f"* missing span: trace `{d.trace_id}` lost `{d.span_name}` ({d.service}, span "
            f"`{d.span_id}`); {len(d.orphans)} orphan child span(s) keep pointing at it."
        )
    start = iso(d.start) if d.start else "?"
    end = iso(d.end) if d.end else "?"
    return (
        f"* clock skew: host `{d.host}` ({d.service}) runs +{d.skew_ms:g} ms fast from {start} "
        f"to {end}: its spans and log records are shifted, so children can start after their "
        "parent ends."
    )


def finish(
    output: Output,
    *,
    seed: int,
    start: datetime,
    end: datetime,
    rate: float,
    interval_s: int,
    counts: SampleCounts,
    found: tuple[Incident, ...],
    defects: tuple[Defect, ...],
    tally: dict[str, list[int]],
) -> SampleManifest:
    """Write the sidecars and return the manifest (``tally``: requests, 5xx, > 500 ms)."""
    dump = json.dumps([i.to_json() for i in found], indent=2, ensure_ascii=False) + "\n"
    output.write("incidents.json", dump.encode(), "meta", "json")
    dump = json.dumps([d.to_json() for d in defects], indent=2, ensure_ascii=False) + "\n"
    output.write("imperfections.json", dump.encode(), "meta", "json")
    rows = "\n".join(f"| `{f.path}` | {f.signal} | {f.format} | {f.bytes} |" for f in output.files)
    text = README.format(
        seed=seed,
        days=(end - start).total_seconds() / 86400,
        start=iso(start),
        end=iso(end),
        rate=rate,
        c=counts,
        files=rows,
        interval=interval_s,
        incidents="\n".join(_incident_md(i, tally[i.id]) for i in found)
        or "(none fit in this run)",
        baseline=_observed(tally["baseline"]),
        defects="\n".join(_defect_md(d) for d in defects) or "(none fit in this run)",
    )
    output.write("README.md", text.encode(), "meta", "markdown")
    return SampleManifest(
        out=str(output.root),
        seed=seed,
        start=start,
        end=end,
        files=tuple(output.files),
        counts=counts,
        incidents=found,
        defects=defects,
    )
