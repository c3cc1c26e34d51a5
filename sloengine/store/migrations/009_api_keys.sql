-- 009: API keys of the HTTP API (sloengine/api/access.py). Only a salted scrypt hash of each
-- key's secret is kept; the key itself is shown once, at creation. Rows are never deleted:
-- a revoked key keeps its row (and its audit entries keep naming it).
CREATE TABLE api_keys (
    key_id      VARCHAR PRIMARY KEY,   -- the public part of slo_<key_id>_<secret>
    name        VARCHAR NOT NULL,
    role        VARCHAR NOT NULL CHECK (role IN ('admin', 'sre', 'oncall', 'auditor', 'ingest')),
    secret_hash VARCHAR NOT NULL,      -- scrypt$N$r$p$<salt hex>$<hash hex>
    created_at  TIMESTAMPTZ NOT NULL,
    created_by  VARCHAR NOT NULL,      -- the actor who made it (OS user or apikey:<id>)
    expires_at  TIMESTAMPTZ,           -- NULL: does not expire
    revoked_at  TIMESTAMPTZ
);
