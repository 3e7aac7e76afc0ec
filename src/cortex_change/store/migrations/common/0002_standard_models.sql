-- The standard change model a request asked for, so rate limits can count recent requests.
ALTER TABLE changes ADD COLUMN standard_model TEXT;
CREATE INDEX changes_by_model ON changes (standard_model, created_at);
