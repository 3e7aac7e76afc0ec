-- Learned risk models (docs/risk-model.md): each training's model card and parameters as JSON
-- (numbers only, never a pickle); the newest version is the one assessments use.
CREATE TABLE risk_models (
    version INTEGER PRIMARY KEY,
    trained_at TEXT NOT NULL,
    card TEXT NOT NULL,
    params TEXT NOT NULL
);
