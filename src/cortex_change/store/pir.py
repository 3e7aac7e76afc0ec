"""Post-implementation reviews and their action items (migration 0020; docs/pir.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from ..domain.pir import Action, ActionStatus, Pir, Status
from .db import Tx

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from .db import Row

COLUMNS = (
    "change_id, status, reason, owner, implementer, opened_at, due_at, findings, findings_by, "
    "findings_at, completed_at, completed_by"
)
ACTION_COLUMNS = (
    "change_id, action_id, title, owner, due, due_at, status, added_at, added_by, done_at, done_by"
)


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(value), UTC)


def _at(value: Any) -> datetime:
    return datetime.fromtimestamp(float(value), UTC)


def _pir(row: Row, actions: list[Action]) -> Pir:
    cid, status, reason, owner, implementer, opened, due, findings, f_by, f_at, done_at, done_by = row
    return Pir(
        str(cid),
        str(reason),
        str(owner),
        _at(opened),
        _at(due),
        implementer,
        Status(status),
        findings,
        f_by,
        _time(f_at),
        _time(done_at),
        done_by,
        actions,
    )


def _action(row: Row) -> Action:
    _, aid, title, owner, due, _due_at, status, added_at, added_by, done_at, done_by = row
    return Action(
        str(aid),
        str(title),
        str(owner),
        date.fromisoformat(str(due)),
        _at(added_at),
        str(added_by),
        ActionStatus(status),
        _time(done_at),
        done_by,
    )


def get(tx: Tx, change_id: str) -> Pir | None:
    """A change's review with its action items in the order they were added, or None."""
    row = tx.one(f"SELECT {COLUMNS} FROM pirs WHERE change_id=?", (change_id,))
    if row is None:
        return None
    rows = tx.all(f"SELECT {ACTION_COLUMNS} FROM pir_actions WHERE change_id=?", (change_id,))
    actions = sorted((_action(r) for r in rows), key=lambda a: int(a.action_id[1:]))
    return _pir(row, actions)


def exists(tx: Tx, change_id: str) -> bool:
    return tx.one("SELECT 1 FROM pirs WHERE change_id=?", (change_id,)) is not None


def insert(tx: Tx, pir: Pir) -> None:
    tx.run(
        f"INSERT INTO pirs ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, NULL)",
        (
            pir.change_id,
            pir.status.value,
            pir.reason,
            pir.owner,
            pir.implementer,
            pir.opened_at.timestamp(),
            pir.due_at.timestamp(),
        ),
    )


def save(tx: Tx, pir: Pir) -> None:
    """Write the review's state and its action items (new ones inserted, the others updated).
    The caller holds the change's row lock (the unit of work), so nobody writes it meanwhile."""
    tx.run(
        "UPDATE pirs SET status=?, findings=?, findings_by=?, findings_at=?, completed_at=?, completed_by=? "
        "WHERE change_id=?",
        (
            pir.status.value,
            pir.findings,
            pir.findings_by,
            _epoch(pir.findings_at),
            _epoch(pir.completed_at),
            pir.completed_by,
            pir.change_id,
        ),
    )
    stored = {
        str(r[0]) for r in tx.all("SELECT action_id FROM pir_actions WHERE change_id=?", (pir.change_id,))
    }
    tx.many(
        f"INSERT INTO pir_actions ({ACTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                pir.change_id,
                a.action_id,
                a.title,
                a.owner,
                a.due.isoformat(),
                a.due_at.timestamp(),
                a.status.value,
                a.added_at.timestamp(),
                a.added_by,
                _epoch(a.done_at),
                a.done_by,
            )
            for a in pir.actions
            if a.action_id not in stored
        ],
    )
    tx.many(
        "UPDATE pir_actions SET status=?, done_at=?, done_by=? WHERE change_id=? AND action_id=?",
        [
            (a.status.value, _epoch(a.done_at), a.done_by, pir.change_id, a.action_id)
            for a in pir.actions
            if a.action_id in stored
        ],
    )


def implementer(tx: Tx, change_id: str) -> str | None:
    """Who started the change's latest implementation (its audit trail), if anyone did."""
    row = tx.one(
        "SELECT actor FROM audit_events WHERE change_id=? AND action='implementation_started' "
        "ORDER BY seq DESC LIMIT 1",
        (change_id,),
    )
    return None if row is None else str(row[0])


LIST_COLUMNS = (
    "p.change_id, c.title, p.status, p.reason, p.owner, p.opened_at, p.due_at, p.completed_at, "
    "(SELECT count(*) FROM pir_actions a WHERE a.change_id = p.change_id AND a.status = 'open')"
)


def listing(tx: Tx, now: float, which: str, limit: int = 500) -> list[Row]:
    """Reviews with their change's title and open action items: `overdue` (open, due before
    `now`, longest overdue first), `open` (soonest due first) or `all` (newest opened first)."""
    sql = f"SELECT {LIST_COLUMNS} FROM pirs p JOIN changes c ON c.change_id = p.change_id "
    if which == "overdue":
        return tx.all(
            sql + "WHERE p.status = 'open' AND p.due_at <= ? ORDER BY p.due_at, p.change_id", (now,)
        )
    if which == "open":
        return tx.all(sql + f"WHERE p.status = 'open' ORDER BY p.due_at, p.change_id LIMIT {int(limit)}")
    return tx.all(sql + f"ORDER BY p.opened_at DESC, p.change_id LIMIT {int(limit)}")


def open_actions_due(tx: Tx, change_id: str, due_at: float) -> list[Row]:
    """A change's open action items due at that instant: (action_id) rows."""
    return tx.all(
        "SELECT action_id FROM pir_actions WHERE change_id=? AND status='open' AND due_at=?",
        (change_id, due_at),
    )


def figures(tx: Tx, start: float, end: float, as_of: float) -> dict[str, int]:
    """What `metrics` counts of reviews in [start, end), judged at `as_of` (the period's end, or
    now when that is earlier): opened; completed; overdue (due in the period before `as_of` and
    not completed by its due time); action items open at `as_of`, and of those, past due."""
    reviews = tx.one(
        "SELECT "
        "(SELECT count(*) FROM pirs WHERE opened_at >= ? AND opened_at < ?), "
        "(SELECT count(*) FROM pirs WHERE completed_at >= ? AND completed_at < ?), "
        "(SELECT count(*) FROM pirs WHERE due_at >= ? AND due_at < ? "
        "AND (completed_at IS NULL OR completed_at > due_at)), "
        "(SELECT count(*) FROM pir_actions WHERE added_at <= ? AND (done_at IS NULL OR done_at > ?)), "
        "(SELECT count(*) FROM pir_actions WHERE added_at <= ? AND due_at <= ? "
        "AND (done_at IS NULL OR done_at > ?))",
        (start, end, start, end, start, as_of, as_of, as_of, as_of, as_of, as_of),
    )
    names = ("opened", "completed", "overdue", "actions_open", "actions_overdue")
    return dict(zip(names, (int(n or 0) for n in reviews or (0,) * 5), strict=True))
