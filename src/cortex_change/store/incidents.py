"""Incidents linked to changes (a failed rollback opens one)."""

from __future__ import annotations

import json

from .db import Tx

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from .db import Row

COLUMNS = "incident_id, change_id, opened_at, opened_by, title, details, state, resolved_at"


def insert(
    tx: Tx,
    incident_id: str,
    change_id: str,
    opened_at: float,
    opened_by: str,
    title: str,
    details: dict[str, Any],
) -> None:
    tx.run(
        f"INSERT INTO incidents ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 'open', NULL)",
        (incident_id, change_id, opened_at, opened_by, title, json.dumps(details, ensure_ascii=False)),
    )


def get(tx: Tx, incident_id: str) -> Row | None:
    return tx.one(f"SELECT {COLUMNS} FROM incidents WHERE incident_id=?", (incident_id,))


def listing(tx: Tx, change_id: str | None = None, limit: int = 100) -> list[Row]:
    """Newest first, optionally those of one change."""
    if change_id is not None:
        return tx.all(
            f"SELECT {COLUMNS} FROM incidents WHERE change_id=? ORDER BY opened_at DESC", (change_id,)
        )
    return tx.all(f"SELECT {COLUMNS} FROM incidents ORDER BY opened_at DESC LIMIT {int(limit)}")


def count_between(tx: Tx, start: float, end: float) -> int:
    """Changes with an incident opened in [start, end) (the change-induced incidents metric)."""
    row = tx.one(
        "SELECT count(DISTINCT change_id) FROM incidents WHERE opened_at >= ? AND opened_at < ?", (start, end)
    )
    return int(row[0]) if row else 0


def resolve(tx: Tx, incident_id: str, at: float) -> int:
    return tx.run(
        "UPDATE incidents SET state='resolved', resolved_at=? WHERE incident_id=? AND state='open'",
        (at, incident_id),
    )
