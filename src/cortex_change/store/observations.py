"""Observed changes and the candidates an observation is matched against."""

from __future__ import annotations

from .db import Tx

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from .db import Row

COLUMNS = "observation_id, service, environment, observed_at, source, reference, recorded_by, change_id"


def insert(
    tx: Tx,
    observation_id: str,
    service: str,
    environment: str | None,
    at: float,
    source: str,
    reference: str,
    recorded_by: str,
    now: float,
    change_id: str | None,
) -> None:
    tx.run(
        f"INSERT INTO observations ({COLUMNS}, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (observation_id, service, environment, at, source, reference, recorded_by, change_id, now),
    )


def candidate_ids(tx: Tx, service: str) -> list[str]:
    """Changes naming the service (any letter case) that were carried out: the newest 50."""
    rows = tx.all(
        "SELECT c.change_id FROM changes c JOIN change_services s ON s.change_id = c.change_id "
        "WHERE lower(s.service) = ? AND c.state IN ('implementing', 'implemented', 'rolling_back', 'closed') "
        "ORDER BY c.created_at DESC LIMIT 50",
        (service,),
    )
    return [str(r[0]) for r in rows]


def listing(tx: Tx, unmatched: bool, limit: int = 500) -> list[Row]:
    where = "WHERE change_id IS NULL " if unmatched else ""
    return tx.all(f"SELECT {COLUMNS} FROM observations {where}ORDER BY observed_at DESC LIMIT ?", (limit,))


def unauthorized_between(tx: Tx, start: float, end: float) -> int | None:
    """Unmatched observations in [start, end); None when nothing was ever observed (no source)."""
    if tx.one("SELECT 1 FROM observations LIMIT 1") is None:
        return None
    row = tx.one(
        "SELECT count(*) FROM observations WHERE change_id IS NULL AND observed_at >= ? AND observed_at < ?",
        (start, end),
    )
    return int(row[0]) if row else 0
