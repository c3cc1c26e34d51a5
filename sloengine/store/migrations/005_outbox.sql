-- 005: the alert outbox (sloengine/alerting/outbox.py). A notification row is written in the
-- same transaction as the alert transition that caused it; delivery rows (one per routed
-- target) record at-least-once delivery; targets keep their circuit-breaker state.

CREATE SEQUENCE IF NOT EXISTS alert_notification_seq START 1;

CREATE TABLE alert_notifications (
    notification_id  BIGINT PRIMARY KEY,
    idempotency_key  VARCHAR NOT NULL UNIQUE, -- sha256 of dedup key + transition (+ minute)
    dedup_key        VARCHAR NOT NULL,        -- the alert: slo / objective / group / tier
    eval_minute      BIGINT NOT NULL,
    from_state       VARCHAR NOT NULL,
    to_state         VARCHAR NOT NULL,        -- firing | resolved
    slo_name         VARCHAR NOT NULL,
    severity         VARCHAR NOT NULL,
    labels           JSON NOT NULL,           -- what routes match on
    notice           JSON NOT NULL,           -- everything the on-call engineer is told
    created_at       TIMESTAMPTZ NOT NULL,
    routed_at        TIMESTAMPTZ              -- NULL until delivery rows are made
);

CREATE TABLE alert_deliveries (
    notification_id  BIGINT NOT NULL,
    target           VARCHAR NOT NULL,        -- a notifier name of the notify config
    status           VARCHAR NOT NULL,        -- pending | delivered | dead
    attempts         INTEGER NOT NULL,
    next_attempt_at  TIMESTAMPTZ,
    last_attempt_at  TIMESTAMPTZ,
    delivered_at     TIMESTAMPTZ,
    last_error       VARCHAR,
    PRIMARY KEY (notification_id, target)
);

CREATE TABLE alert_targets (
    target               VARCHAR PRIMARY KEY,
    consecutive_failures INTEGER NOT NULL,
    open_until           TIMESTAMPTZ,         -- circuit breaker open until then
    last_error           VARCHAR,
    last_success_at      TIMESTAMPTZ,
    updated_at           TIMESTAMPTZ NOT NULL
);
