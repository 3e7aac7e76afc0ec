-- Freeze (blackout) and maintenance windows (docs/schedule.md): when changes may not, or may, be
-- carried out. `scope` is all, environment, service or tier; `scope_value` what it names.
CREATE TABLE change_windows (
    window_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    starts_at DOUBLE PRECISION NOT NULL,
    ends_at DOUBLE PRECISION NOT NULL,
    scope TEXT NOT NULL,
    scope_value TEXT,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX change_windows_by_end ON change_windows (ends_at);
