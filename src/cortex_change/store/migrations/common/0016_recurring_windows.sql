-- Recurring windows (a cron expression and a duration, between starts_at and ends_at) and a
-- freeze's own policy (refuse or cab; NULL follows FREEZE_POLICY).
ALTER TABLE change_windows ADD COLUMN cron TEXT;
ALTER TABLE change_windows ADD COLUMN duration_seconds DOUBLE PRECISION;
ALTER TABLE change_windows ADD COLUMN policy TEXT;
