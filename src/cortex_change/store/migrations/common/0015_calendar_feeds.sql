-- Calendar feeds (docs/schedule.md): the secret in a subscription URL opens the iCalendar feed
-- only. Only a SHA-256 of the secret is kept; the URL is shown once at creation.
CREATE TABLE calendar_feeds (
    feed_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
