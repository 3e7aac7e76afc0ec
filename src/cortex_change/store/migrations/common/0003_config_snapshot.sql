-- The configuration the last write ran under, so a change of rules shows in the audit trail.
CREATE TABLE config_snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    values_json TEXT NOT NULL
);
