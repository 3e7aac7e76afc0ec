"""Helpers for the worker's tests: direct store reads, held deliveries, changes set up in-process.

The receivers, `query` and the clock are in tests/support.py."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from typing import Any

from cortex_change.services.context import Context
from support import HttpReceiver, Received, file_change, query

# A CAB meeting nobody reaches during a test (29 February, no lead): no agenda message appears
# unless a test asks for one.
QUIET = {"CAB_MEETING_SCHEDULE": "0 0 29 2 *", "CAB_AGENDA_LEAD": "0"}


class HeldRequests(list[Any]):
    """A receiver's request list (`receiver.requests = HeldRequests()`): the handler appends each
    request before answering it, and here it waits until `release` is set, so the first deliveries
    are held until the test has seen what it waits for (e.g. several workers holding claims)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def append(self, item: Any) -> None:
        super().append(item)
        self.release.wait(30)

    def release_when(self, condition: Any, within: float) -> threading.Thread:
        """Release once `condition()` holds (polled), or after `within` seconds whatever happens."""

        def watch() -> None:
            deadline = time.monotonic() + within
            while not self.release.is_set() and time.monotonic() < deadline:
                if condition():
                    break
                time.sleep(0.02)
            self.release.set()

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        return thread


def query_ddl(db: str, sql: str) -> None:
    """Run one statement that returns no rows (DDL), committed."""
    if db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(sql)
        return
    conn = sqlite3.connect(db)
    try:
        conn.execute(sql)
        conn.commit()
    finally:
        conn.close()


def event_id(db: str, change_id: str, action: str) -> str:
    """The id of the one audit event `action` of a change."""
    found = query(db, "SELECT event_id FROM audit_events WHERE change_id=? AND action=?", (change_id, action))
    assert len(found) == 1, (change_id, action, found)
    return str(found[0][0])


def actions(db: str, change_id: str) -> list[str]:
    """A change's audit actions in chain order."""
    rows = query(db, "SELECT action FROM audit_events WHERE change_id=? ORDER BY seq", (change_id,))
    return [str(r[0]) for r in rows]


def outbox_rows(db: str, **where: Any) -> list[dict[str, Any]]:
    """Outbox rows as dicts (optionally filtered by column = value), oldest first."""
    cols = (
        "message_id, event_id, channel, kind, change_id, state, attempts, next_attempt_at, "
        "claimed_by, last_error, delivered_at, payload"
    )
    sql = f"SELECT {cols} FROM outbox"
    if where:
        sql += " WHERE " + " AND ".join(f"{k}=?" for k in where)
    rows = query(db, sql + " ORDER BY created_at, message_id", tuple(where.values()))
    names = [c.strip() for c in cols.split(",")]
    out = [dict(zip(names, r, strict=True)) for r in rows]
    for row in out:
        row["payload"] = json.loads(row["payload"])
    return out


def webhook_requests(receiver: HttpReceiver, kind: str | None = None) -> list[Received]:
    """The webhook posts the receiver got (of one kind)."""
    got = [r for r in receiver.requests if r.method == "POST"]
    return [r for r in got if kind is None or r.json().get("kind") == kind]


def file_for_approval(ctx: Context, title: str = "Deploy build 42", **fields: Any) -> str:
    """A normal deployment, created and assessed: medium risk, routed to a technical lead."""
    from cortex_change.services import changes

    change = file_change(
        ctx, type="normal", category="deployment", title=title, requested_by="alice", **fields
    )
    assessed = changes.assess_change(ctx, change_id=change.change_id)
    assert assessed.state.value == "pending_approval", assessed.state
    return change.change_id


# Automatic routes run runbooks only (SPEC §11): `noop` is defined in the tests' catalog.
RUNBOOK_TOML = '[runbooks.noop]\nversion = 1\nrun = ["true"]\n'
RUNNABLE = {"steps": [{"runbook": "noop"}]}


def emergency(ctx: Context, title: str = "Patch CVE-2026-0001", **fields: Any) -> str:
    """An emergency change with a runnable plan, created and assessed (auto-approved by default)."""
    from cortex_change.services import changes

    change = file_change(
        ctx,
        type="emergency",
        category="security",
        title=title,
        requested_by="oncall",
        implementation_plan=RUNNABLE,
        rollback_plan=RUNNABLE,
        **fields,
    )
    changes.assess_change(ctx, change_id=change.change_id)
    return change.change_id
