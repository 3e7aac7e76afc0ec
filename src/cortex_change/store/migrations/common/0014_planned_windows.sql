-- A change's planned window as columns (the record's document holds it too): conflicts between
-- changes and the calendar read ranges of it.
ALTER TABLE changes ADD COLUMN planned_start DOUBLE PRECISION;
ALTER TABLE changes ADD COLUMN planned_end DOUBLE PRECISION;
CREATE INDEX changes_by_planned_start ON changes (planned_start);
