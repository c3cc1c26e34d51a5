-- 006: minutes pulled from query sources (Prometheus) per SLO. A pull fetches the minutes of
-- its range that are not covered here; a failed pull leaves a gap that the next one fills.
-- Rows are kept merged (compute/pulled.py): [lo, hi) fetched, of which [lo, settled) is final;
-- [settled, hi) was fetched before the server surely had every sample and is fetched again.

CREATE TABLE source_ranges (
    slo_name        VARCHAR NOT NULL,
    indicator_hash  VARCHAR NOT NULL,   -- ranges (and buckets) reset when the indicator changes
    lo_minute       BIGINT NOT NULL,
    hi_minute       BIGINT NOT NULL,
    settled_minute  BIGINT NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
