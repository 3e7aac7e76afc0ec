"""Web portal sessions: hashes of their secrets, who they are, until when."""

from __future__ import annotations

from .db import Tx

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from .db import Row


def insert(
    tx: Tx, session_hash: str, identity: str, provider: str, token_id: str | None, now: float, until: float
) -> None:
    tx.run(
        "INSERT INTO portal_sessions (session_hash, identity, provider, token_id, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (session_hash, identity, provider, token_id, now, until),
    )


def find(tx: Tx, session_hash: str, now: float) -> Row | None:
    """(identity, provider, expires_at) of a live session: not expired, and its token (if it
    signed in with one) not revoked, expired or rotated out (its times are ISO 8601 UTC text,
    which sorts as time does)."""
    from ..domain.codec import fmt_epoch

    stamp = fmt_epoch(now)
    return tx.one(
        "SELECT s.identity, s.provider, s.expires_at FROM portal_sessions s "
        "LEFT JOIN api_tokens t ON t.token_id = s.token_id "
        "WHERE s.session_hash = ? AND s.expires_at > ? "
        "AND (s.token_id IS NULL OR (t.token_id IS NOT NULL AND t.revoked_at IS NULL "
        "AND (t.expires_at IS NULL OR t.expires_at > ?) AND (t.retires_at IS NULL OR t.retires_at > ?)))",
        (session_hash, now, stamp, stamp),
    )


def delete(tx: Tx, session_hash: str) -> str | None:
    """End a session; the identity it was, or None if there was none."""
    row = tx.one("SELECT identity FROM portal_sessions WHERE session_hash = ?", (session_hash,))
    if row is None:
        return None
    tx.run("DELETE FROM portal_sessions WHERE session_hash = ?", (session_hash,))
    return str(row[0])


def purge(tx: Tx, now: float) -> int:
    """Forget expired sessions."""
    return tx.run("DELETE FROM portal_sessions WHERE expires_at <= ?", (now,))
