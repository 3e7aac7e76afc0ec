-- Leases: which worker (or foreground `implement`) is carrying out a change, until when.
-- A lease that is not renewed expires; the worker then flags it (flagged_at) for an operator.
CREATE TABLE leases (
    change_id TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    taken_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    flagged_at DOUBLE PRECISION
);
CREATE INDEX leases_by_expiry ON leases (expires_at);

-- Incidents opened by the runner (a failed rollback) or by an operator, linked to a change.
CREATE TABLE incidents (
    incident_id TEXT PRIMARY KEY,
    change_id TEXT NOT NULL,
    opened_at DOUBLE PRECISION NOT NULL,
    opened_by TEXT NOT NULL,
    title TEXT NOT NULL,
    details TEXT NOT NULL,
    state TEXT NOT NULL,
    resolved_at DOUBLE PRECISION
);
CREATE INDEX incidents_by_change ON incidents (change_id);
CREATE INDEX incidents_by_opened ON incidents (opened_at);

-- The transactional outbox: a message per (event, channel), written with the event it reports.
-- Workers claim due rows (claimed_until is a short lease), deliver, then mark them.
CREATE TABLE outbox (
    message_id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    change_id TEXT,
    payload TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    claimed_by TEXT,
    claimed_until DOUBLE PRECISION,
    last_error TEXT,
    delivered_at DOUBLE PRECISION
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

-- Timers: delayed implementation, validation rounds, approval timeouts, review SLAs, CAB agendas.
-- A timer id is deterministic (kind:subject:due), so scheduling twice schedules once.
CREATE TABLE timers (
    timer_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    change_id TEXT,
    due_at DOUBLE PRECISION NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    claimed_by TEXT,
    claimed_until DOUBLE PRECISION,
    fired_at DOUBLE PRECISION
);
CREATE INDEX timers_due ON timers (state, due_at);
CREATE INDEX timers_by_change ON timers (change_id, state);
