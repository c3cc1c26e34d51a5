-- 002: SLO definitions by version, per-minute good/total buckets, evaluations and alerts.
-- Minutes are unix minutes (BIGINT): bucket m holds events whose END time is in [m, m+1).

CREATE TABLE slo_versions (
    slo_name     VARCHAR NOT NULL,
    version      VARCHAR NOT NULL,      -- content hash of the validated definition
    origin       VARCHAR NOT NULL,      -- sloengine/v1 | openslo/v1 | sloth | slo-generator
    file         VARCHAR NOT NULL,
    first_seen   TIMESTAMPTZ NOT NULL,
    definition   JSON NOT NULL,
    PRIMARY KEY (slo_name, version)
);

CREATE TABLE slo_buckets (
    slo_name        VARCHAR NOT NULL,
    indicator_hash  VARCHAR NOT NULL,   -- buckets are rebuilt when the indicator changes
    grp             VARCHAR NOT NULL,   -- '' or 'route=/orders' (groupBy values)
    minute          BIGINT NOT NULL,
    good            DOUBLE NOT NULL,    -- DOUBLE: histogram interpolation can be fractional
    total           DOUBLE NOT NULL
);

CREATE TABLE slo_materialized (
    slo_name        VARCHAR PRIMARY KEY,
    indicator_hash  VARCHAR NOT NULL,
    last_batch_id   BIGINT NOT NULL,
    max_minute      BIGINT,
    updated_at      TIMESTAMPTZ NOT NULL,
    note            VARCHAR              -- e.g. "latency interpolated inside bucket (0.25, 0.5]"
);

CREATE TABLE slo_evaluations (
    eval_minute     BIGINT NOT NULL,
    evaluated_at    TIMESTAMPTZ NOT NULL,
    slo_name        VARCHAR NOT NULL,
    slo_version     VARCHAR NOT NULL,
    objective       VARCHAR NOT NULL,
    target          DOUBLE NOT NULL,
    grp             VARCHAR NOT NULL,
    status          VARCHAR NOT NULL,
    result          JSON NOT NULL
);

CREATE TABLE alerts (
    dedup_key       VARCHAR PRIMARY KEY,  -- slo / objective / group / tier
    slo_name        VARCHAR NOT NULL,
    slo_version     VARCHAR NOT NULL,
    objective       VARCHAR NOT NULL,
    grp             VARCHAR NOT NULL,
    tier            VARCHAR NOT NULL,
    severity        VARCHAR NOT NULL,
    state           VARCHAR NOT NULL,     -- inactive | pending | firing | resolved
    pending_since   BIGINT,
    firing_since    BIGINT,
    resolved_at     BIGINT,
    last_eval       BIGINT NOT NULL,
    detail          JSON NOT NULL
);

CREATE TABLE alert_transitions (
    dedup_key       VARCHAR NOT NULL,
    eval_minute     BIGINT NOT NULL,
    from_state      VARCHAR NOT NULL,
    to_state        VARCHAR NOT NULL,
    slo_version     VARCHAR NOT NULL,
    detail          JSON NOT NULL
);
