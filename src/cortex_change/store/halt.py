"""The kill switch's one row (`freeze on|off`, services/automation.py)."""

from __future__ import annotations

from .db import Tx

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from .db import Row


def get(tx: Tx) -> Row | None:
    """(halted, reason, actor, at), or None when the switch was never used."""
    return tx.one("SELECT halted, reason, actor, at FROM automation_halt WHERE id = 1")


def reason(tx: Tx) -> str | None:
    """The switch's reason while it is on, else None."""
    row = get(tx)
    return str(row[1]) if row is not None and row[0] else None


def put(tx: Tx, halted: bool, reason: str, actor: str, at: str) -> None:
    tx.run(
        "INSERT INTO automation_halt (id, halted, reason, actor, at) VALUES (1, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET halted=excluded.halted, reason=excluded.reason, "
        "actor=excluded.actor, at=excluded.at",
        (int(halted), reason, actor, at),
    )
