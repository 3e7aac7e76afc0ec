-- Agent identities and token scopes (docs/agents.md): an agent token, its scopes (JSON), its
-- expiry, and when a rotated-out token stops working (the end of its grace period).
ALTER TABLE api_tokens ADD COLUMN agent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_tokens ADD COLUMN scopes TEXT;
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
ALTER TABLE api_tokens ADD COLUMN retires_at TEXT;
CREATE INDEX api_tokens_by_name ON api_tokens (name);

-- The kill switch (`freeze on|off`): one row; halted = 1 stops all automation but ECAB-approved
-- emergencies (docs/agents.md).
CREATE TABLE automation_halt (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    halted INTEGER NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX changes_by_requester ON changes (requested_by, closed_at);
