-- 001: ingest tables, lineage and dead letters.
-- Times are unix nanoseconds in UBIGINT (exact, OTLP-NOTES.md §5); ids are lower-case hex text.

CREATE SEQUENCE IF NOT EXISTS ingest_batch_seq START 1;

-- Lineage: one row per source of bytes (a file, an HTTP request). Every stored record points here.
CREATE TABLE ingest_batches (
    batch_id        BIGINT PRIMARY KEY,
    source          VARCHAR NOT NULL,      -- file path or sender (peer address / API key id)
    format          VARCHAR NOT NULL,      -- otlp-proto | otlp-json | otlp-jsonl | jsonl-log
    signal          VARCHAR NOT NULL,      -- traces | logs | metrics | unknown
    sha256          VARCHAR NOT NULL,      -- of the raw bytes as received (before gunzip)
    size_bytes      BIGINT NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ,
    status          VARCHAR NOT NULL,      -- ingesting | complete | duplicate
    duplicate_of    BIGINT,                -- same sha256 already ingested by that batch
    accepted_spans        BIGINT NOT NULL DEFAULT 0,
    accepted_span_events  BIGINT NOT NULL DEFAULT 0,
    accepted_logs         BIGINT NOT NULL DEFAULT 0,
    accepted_metric_points BIGINT NOT NULL DEFAULT 0,
    duplicate_records     BIGINT NOT NULL DEFAULT 0,
    rejected              BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE dead_letters (
    batch_id    BIGINT NOT NULL,
    dl_key      VARCHAR NOT NULL,          -- sha256 of (source sha256, location, reason): no repeats
    source      VARCHAR NOT NULL,
    location    VARCHAR NOT NULL,          -- "line 17", "resourceSpans[0].scopeSpans[1].spans[3]"
    signal      VARCHAR,
    reason      VARCHAR NOT NULL,
    raw         BLOB NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE spans (
    batch_id              BIGINT NOT NULL,
    trace_id              VARCHAR NOT NULL,
    span_id               VARCHAR NOT NULL,
    parent_span_id        VARCHAR,
    trace_state           VARCHAR,
    flags                 UINTEGER,
    name                  VARCHAR NOT NULL,
    kind                  VARCHAR NOT NULL,
    service_name          VARCHAR,
    start_time_unix_nano  UBIGINT NOT NULL,
    end_time_unix_nano    UBIGINT NOT NULL,
    duration_ns           BIGINT NOT NULL,
    status_code           VARCHAR NOT NULL,
    status_message        VARCHAR,
    is_error              BOOLEAN NOT NULL,
    http_route            VARCHAR,
    http_method           VARCHAR,
    http_status_code      INTEGER,
    rpc_system            VARCHAR,
    rpc_service           VARCHAR,
    rpc_method            VARCHAR,
    rpc_status_code       VARCHAR,
    db_system             VARCHAR,
    db_namespace          VARCHAR,
    db_collection         VARCHAR,
    db_operation          VARCHAR,
    messaging_system      VARCHAR,
    messaging_destination VARCHAR,
    messaging_operation   VARCHAR,
    correlation_id        VARCHAR,
    links                 STRUCT(trace_id VARCHAR, span_id VARCHAR, trace_state VARCHAR,
                                 attributes MAP(VARCHAR, VARCHAR))[],
    attr_str              MAP(VARCHAR, VARCHAR),
    attr_int              MAP(VARCHAR, BIGINT),
    attr_double           MAP(VARCHAR, DOUBLE),
    attr_bool             MAP(VARCHAR, BOOLEAN),
    attr_json             VARCHAR,         -- arrays, key-value lists, bytes, empty values
    resource_attributes   MAP(VARCHAR, VARCHAR),
    scope_name            VARCHAR,
    scope_version         VARCHAR,
    event_count           INTEGER NOT NULL
);

CREATE TABLE span_events (
    batch_id        BIGINT NOT NULL,
    trace_id        VARCHAR NOT NULL,
    span_id         VARCHAR NOT NULL,
    seq             INTEGER NOT NULL,
    time_unix_nano  UBIGINT NOT NULL,
    name            VARCHAR NOT NULL,
    attributes      MAP(VARCHAR, VARCHAR)
);

CREATE TABLE logs (
    batch_id                BIGINT NOT NULL,
    record_id               VARCHAR NOT NULL,   -- content hash: the same record twice is one row
    time_unix_nano          UBIGINT NOT NULL,
    observed_time_unix_nano UBIGINT,
    severity_number         INTEGER,
    severity_text           VARCHAR,
    body                    VARCHAR,
    event_name              VARCHAR,
    trace_id                VARCHAR,
    span_id                 VARCHAR,
    service_name            VARCHAR,
    correlation_id          VARCHAR,
    http_route              VARCHAR,
    http_method             VARCHAR,
    http_status_code        INTEGER,
    duration_ns             BIGINT,
    attr_str                MAP(VARCHAR, VARCHAR),
    attr_int                MAP(VARCHAR, BIGINT),
    attr_double             MAP(VARCHAR, DOUBLE),
    attr_bool               MAP(VARCHAR, BOOLEAN),
    attr_json               VARCHAR,
    resource_attributes     MAP(VARCHAR, VARCHAR),
    scope_name              VARCHAR,
    source_kind             VARCHAR NOT NULL    -- otlp | accesslog
);

CREATE TABLE metric_points (
    batch_id               BIGINT NOT NULL,
    point_id               VARCHAR NOT NULL,
    metric_name            VARCHAR NOT NULL,
    description            VARCHAR,
    unit                   VARCHAR,
    metric_type            VARCHAR NOT NULL,  -- gauge | sum | histogram | exponential_histogram | summary
    temporality            VARCHAR,           -- delta | cumulative | unspecified
    is_monotonic           BOOLEAN,
    service_name           VARCHAR,
    attributes             MAP(VARCHAR, VARCHAR),
    resource_attributes    MAP(VARCHAR, VARCHAR),
    scope_name             VARCHAR,
    start_time_unix_nano   UBIGINT,
    time_unix_nano         UBIGINT NOT NULL,
    value                  DOUBLE,
    value_int              BIGINT,
    count                  UBIGINT,
    sum                    DOUBLE,
    min                    DOUBLE,
    max                    DOUBLE,
    bucket_counts          UBIGINT[],
    explicit_bounds        DOUBLE[],
    scale                  INTEGER,
    zero_count             UBIGINT,
    zero_threshold         DOUBLE,
    positive_offset        INTEGER,
    positive_bucket_counts UBIGINT[],
    negative_offset        INTEGER,
    negative_bucket_counts UBIGINT[],
    quantiles              STRUCT(quantile DOUBLE, value DOUBLE)[],
    flags                  UINTEGER,
    exemplars              STRUCT(time_unix_nano UBIGINT, value DOUBLE, trace_id VARCHAR,
                                  span_id VARCHAR)[]
);

CREATE TABLE engine_meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);
