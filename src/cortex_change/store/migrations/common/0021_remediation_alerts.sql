-- Self-healing (docs/self-healing.md): every Alertmanager alert received, once per alert_key
-- (Alertmanager's fingerprint @ startsAt; a resolved alert's key ends in "#resolved"), with the
-- remediation it matched (NULL: none), the value its storm bound counts by (rate_key), what became
-- of it (outcome: filing, filed, refused, paged, unmatched, resolved) and the change it filed.
CREATE TABLE remediation_alerts (
    alert_key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    alertname TEXT NOT NULL,
    status TEXT NOT NULL,
    remediation TEXT,
    rate_key TEXT NOT NULL,
    outcome TEXT NOT NULL,
    change_id TEXT,
    reason TEXT,
    received_by TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL
);
-- The storm bound and the paging interval count a remediation's recent rows by target.
CREATE INDEX remediation_alerts_by_target ON remediation_alerts (remediation, rate_key, received_at);
