-- Rate conditions count requests by a normalised key (NFKC, case-folded, trimmed: domain/standard.py
-- `counting_key`), stored when the request is filed; rows filed before this migration have none
-- and are compared by their raw parameter, as before (store/changes.py `recent_model_requests`).
ALTER TABLE changes ADD COLUMN rate_key TEXT;
CREATE INDEX changes_by_rate_key ON changes (standard_model, rate_key, created_at);

-- When an emergency change's retrospective review is due, while it is not recorded (`review overdue`).
ALTER TABLE changes ADD COLUMN review_due_at DOUBLE PRECISION;
CREATE INDEX changes_by_review_due ON changes (review_due_at) WHERE review_due_at IS NOT NULL;
-- Back-filled from the documents. NaN and ±Infinity, which older releases let into plans, read as
-- null first (as the program reads them), so every document parses; only the review's times are read.
UPDATE changes
SET review_due_at = CAST(strftime('%s', json_extract(
    replace(replace(replace(doc, '-Infinity', 'null'), 'Infinity', 'null'), 'NaN', 'null'),
    '$.review.due_at')) AS REAL)
WHERE type = 'emergency'
  AND json_extract(
    replace(replace(replace(doc, '-Infinity', 'null'), 'Infinity', 'null'), 'NaN', 'null'),
    '$.review.reviewed_at') IS NULL;
