"""Timers: rows that fire once, whichever worker claims them, and survive restarts."""

from __future__ import annotations

import json

from .db import Tx

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from .db import Row

COLUMNS = "timer_id, kind, change_id, due_at, payload, state, claimed_by, claimed_until, fired_at"


def schedule(
    tx: Tx, timer_id: str, kind: str, change_id: str | None, due: float, payload: dict[str, Any]
) -> bool:
    """Add a pending timer; a timer with the same id already there is kept (returns False)."""
    return (
        tx.run(
            f"INSERT INTO timers ({COLUMNS}) VALUES (?, ?, ?, ?, ?, 'pending', NULL, NULL, NULL) "
            "ON CONFLICT (timer_id) DO NOTHING",
            (timer_id, kind, change_id, due, json.dumps(payload, ensure_ascii=False)),
        )
        == 1
    )


def claim_due(tx: Tx, now: float, holder: str, hold: float, limit: int = 20) -> list[Row]:
    """Claim due timers no live claim holds: (timer_id, kind, change_id, due_at, payload)."""
    rows = tx.all(
        "SELECT timer_id, kind, change_id, due_at, payload FROM timers "
        "WHERE state='pending' AND due_at <= ? AND (claimed_until IS NULL OR claimed_until < ?) "
        f"ORDER BY due_at LIMIT {int(limit)}{tx.skip_locked}",
        (now, now),
    )
    tx.many(
        "UPDATE timers SET claimed_by=?, claimed_until=? WHERE timer_id=?",
        [(holder, now + hold, r[0]) for r in rows],
    )
    return rows


def hasten(tx: Tx, kind: str, now: float) -> int:
    """Make every pending timer of `kind` due now (those the kill switch held: it is off)."""
    return tx.run(
        "UPDATE timers SET due_at=? WHERE state='pending' AND kind=? AND due_at > ?", (now, kind, now)
    )


def fired(tx: Tx, timer_id: str, holder: str, now: float) -> bool:
    """Mark a claimed timer fired; False when the claim was lost to another worker."""
    return (
        tx.run(
            "UPDATE timers SET state='fired', fired_at=? "
            "WHERE timer_id=? AND claimed_by=? AND state='pending'",
            (now, timer_id, holder),
        )
        == 1
    )


def cancel(tx: Tx, change_id: str, kinds: tuple[str, ...]) -> int:
    """Cancel a change's pending timers of these kinds (e.g. its approval timeout once decided)."""
    marks = ",".join("?" * len(kinds))
    return tx.run(
        f"UPDATE timers SET state='cancelled' WHERE change_id=? AND state='pending' AND kind IN ({marks})",
        (change_id, *kinds),
    )


def pending(tx: Tx, change_id: str | None = None) -> list[Row]:
    """Pending timers (of one change): (timer_id, kind, change_id, due_at, payload)."""
    where, params = ("AND change_id=? ", (change_id,)) if change_id else ("", ())
    return tx.all(
        f"SELECT timer_id, kind, change_id, due_at, payload FROM timers WHERE state='pending' {where}"
        "ORDER BY due_at",
        params,
    )
