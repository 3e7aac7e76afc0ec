"""Calendar feeds: the hashes of their secrets (services/calendar.py)."""

from __future__ import annotations

from .db import Tx

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from .db import Row


def insert(tx: Tx, feed_id: str, name: str, secret_hash: str, created_at: str) -> None:
    tx.run(
        "INSERT INTO calendar_feeds (feed_id, name, secret_hash, created_at) VALUES (?, ?, ?, ?)",
        (feed_id, name, secret_hash, created_at),
    )


def find(tx: Tx, feed_id: str) -> Row | None:
    """(name, secret_hash, revoked_at) of a feed, or None."""
    return tx.one("SELECT name, secret_hash, revoked_at FROM calendar_feeds WHERE feed_id=?", (feed_id,))


def listing(tx: Tx) -> list[Row]:
    return tx.all(
        "SELECT feed_id, name, created_at, revoked_at FROM calendar_feeds ORDER BY created_at, feed_id"
    )


def revoke(tx: Tx, feed_id: str, at: str) -> int:
    return tx.run(
        "UPDATE calendar_feeds SET revoked_at=? WHERE feed_id=? AND revoked_at IS NULL", (at, feed_id)
    )
