-- Web portal sessions: only a SHA-256 of the session's secret (the cookie) is kept. `provider`
-- says how the identity was established ('token': an API token; an OIDC provider later);
-- `token_id` is the token signed in with, so revoking the token ends its sessions.
CREATE TABLE portal_sessions (
    session_hash TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    provider TEXT NOT NULL,
    token_id TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX portal_sessions_by_expiry ON portal_sessions (expires_at);
