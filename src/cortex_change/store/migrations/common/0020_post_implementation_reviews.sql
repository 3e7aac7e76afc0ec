-- Post-implementation reviews (docs/pir.md): one per change that closed failed or rolled back, or
-- had an incident opened; its findings, and its action items with owners and due dates. Times are
-- epoch seconds as in `changes`; a due day is kept as YYYY-MM-DD beside the instant it ends.
CREATE TABLE pirs (
    change_id TEXT PRIMARY KEY REFERENCES changes (change_id),
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    owner TEXT NOT NULL,
    implementer TEXT,
    opened_at DOUBLE PRECISION NOT NULL,
    due_at DOUBLE PRECISION NOT NULL,
    findings TEXT,
    findings_by TEXT,
    findings_at DOUBLE PRECISION,
    completed_at DOUBLE PRECISION,
    completed_by TEXT
);
-- `pir list --overdue` and the worker read open reviews by due time; `metrics` counts by period.
CREATE INDEX pirs_open_by_due ON pirs (due_at) WHERE status = 'open';
CREATE INDEX pirs_by_opened ON pirs (opened_at);
CREATE INDEX pirs_by_due ON pirs (due_at, completed_at);
CREATE INDEX pirs_by_completed ON pirs (completed_at) WHERE completed_at IS NOT NULL;

CREATE TABLE pir_actions (
    change_id TEXT NOT NULL REFERENCES pirs (change_id),
    action_id TEXT NOT NULL,
    title TEXT NOT NULL,
    owner TEXT NOT NULL,
    due TEXT NOT NULL,
    due_at DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL,
    added_at DOUBLE PRECISION NOT NULL,
    added_by TEXT NOT NULL,
    done_at DOUBLE PRECISION,
    done_by TEXT,
    PRIMARY KEY (change_id, action_id)
);
-- Open action items by due time (overdue ones, `metrics`), and by owner (who has what to do).
CREATE INDEX pir_actions_open_by_due ON pir_actions (due_at) WHERE status = 'open';
CREATE INDEX pir_actions_by_added ON pir_actions (added_at, done_at, due_at);
CREATE INDEX pir_actions_by_owner ON pir_actions (owner, status);
