-- Changes: the record as a JSON document plus the columns that lists, history and metrics query.
CREATE TABLE changes (
    change_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    type TEXT NOT NULL,
    category TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    risk_level TEXT,
    risk_score INTEGER,
    approval_required TEXT,
    closure_status TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    approved_at DOUBLE PRECISION,
    implemented_at DOUBLE PRECISION,
    closed_at DOUBLE PRECISION,
    compliant INTEGER NOT NULL DEFAULT 0,
    title TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX changes_by_state ON changes (state, created_at DESC);
CREATE INDEX changes_by_created ON changes (created_at);
CREATE INDEX changes_by_closed ON changes (closed_at);
CREATE INDEX changes_by_approved ON changes (approved_at);

CREATE TABLE change_services (
    service TEXT NOT NULL,
    change_id TEXT NOT NULL REFERENCES changes (change_id),
    PRIMARY KEY (service, change_id)
);

-- The audit trail: append-only and hash-chained (each row carries the hash of the one before).
CREATE TABLE audit_events (
    seq BIGINT PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    at TEXT NOT NULL,
    change_id TEXT,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_by_change ON audit_events (change_id, seq);
CREATE INDEX audit_by_time ON audit_events (at);
CREATE INDEX audit_by_action ON audit_events (action, at);

CREATE FUNCTION cortex_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0];
END $$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION cortex_refuse('audit_events is append-only: UPDATE refused');
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION cortex_refuse('audit_events is append-only: DELETE refused');
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION cortex_refuse('audit_events is append-only: TRUNCATE refused');

-- The chain's head: the last event's sequence number and hash, so truncation shows.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head
    FOR EACH ROW WHEN (NEW.seq <= OLD.seq)
    EXECUTE FUNCTION cortex_refuse('audit_head only moves forward');
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION cortex_refuse('audit_head cannot be deleted');
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION cortex_refuse('audit_head cannot be truncated');
