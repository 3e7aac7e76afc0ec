"""Leases: one holder (a worker or a foreground `implement`) carries out a change at a time."""

from __future__ import annotations

from .db import Tx

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from .db import Row

LEASE = "holder, taken_at, expires_at, flagged_at"


class Lease:
    """A change's lease, as its row holds it."""

    __slots__ = ("expires_at", "flagged_at", "holder", "taken_at")

    def __init__(self, holder: str, taken_at: float, expires_at: float, flagged_at: float | None) -> None:
        self.holder, self.taken_at, self.expires_at, self.flagged_at = (
            holder,
            taken_at,
            expires_at,
            flagged_at,
        )

    def live(self, now: float) -> bool:
        """Still held: not expired, not flagged (a flagged lease has expired)."""
        return self.flagged_at is None and float(self.expires_at) > now


def take(tx: Tx, change_id: str, holder: str, now: float, ttl: float) -> Lease | None:
    """Take the change's lease; returns another holder's live lease instead (then nothing changes).

    An expired lease may be taken over (the caller decides whether that is allowed).
    """
    before = get(tx, change_id, lock=True)
    if before is not None and before.holder != holder and before.live(now):
        return before
    if before is not None:
        tx.run(
            "UPDATE leases SET holder=?, taken_at=?, expires_at=?, flagged_at=NULL WHERE change_id=?",
            (holder, now, now + ttl, change_id),
        )
    else:
        tx.run(
            "INSERT INTO leases (change_id, holder, taken_at, expires_at) VALUES (?, ?, ?, ?)",
            (change_id, holder, now, now + ttl),
        )
    return None


def get(tx: Tx, change_id: str, lock: bool = False) -> Lease | None:
    """The change's lease (row-locked for the transaction with `lock`), or None."""
    row = tx.one(f"SELECT {LEASE} FROM leases WHERE change_id=?{tx.for_update if lock else ''}", (change_id,))
    return None if row is None else Lease(*row)


def renew(tx: Tx, change_id: str, holder: str, now: float, ttl: float) -> bool:
    """Extend a lease its holder still has (not flagged as expired); False when it was lost."""
    return (
        tx.run(
            "UPDATE leases SET expires_at=? WHERE change_id=? AND holder=? AND flagged_at IS NULL",
            (now + ttl, change_id, holder),
        )
        == 1
    )


def release(tx: Tx, change_id: str) -> None:
    tx.run("DELETE FROM leases WHERE change_id=?", (change_id,))


def expired(tx: Tx, now: float, limit: int = 100) -> list[Row]:
    """(change_id, holder, expires_at) of expired leases nobody has flagged yet, claimed for this tx."""
    return tx.all(
        "SELECT change_id, holder, expires_at FROM leases WHERE expires_at < ? AND flagged_at IS NULL "
        f"ORDER BY expires_at LIMIT {int(limit)}{tx.skip_locked}",
        (now,),
    )


def flag(tx: Tx, change_id: str, now: float) -> None:
    tx.run("UPDATE leases SET flagged_at=? WHERE change_id=?", (now, change_id))


def listing(tx: Tx) -> list[Row]:
    """Every lease: (change_id, holder, taken_at, expires_at, flagged_at)."""
    return tx.all("SELECT change_id, holder, taken_at, expires_at, flagged_at FROM leases ORDER BY taken_at")
