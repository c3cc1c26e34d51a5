-- 011: acknowledgements of alert episodes (sloengine/alerting/acks.py). Kept apart from
-- `alerts`, which the state machine rewrites on every evaluation. An episode is one run of
-- an alert from its pending_since (set when it went pending, or firing directly, and kept
-- while it fires) to its resolve: an ack applies only while `alerts.pending_since` still
-- equals `episode_since`, so a resolved-then-refired alert is not acknowledged.
-- Rows are never deleted: an unack stamps unacked_at/unacked_by (history stays readable).

CREATE SEQUENCE IF NOT EXISTS alert_ack_seq START 1;

CREATE TABLE alert_acks (
    ack_id         BIGINT PRIMARY KEY,
    dedup_key      VARCHAR NOT NULL,     -- slo / objective / group / tier
    episode_since  BIGINT NOT NULL,      -- alerts.pending_since of the acknowledged episode
    acked_by       VARCHAR NOT NULL,     -- OS user or apikey:<id>
    acked_at       TIMESTAMPTZ NOT NULL,
    note           VARCHAR CHECK (note IS NULL OR length(note) <= 500),
    until          TIMESTAMPTZ,          -- the ack lapses then (NULL: until the resolve)
    unacked_by     VARCHAR,
    unacked_at     TIMESTAMPTZ
);
