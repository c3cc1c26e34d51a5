-- 010: hourly sums of slo_buckets, so an evaluation reads ~720 rows per group for a 30-day
-- window instead of 43,200 minutes (compute/buckets.py keeps them, compute/evaluate.py reads
-- them). A row of slo_buckets_hourly is the sum of the SLO's minute buckets of that hour
-- (hour = minute // 60), rewritten in the same transaction as those minutes.
-- slo_slices_hourly does the same for Timeslices SLOs whose slice length divides an hour:
-- per hour and objective, the slices with events, the sum of their good/total ratios, and
-- those below the objective's timeSliceTarget (a slice never straddles an hour).
-- slo_rollup_state lists the SLOs whose rollups are complete, and for which slicing
-- (slice_key: slice minutes and targets; NULL: no slice rollups). Only materialize writes it,
-- so buckets written any other way (pulled sources, tests) are read minute by minute.

CREATE TABLE slo_buckets_hourly (
    slo_name        VARCHAR NOT NULL,
    indicator_hash  VARCHAR NOT NULL,
    grp             VARCHAR NOT NULL,
    hour            BIGINT NOT NULL,    -- minute // 60
    good            DOUBLE NOT NULL,
    total           DOUBLE NOT NULL
);

CREATE TABLE slo_slices_hourly (
    slo_name        VARCHAR NOT NULL,
    grp             VARCHAR NOT NULL,
    hour            BIGINT NOT NULL,
    objective       INTEGER NOT NULL,   -- index into the SLO's objectives
    slices          DOUBLE NOT NULL,    -- slices with events
    ratio_sum       DOUBLE NOT NULL,    -- sum of good / total over those slices
    bad             DOUBLE NOT NULL     -- of those, slices below the timeSliceTarget
);

CREATE TABLE slo_rollup_state (
    slo_name        VARCHAR PRIMARY KEY,
    indicator_hash  VARCHAR NOT NULL,
    slice_key       VARCHAR             -- e.g. '5:0.9,0.95'
);
