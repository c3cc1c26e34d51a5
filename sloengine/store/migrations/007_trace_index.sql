-- 007: the id index of forensics (store/layout.py). Spans, logs and span events stay in
-- arrival order (time-clustered: the SLO path prunes on end time); these narrow tables say
-- where the rows of one trace, correlation id or span id are, so a request is found without
-- scanning. Built by Store.optimize_layout(): each run appends one run sorted by key (zone
-- maps then prune a lookup to about one row group per run); a rebuild rewrites everything
-- as one run. Rows of batches after the last run (the tail) are read directly.

CREATE TABLE trace_index (
    h            UBIGINT NOT NULL,   -- sort key: low 64 bits of md5(key) (layout.key_hash)
    kind         VARCHAR NOT NULL,   -- trace | corr | span (span: ids that are not plain hex)
    key          VARCHAR NOT NULL,   -- the trace id, correlation id or span id
    trace_id     VARCHAR,            -- corr/span: the trace carrying the key (NULL: a log
                                     -- record without trace); trace: the key itself
    -- where the rows are: batch id and time range (spans: start time). NULL: none.
    span_b_lo    BIGINT,  span_b_hi  BIGINT,  span_t_lo  UBIGINT,  span_t_hi  UBIGINT,
    log_b_lo     BIGINT,  log_b_hi   BIGINT,  log_t_lo   UBIGINT,  log_t_hi   UBIGINT,
    ev_b_lo      BIGINT,  ev_b_hi    BIGINT,  ev_t_lo    UBIGINT,  ev_t_hi    UBIGINT,
    log_corrs    VARCHAR[],          -- trace: correlation ids of its log records
    linked_from  STRUCT(trace_id VARCHAR, span_id VARCHAR)[]  -- trace: spans elsewhere whose
                                     -- links point at (this trace, span_id)
);

-- span id → trace id for ids that are plain lower-case hex (OTLP: 8 and 16 bytes), as
-- integers: exact, and sorting 10M of them is seconds, not the minute strings would take.
CREATE TABLE span_index (
    sid  UBIGINT NOT NULL,           -- the span id
    tid  UHUGEINT                    -- its trace id (NULL: a log record without trace)
);

CREATE TABLE layout_runs (
    run_id        INTEGER NOT NULL,
    kind          VARCHAR NOT NULL,  -- rebuild | merge
    finished_at   TIMESTAMPTZ NOT NULL,
    batch_lo      BIGINT NOT NULL,   -- batches (batch_lo, batch_hi] were indexed by this run
    batch_hi      BIGINT NOT NULL,   -- (the watermark: later batches are the tail) ...
    open_batches  BIGINT[] NOT NULL, -- ... except these, still 'ingesting': read as tail too
    trace_rows    BIGINT NOT NULL,
    span_rows     BIGINT NOT NULL,
    seconds       DOUBLE NOT NULL
);
