-- Signed audit checkpoints (docs/checkpoints.md). The public keys that verify them, each with the
-- period its checkpoints may be dated in (rotation: a retired key keeps verifying older ones);
-- the raw Ed25519 key as base64. Private keys never enter the database.
CREATE TABLE audit_keys (
    key_id TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT,
    added_at TEXT NOT NULL
);

-- Each checkpoint as signed: the chain's length and head at `at`, the digest of the checkpoint
-- before it (`previous`), the key, the base64 signature, and the digest of its own signed bytes.
CREATE TABLE audit_checkpoints (
    number INTEGER PRIMARY KEY,
    length INTEGER NOT NULL,
    head TEXT NOT NULL,
    at TEXT NOT NULL,
    previous TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE
);
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only: UPDATE refused'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only: DELETE refused'); END;

-- One row per checkpoint and witness (file, webhook, tsa, s3): pending until the witness took it,
-- retried with backoff and never given up (an alert after OUTBOX_MAX_ATTEMPTS); `receipt` is what
-- the witness answered (JSON: a file's line, an RFC 3161 token, an object's version).
CREATE TABLE audit_witness_receipts (
    receipt_id TEXT PRIMARY KEY,
    number INTEGER NOT NULL,
    witness TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    claimed_by TEXT,
    claimed_until DOUBLE PRECISION,
    last_error TEXT,
    alerted INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    delivered_at TEXT
);
CREATE INDEX audit_witness_receipts_due ON audit_witness_receipts (state, next_attempt_at);
