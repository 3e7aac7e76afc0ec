-- Covering indexes for the metrics aggregates: each period query reads one index range and
-- never the row documents (metrics month on a million changes: 2.1 s -> tens of ms).
DROP INDEX changes_by_created;
DROP INDEX changes_by_closed;
DROP INDEX changes_by_approved;
CREATE INDEX changes_by_created ON changes (created_at, state, type);
CREATE INDEX changes_by_closed ON changes (closed_at, closure_status, compliant, implemented_at);
CREATE INDEX changes_by_approved ON changes (approved_at, created_at);
CREATE INDEX changes_by_implemented ON changes (implemented_at, approved_at, created_at);
