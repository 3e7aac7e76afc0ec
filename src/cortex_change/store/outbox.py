"""The transactional outbox: messages written with their event, delivered afterwards by workers."""

from __future__ import annotations

from collections.abc import Sequence

from .db import Tx

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from .db import Row

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
COLUMNS = (
    "message_id, event_id, channel, kind, change_id, payload, created_at, state, attempts, "
    "next_attempt_at, claimed_by, claimed_until, last_error, delivered_at"
)
# (message_id, event_id, channel, kind, change_id, payload JSON, created_at)
NewMessage = tuple[str, str, str, str, str | None, str, float]


def enqueue(tx: Tx, messages: Sequence[NewMessage]) -> None:
    tx.many(
        "INSERT INTO outbox (message_id, event_id, channel, kind, change_id, payload, created_at, state, "
        "attempts, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?)",
        [(*m, m[6]) for m in messages],
    )


def claim_due(tx: Tx, now: float, holder: str, hold: float, limit: int = 50) -> list[Row]:
    """Claim due messages: (message_id, event_id, channel, kind, change_id, payload, attempts, created_at)."""
    rows = tx.all(
        "SELECT message_id, event_id, channel, kind, change_id, payload, attempts, created_at FROM outbox "
        "WHERE state='pending' AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until < ?) "
        f"ORDER BY next_attempt_at, created_at LIMIT {int(limit)}{tx.skip_locked}",
        (now, now),
    )
    tx.many(
        "UPDATE outbox SET claimed_by=?, claimed_until=? WHERE message_id=?",
        [(holder, now + hold, r[0]) for r in rows],
    )
    return rows


def delivered(tx: Tx, message_id: str, holder: str, now: float) -> None:
    tx.run(
        "UPDATE outbox SET state='delivered', delivered_at=?, attempts=attempts+1, claimed_until=NULL "
        "WHERE message_id=? AND claimed_by=?",
        (now, message_id, holder),
    )


def failed(tx: Tx, message_id: str, holder: str, error: str, next_at: float | None) -> None:
    """Record a failed attempt: retry at `next_at`, or dead-letter it when None."""
    state = PENDING if next_at is not None else DEAD
    tx.run(
        "UPDATE outbox SET state=?, attempts=attempts+1, last_error=?, next_attempt_at=?, claimed_until=NULL "
        "WHERE message_id=? AND claimed_by=?",
        (state, error[:1000], next_at if next_at is not None else 0.0, message_id, holder),
    )


def retry(tx: Tx, message_id: str, now: float) -> int:
    """Put a dead-lettered message back in the queue, due now, with a fresh attempt count."""
    return tx.run(
        "UPDATE outbox SET state='pending', attempts=0, next_attempt_at=?, claimed_until=NULL "
        "WHERE message_id=? AND state='dead'",
        (now, message_id),
    )


def listing(tx: Tx, state: str | None, limit: int = 100) -> list[Row]:
    """Newest first: (message_id, event_id, channel, kind, change_id, state, attempts, created_at,
    next_attempt_at, last_error, delivered_at)."""
    where, params = ("WHERE state=? ", (state,)) if state else ("", ())
    return tx.all(
        "SELECT message_id, event_id, channel, kind, change_id, state, attempts, created_at, "
        f"next_attempt_at, last_error, delivered_at FROM outbox {where}"
        f"ORDER BY created_at DESC LIMIT {int(limit)}",
        params,
    )


def get(tx: Tx, message_id: str) -> Row | None:
    return tx.one(f"SELECT {COLUMNS} FROM outbox WHERE message_id=?", (message_id,))


def backlog(tx: Tx) -> dict[str, int]:
    return {str(s): int(n) for s, n in tx.all("SELECT state, count(*) FROM outbox GROUP BY state")}
