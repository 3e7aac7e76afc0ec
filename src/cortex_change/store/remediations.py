"""Alertmanager alerts received for self-healing (docs/self-healing.md): one row per alert key."""

from __future__ import annotations

from .db import Tx

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from .db import Row

FILING, FILED, REFUSED, PAGED = "filing", "filed", "refused", "paged"
UNMATCHED, RESOLVED = "unmatched", "resolved"
COLUMNS = (
    "alert_key, fingerprint, starts_at, alertname, status, remediation, rate_key, outcome, change_id, "
    "reason, received_by, received_at"
)


def lock(tx: Tx, remediation: str) -> None:
    """Serialize one remediation's decisions until the transaction ends (PostgreSQL: an advisory
    lock; SQLite's write transaction already excludes every other writer)."""
    if tx.dialect == "postgres":
        tx.one("SELECT pg_advisory_xact_lock(hashtext(?))", (f"remediation:{remediation}",))


def claim(
    tx: Tx,
    key: str,
    fingerprint: str,
    starts_at: str,
    alertname: str,
    status: str,
    remediation: str | None,
    rate_key: str,
    outcome: str,
    received_by: str,
    at: float,
) -> bool:
    """Record the alert; False when its key was recorded before (a repeat: nothing to do)."""
    return (
        tx.run(
            f"INSERT INTO remediation_alerts ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?) "
            "ON CONFLICT (alert_key) DO NOTHING",
            (key, fingerprint, starts_at, alertname, status, remediation, rate_key, outcome, received_by, at),
        )
        == 1
    )


def settle(tx: Tx, key: str, outcome: str, change_id: str | None = None, reason: str | None = None) -> None:
    tx.run(
        "UPDATE remediation_alerts SET outcome = ?, change_id = ?, reason = ? WHERE alert_key = ?",
        (outcome, change_id, reason, key),
    )


def filed_since(tx: Tx, remediation: str, rate_key: str, since: float, exclude: str) -> int:
    """Changes the remediation filed (or is filing) for this target since `since`."""
    row = tx.one(
        "SELECT count(*) FROM remediation_alerts WHERE remediation = ? AND rate_key = ? "
        "AND received_at >= ? AND outcome IN ('filing', 'filed') AND alert_key <> ?",
        (remediation, rate_key, since, exclude),
    )
    return int(row[0]) if row else 0


def paged_since(tx: Tx, remediation: str, rate_key: str, since: float) -> bool:
    """Whether someone was paged about this remediation and target since `since`."""
    row = tx.one(
        "SELECT 1 FROM remediation_alerts WHERE remediation = ? AND rate_key = ? AND received_at >= ? "
        "AND outcome = 'paged' LIMIT 1",
        (remediation, rate_key, since),
    )
    return row is not None


def get(tx: Tx, key: str) -> Row | None:
    return tx.one(f"SELECT {COLUMNS} FROM remediation_alerts WHERE alert_key = ?", (key,))


def counts(tx: Tx) -> dict[str, int]:
    """Alerts received by outcome."""
    return {
        str(o): int(n)
        for o, n in tx.all(
            "SELECT outcome, count(*) FROM remediation_alerts GROUP BY outcome ORDER BY outcome"
        )
    }
