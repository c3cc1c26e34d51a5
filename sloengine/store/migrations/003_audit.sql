-- 003: the audit trail, a hash chain (each entry holds the hash of the one before it).
CREATE TABLE audit_log (
    seq            BIGINT PRIMARY KEY,
    occurred_at    TIMESTAMPTZ NOT NULL,
    actor          VARCHAR NOT NULL,      -- OS user, or "apikey:<id>"
    action         VARCHAR NOT NULL,      -- ingest, evaluate, alert.transition, slo.version, sql, ...
    object         VARCHAR NOT NULL,      -- what it acted on (file, SLO, dedup key, query hash)
    outcome        VARCHAR NOT NULL,      -- ok | refused | error
    correlation_id VARCHAR NOT NULL,      -- one per CLI invocation / API request
    detail         JSON NOT NULL,
    prev_hash      VARCHAR NOT NULL,
    hash           VARCHAR NOT NULL
);
