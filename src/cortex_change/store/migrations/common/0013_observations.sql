-- What really changed (docs/schedule.md): a rollout, a deploy webhook, a config push. An
-- observation is matched to the change that authorised it (change_id) or it is unauthorized.
CREATE TABLE observations (
    observation_id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    environment TEXT,
    observed_at DOUBLE PRECISION NOT NULL,
    source TEXT NOT NULL,
    reference TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at DOUBLE PRECISION NOT NULL,
    change_id TEXT
);
CREATE INDEX observations_by_time ON observations (observed_at);
