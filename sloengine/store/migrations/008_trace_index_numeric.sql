-- 008: the id index of forensics, second form (store/layout.py). 007's tables are replaced:
-- ids are stored as numbers and correlation ids get their own table keyed by a hash, so a
-- lookup compares integers instead of decoding strings. An index built under 007 is dropped; lookups scan
-- until the next Store.optimize_layout() (the engine's optimize job) builds it again.
--
-- Spans, logs and span events stay in arrival order (time-clustered: the SLO path prunes on
-- end time); these narrow tables say where the rows of one trace, correlation id or span id
-- are, so a request is found without scanning. Store.optimize_layout() appends one sorted run
-- per call (zone maps then prune a lookup to about one row group per run) and merges the
-- newest runs when they have grown to half the size of the one before (so there are
-- O(log n) runs); rows of batches after the last run (the tail) are read directly.
--
-- Ids are numbers where they can be: a trace id of 32 lower-case hex digits is its value as two
-- UBIGINT halves (hi, lo), a span id of 16 its UBIGINT (exact, and a lookup compares integers
-- and decodes no strings; UHUGEINT columns scan at half the speed); any other id (ingest
-- writes none, but the columns are VARCHAR) is md5_number(id), split the same way, with the
-- id itself in the *_odd column, which is NULL otherwise.

DROP TABLE IF EXISTS trace_index;
DROP TABLE IF EXISTS span_index;
DROP TABLE IF EXISTS layout_runs;

CREATE TABLE trace_index (
    tid_hi      UBIGINT NOT NULL,    -- the trace
    tid_lo      UBIGINT NOT NULL,
    tid_odd     VARCHAR,
    run         INTEGER NOT NULL,    -- the layout run that wrote the row
    -- location rows (dir 0): batch-id and time range of the trace's spans (start time), logs
    -- and span events in this run, NULL when it has none
    dir         UTINYINT NOT NULL,   -- 0 location | 1 a span of trace `oth` links to `sid`
                                     -- here | 2 a span here links to trace `oth` | 4 the
                                     -- trace carries the correlation id with key `oth`
    span_b_lo BIGINT, span_b_hi BIGINT, span_t_lo UBIGINT, span_t_hi UBIGINT,
    log_b_lo  BIGINT, log_b_hi  BIGINT, log_t_lo  UBIGINT, log_t_hi  UBIGINT,
    ev_b_lo   BIGINT, ev_b_hi   BIGINT, ev_t_lo   UBIGINT, ev_t_hi   UBIGINT,
    oth_hi      UBIGINT,             -- dir 1, 2: the trace at the other end; dir 4: the
    oth_lo      UBIGINT,             -- correlation id's key (as corr_index.h_hi, h_lo)
    oth_odd     VARCHAR,
    sid         UBIGINT,             -- dir 1: the span of this trace the link points at
    sid_odd     VARCHAR
);

CREATE TABLE corr_index (
    h_hi        UBIGINT NOT NULL,    -- the first 128 bits of sha256(corr), big-endian: no
    h_lo        UBIGINT NOT NULL,    -- string to decode on lookup, and no collision anyone
                                     -- can make (md5 would need the string kept to check)
    run         INTEGER NOT NULL,
    tid_hi      UBIGINT,             -- a trace carrying it (NULL: log records without trace)
    tid_lo      UBIGINT,
    tid_odd     VARCHAR,
    -- where its log records of that trace are; NULL: only spans carry it
    log_b_lo BIGINT, log_b_hi BIGINT, log_t_lo UBIGINT, log_t_hi UBIGINT
);

CREATE TABLE span_index (
    sid         UBIGINT NOT NULL,    -- a span id of spans or logs
    sid_odd     VARCHAR,
    run         INTEGER NOT NULL,
    tid_hi      UBIGINT,             -- its trace (NULL: a log record without trace)
    tid_lo      UBIGINT,
    tid_odd     VARCHAR
);

CREATE TABLE layout_runs (
    run_id        INTEGER NOT NULL,
    kind          VARCHAR NOT NULL,  -- rebuild | append
    merged        INTEGER[] NOT NULL,-- earlier runs whose rows this run took over (re-sorted)
    finished_at   TIMESTAMPTZ NOT NULL,
    batch_lo      BIGINT NOT NULL,   -- batches (batch_lo, batch_hi] were indexed by this run
    batch_hi      BIGINT NOT NULL,   -- (the watermark: later batches are the tail) ...
    open_batches  BIGINT[] NOT NULL, -- ... except these, still 'ingesting': read as tail too
    index_rows    BIGINT NOT NULL,   -- rows this run added (trace, corr and span index)
    odd_rows      BIGINT NOT NULL,   -- rows with an id that is not plain hex, in all live runs
    seconds       DOUBLE NOT NULL
);
