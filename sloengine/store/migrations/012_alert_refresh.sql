-- 012: when each Alertmanager target last had every firing alert sent again
-- (sloengine/alerting/refresh.py).

CREATE TABLE alert_refresh (
    target        VARCHAR PRIMARY KEY,   -- a notifier name of the notify config
    refreshed_at  TIMESTAMPTZ NOT NULL,  -- the last refresh the target accepted
    alerts        INTEGER NOT NULL,      -- how many firing alerts it was sent
    last_error    VARCHAR                -- the last failed refresh, if any since
);
