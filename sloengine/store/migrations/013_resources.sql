-- 013: resource attributes of spans move to their own table (one row per distinct resource).
-- A batch of spans comes from a handful of resources (a pod, a process), but the map was stored
-- again on every span: the costliest column of the ingest (benchmarks/README.md). Spans now
-- point to their resource by ``resource_id``, a 64-bit hash of the resource's (redacted)
-- attributes computed at ingest (ingest/resources.py); the same resource sent again maps to the
-- same row. Logs and metric points keep their inline ``resource_attributes`` (fewer rows).

CREATE TABLE resources (
    batch_id      BIGINT NOT NULL,          -- lineage: the batch that first brought it
    resource_id   UBIGINT PRIMARY KEY,
    service_name  VARCHAR,
    attributes    MAP(VARCHAR, VARCHAR)
);

ALTER TABLE spans ADD COLUMN resource_id UBIGINT;

-- Existing spans: ids from DuckDB's md5 of the map's text (not the ingest hash: a resource
-- seen again after this migration may get a second row, which changes no query).
UPDATE spans SET resource_id =
    (md5_number(CAST(resource_attributes AS VARCHAR)) & 18446744073709551615::UHUGEINT)::UBIGINT;

INSERT INTO resources
SELECT min(batch_id), resource_id, any_value(service_name), any_value(resource_attributes)
FROM spans GROUP BY resource_id;

ALTER TABLE spans DROP COLUMN resource_attributes;
