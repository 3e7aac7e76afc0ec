"""The changes repository: records as JSON documents plus queryable columns."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from ..domain.codec import from_document, parse_stored, to_document
from ..domain.errors import Conflict, NotFound
from ..domain.lifecycle import State
from ..domain.model import Change, ClosureStatus
from ..domain.risk import PastChange
from .db import Tx

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from .db import Row

COLUMNS = (
    "change_id",
    "version",
    "state",
    "type",
    "category",
    "requested_by",
    "risk_level",
    "risk_score",
    "approval_required",
    "closure_status",
    "created_at",
    "approved_at",
    "implemented_at",
    "closed_at",
    "compliant",
    "title",
    "standard_model",
    "review_due_at",
    "planned_start",
    "planned_end",
    "predicted_failure",
    "doc",
)


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _row(change: Change, compliant: bool) -> tuple[Any, ...]:
    a = change.assessment
    t = change.timeline
    r = change.review
    doc = json.dumps(to_document(change), ensure_ascii=False, separators=(",", ":"))
    return (
        change.change_id,
        change.version,
        change.state.value,
        change.type.value,
        change.category,
        change.requested_by,
        a.level.value if a else None,
        a.score if a else None,
        a.route.value if a else None,
        change.closure_status.value if change.closure_status else None,
        _epoch(t.created_at),
        _epoch(t.approved_at),
        _epoch(t.implemented_at),
        _epoch(t.closed_at),
        int(compliant),
        # The column is the list's copy (PostgreSQL text cannot hold NUL); the document is exact.
        change.title.replace("\x00", "\u2400"),
        change.standard_model,
        r.due_at.timestamp() if r is not None and r.reviewed_at is None else None,
        _epoch(change.planned_start),
        _epoch(change.planned_end),
        a.prediction.get("probability") if a is not None and a.prediction else None,
        doc,
    )


def insert(tx: Tx, change: Change, compliant: bool = False, rate_key: str | None = None) -> None:
    """A new record; `rate_key` is what its model's rate condition counts it by (never updated)."""
    insert_many(tx, [(change, compliant)], rate_key)


def insert_many(tx: Tx, records: Sequence[tuple[Change, bool]], rate_key: str | None = None) -> None:
    """New records (and whether each is compliant), one statement for them and one for their
    services' index rows (an import writes thousands at once)."""
    columns = (*COLUMNS, "rate_key")
    marks = ",".join("?" * len(columns))
    for change, _ in records:
        change.version = 1
    tx.many(
        f"INSERT INTO changes ({','.join(columns)}) VALUES ({marks})",
        [(*_row(change, compliant), rate_key) for change, compliant in records],
    )
    tx.many(
        "INSERT INTO change_services (service, change_id) VALUES (?, ?)",
        [(s, change.change_id) for change, _ in records for s in change.affected_services],
    )


def existing(tx: Tx, ids: Sequence[str]) -> set[str]:
    """Which of `ids` the store holds."""
    found: set[str] = set()
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        found.update(
            r[0] for r in tx.all(f"SELECT change_id FROM changes WHERE change_id IN ({marks})", chunk)
        )
    return found


def save(
    tx: Tx, change: Change, expected_version: int, compliant: bool, services_changed: bool = True
) -> None:
    """Write the record if nobody else did since `expected_version` was read (its services' index
    rows too when `services_changed`)."""
    change.version = expected_version + 1
    values = _row(change, compliant)
    assignments = ",".join(f"{c}=?" for c in COLUMNS[1:])
    n = tx.run(
        f"UPDATE changes SET {assignments} WHERE change_id=? AND version=?",
        (*values[1:], change.change_id, expected_version),
    )
    if n != 1:
        change.version = expected_version
        raise Conflict(
            f"{change.change_id} was changed by someone else since it was read; "
            "nothing was written — read it again and retry"
        )
    if services_changed:
        _set_services(tx, change)


def _set_services(tx: Tx, change: Change) -> None:
    tx.run("DELETE FROM change_services WHERE change_id=?", (change.change_id,))
    tx.many(
        "INSERT INTO change_services (service, change_id) VALUES (?, ?)",
        [(s, change.change_id) for s in change.affected_services],
    )


def get(tx: Tx, change_id: str, for_update: bool = False) -> Change:
    """The record; `for_update` locks its row until the transaction ends (PostgreSQL; SQLite's
    write transaction already excludes other writers)."""
    lock = tx.for_update if for_update else ""
    row = tx.one(f"SELECT doc FROM changes WHERE change_id=?{lock}", (change_id,))
    if row is None:
        raise NotFound(f"no change {change_id!r}")
    return from_document(parse_stored(row[0]))


def document(tx: Tx, change_id: str) -> dict[str, Any]:
    row = tx.one("SELECT doc FROM changes WHERE change_id=?", (change_id,))
    if row is None:
        raise NotFound(f"no change {change_id!r}")
    doc: dict[str, Any] = parse_stored(row[0])
    return doc


def filed_between(tx: Tx, start: float, end: float) -> list[str]:
    """The ids of the changes filed in [start, end), oldest first."""
    rows = tx.all(
        "SELECT change_id FROM changes WHERE created_at >= ? AND created_at < ? "
        "ORDER BY created_at, change_id",
        (start, end),
    )
    return [r[0] for r in rows]


def exists(tx: Tx, change_id: str) -> bool:
    return tx.one("SELECT 1 FROM changes WHERE change_id=?", (change_id,)) is not None


def _until(column: str, until: datetime | None) -> tuple[str, tuple[float, ...]]:
    """A bound `column < until` (a replay sees only what was closed before its moment), or none."""
    return ("", ()) if until is None else (f" AND {column} < ?", (until.timestamp(),))


def history(
    tx: Tx,
    category: str,
    services: Collection[str],
    since: datetime,
    exclude: str,
    until: datetime | None = None,
) -> list[PastChange]:
    """Closed changes of `category` touching any of `services`, closed since `since` (and before
    `until`)."""
    if not services:
        return []
    marks = ",".join("?" * len(services))
    before, bound = _until("c.closed_at", until)
    # The ordered join (SQLite: CROSS JOIN) starts from the few rows of the named services, not from
    # every closed change (1.3 s -> 30 ms on a million changes).
    rows = tx.all(
        "SELECT DISTINCT c.change_id, c.closure_status FROM change_services s "
        f"{tx.ordered_join} changes c ON c.change_id = s.change_id "
        f"WHERE s.service IN ({marks}) AND c.category=? AND c.state=? "
        f"AND c.closure_status IN (?, ?, ?) AND c.closed_at >= ?{before} AND c.change_id <> ? "
        "ORDER BY c.change_id",
        (
            *services,
            category,
            State.CLOSED.value,
            ClosureStatus.SUCCESSFUL.value,
            ClosureStatus.FAILED.value,
            ClosureStatus.ROLLED_BACK.value,
            since.timestamp(),
            *bound,
            exclude,
        ),
    )
    return [PastChange(r[0], ClosureStatus(r[1])) for r in rows]


def track_record(
    tx: Tx, requester: str, since: datetime, exclude: str, until: datetime | None = None
) -> list[PastChange]:
    """Closed changes `requester` filed, closed since `since` (and before `until`): an agent's own
    record, for risk."""
    before, bound = _until("closed_at", until)
    rows = tx.all(
        f"SELECT change_id, closure_status FROM changes WHERE requested_by=? AND closed_at >= ?{before} "
        "AND state=? AND closure_status IN (?, ?, ?) AND change_id <> ? ORDER BY change_id",
        (
            requester,
            since.timestamp(),
            *bound,
            State.CLOSED.value,
            ClosureStatus.SUCCESSFUL.value,
            ClosureStatus.FAILED.value,
            ClosureStatus.ROLLED_BACK.value,
            exclude,
        ),
    )
    return [PastChange(r[0], ClosureStatus(r[1])) for r in rows]


LIST_COLUMNS = "change_id, state, type, category, risk_level, risk_score, created_at, title"


# Optional listing filters: key -> SQL condition with one parameter.
FILTERS = {
    "type": " AND type=?",
    "category": " AND category=?",
    "risk_level": " AND risk_level=?",
    "requested_by": " AND requested_by=?",
    "service": " AND change_id IN (SELECT change_id FROM change_services WHERE service=?)",
    "created_from": " AND created_at >= ?",  # epoch seconds
    "created_to": " AND created_at < ?",
}


def listing(
    tx: Tx,
    states: Collection[State] | None,
    limit: int,
    before: str | None,
    filters: Mapping[str, Any] | None = None,
) -> list[Row]:
    """Newest first; `before` is the last change id of the previous page; `filters` keys: FILTERS.

    A group of states is one index range per state, merged: `state IN (...)` would sort every
    matching row before taking the first page.
    """
    cursor = ""
    params: list[Any] = []
    for key, value in sorted((filters or {}).items()):
        cursor += FILTERS[key]
        params.append(value)
    if before:
        row = tx.one("SELECT created_at, change_id FROM changes WHERE change_id=?", (before,))
        if row is None:
            return []
        cursor += " AND (created_at, change_id) < (?, ?)"
        params += [row[0], row[1]]
    order = "ORDER BY created_at DESC, change_id DESC LIMIT ?"
    if not states:
        where = f"WHERE 1=1{cursor}"
        return tx.all(f"SELECT {LIST_COLUMNS} FROM changes {where} {order}", (*params, limit))
    parts: list[str] = []
    args: list[Any] = []
    for state in sorted(s.value for s in states):
        part = f"SELECT {LIST_COLUMNS} FROM changes WHERE state=?{cursor} {order}"
        parts.append(f"SELECT * FROM ({part}) AS s{len(parts)}")
        args += [state, *params, limit]
    return tx.all(f"SELECT * FROM ({' UNION ALL '.join(parts)}) AS merged {order}", (*args, limit))


def recent_model_requests(
    tx: Tx,
    model: str,
    key: str,
    field: str,
    value: Any,
    since: datetime,
    until: datetime,
    exclude: str,
) -> int:
    """How many requests for `model` with rate key `key` were created in [since, until].

    Rows filed before keys were stored (migration 0008) have none: there parameter `field` must
    equal `value` exactly, as it was compared then. Their documents may hold what the engines'
    JSON functions refuse (`_unreadable`): those are compared here, after a tolerant parse.
    """
    if not field.isidentifier():
        raise ValueError(f"bad parameter name {field!r}")
    window = (
        "FROM changes WHERE standard_model=? AND type='standard' "
        "AND created_at >= ? AND created_at <= ? AND change_id <> ? "
    )
    span = (model, since.timestamp(), until.timestamp(), exclude)
    same = f"{_json_field(tx, field)} = {_json_value(tx)}"
    row = tx.one(  # CASE, not AND: SQL promises no order of evaluation but CASE's
        f"SELECT count(*) {window}AND (rate_key = ? OR (rate_key IS NULL AND "
        f"CASE WHEN {_unreadable(tx)} THEN 0 WHEN {same} THEN 1 ELSE 0 END = 1))",
        (*span, key, _json_param(tx, value)),
    )
    unreadable = tx.all(f"SELECT doc {window}AND rate_key IS NULL AND {_unreadable(tx)}", span)
    parameters = [parse_stored(doc).get("parameters") or {} for (doc,) in unreadable]
    return (int(row[0]) if row else 0) + sum(_json_equal(p.get(field), value) for p in parameters)


def overdue_reviews(tx: Tx, now: float, overdue: bool = True) -> list[Row]:
    """Changes whose retrospective review was due before `now` (`overdue`; else: is due at or
    after `now`) and is not recorded, soonest due first: the listing's columns, then requested_by,
    approved_at and review_due_at."""
    return tx.all(
        f"SELECT {LIST_COLUMNS}, requested_by, approved_at, review_due_at FROM changes "
        f"WHERE review_due_at {'<' if overdue else '>='} ? ORDER BY review_due_at, change_id",
        (now,),
    )


# A document's parameter, compared as JSON on both engines (a number stays a number).
def _json_field(tx: Tx, field: str) -> str:
    if tx.dialect == "postgres":
        return f"(doc::jsonb -> 'parameters' -> '{field}')"
    return f"json_extract(doc, '$.parameters.{field}')"


def _json_value(tx: Tx) -> str:
    return "?::jsonb" if tx.dialect == "postgres" else "?"


def _json_param(tx: Tx, value: Any) -> Any:
    return json.dumps(value) if tx.dialect == "postgres" else value


def _unreadable(tx: Tx) -> str:
    """True of a document the engines' JSON functions may refuse: one json.dumps wrote NaN or
    ±Infinity into (before the doors refused them), or, for PostgreSQL's jsonb, one holding a NUL
    character (`\\u0000`); true as well of one that merely mentions the words."""
    find = "strpos" if tx.dialect == "postgres" else "instr"
    return f"({find}(doc, 'NaN') > 0 OR {find}(doc, 'Infinity') > 0 OR {find}(doc, '\\u0000') > 0)"


def _json_equal(a: Any, b: Any) -> bool:
    """Equality of two JSON scalars as the engines compare them: true is not 1, 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


def planned_between(
    tx: Tx, start: float, end: float, states: Collection[State], service: str | None = None, limit: int = 1000
) -> list[str]:
    """Changes in `states` whose planned window overlaps [start, end) (touching `service`, in any
    letter case, if given), soonest first."""
    marks = ",".join("?" * len(states))
    sql = (
        "SELECT c.change_id FROM changes c WHERE c.planned_start < ? AND c.planned_end > ? "
        f"AND c.state IN ({marks})"
    )
    params: list[Any] = [end, start, *(s.value for s in states)]
    if service is not None:
        sql += (
            " AND EXISTS (SELECT 1 FROM change_services s "
            "WHERE s.change_id = c.change_id AND lower(s.service) = ?)"
        )
        params.append(service.strip().lower())
    sql += " ORDER BY c.planned_start, c.change_id LIMIT ?"
    return [str(r[0]) for r in tx.all(sql, (*params, limit))]
