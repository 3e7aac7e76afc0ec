-- Rate conditions count requests by a normalised key (NFKC, case-folded, trimmed: domain/standard.py
-- `counting_key`), stored when the request is filed; rows filed before this migration have none
-- and are compared by their raw parameter, as before (store/changes.py `recent_model_requests`).
ALTER TABLE changes ADD COLUMN rate_key TEXT;
CREATE INDEX changes_by_rate_key ON changes (standard_model, rate_key, created_at);

-- When an emergency change's retrospective review is due, while it is not recorded (`review overdue`).
ALTER TABLE changes ADD COLUMN review_due_at DOUBLE PRECISION;
CREATE INDEX changes_by_review_due ON changes (review_due_at) WHERE review_due_at IS NOT NULL;
-- Back-filled from the documents. NaN and ±Infinity, which older releases let into plans, read as
-- null first (as the program reads them), and \u0000, which PostgreSQL's JSON functions refuse, as
-- U+2400 (as the title column holds it), so every document parses; only the review's times are read.
UPDATE changes
SET review_due_at = extract(epoch FROM (fixed.doc #>> '{review,due_at}')::timestamptz)
FROM (
    SELECT change_id,
           replace(replace(replace(replace(doc, '-Infinity', 'null'), 'Infinity', 'null'), 'NaN', 'null'),
                   '\u0000', '\u2400')::json AS doc
    FROM changes
    WHERE type = 'emergency'
) AS fixed
WHERE changes.change_id = fixed.change_id
  AND fixed.doc #>> '{review,due_at}' IS NOT NULL
  AND fixed.doc #>> '{review,reviewed_at}' IS NULL;
