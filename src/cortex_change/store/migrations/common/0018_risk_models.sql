-- Learned risk models (docs/risk-model.md): each training's model card and parameters as JSON
-- (numbers only, never a pickle); the newest version is the one assessments use.
CREATE TABLE risk_models (
    version INTEGER PRIMARY KEY,
    trained_at TEXT NOT NULL,
    card TEXT NOT NULL,
    params TEXT NOT NULL
);

-- The P(failure) recorded at a change's latest assessment, for the KPIs (risk prediction accuracy,
-- false-positive rate) counted in SQL against the outcomes of the changes closed in a period.
ALTER TABLE changes ADD COLUMN predicted_failure DOUBLE PRECISION;
