-- API tokens: only a SHA-256 of the secret is kept; the token itself is shown once at creation.
CREATE TABLE api_tokens (
    token_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

-- Idempotency keys of POST /changes: a retried request gets the first answer, creates nothing.
CREATE TABLE idempotency_keys (
    identity TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    change_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (identity, idem_key)
);
