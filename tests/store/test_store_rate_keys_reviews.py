"""Migration 0008 on both backends: the review due times of a store made before it are back-filled,
and its requests (no rate key) still count towards a rate limit, compared as they were then."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cortex_change.services.changes import assess_change, review_change
from cortex_change.services.context import Context
from cortex_change.services.reviews import overdue_reviews
from support import FakeClock, file_change, query

# What migrations 0008 and later add, undone: the store as version 7 left it.
BEFORE_0008 = (
    "DROP TABLE audit_witness_receipts",  # 0019
    "DROP TABLE audit_checkpoints",
    "DROP TABLE audit_keys",
    "DELETE FROM schema_version WHERE version = 19",
    "DROP TABLE remediation_alerts",  # 0021
    "DELETE FROM schema_version WHERE version = 21",
    "DROP TABLE pir_actions",  # 0020
    "DROP TABLE pirs",
    "DELETE FROM schema_version WHERE version = 20",
    "DROP TABLE risk_models",  # 0018
    "ALTER TABLE changes DROP COLUMN predicted_failure",
    "DELETE FROM schema_version WHERE version = 18",
    "DROP TABLE automation_halt",  # 0017
    "DROP INDEX changes_by_requester",
    "DROP INDEX api_tokens_by_name",
    "ALTER TABLE api_tokens DROP COLUMN agent",
    "ALTER TABLE api_tokens DROP COLUMN scopes",
    "ALTER TABLE api_tokens DROP COLUMN expires_at",
    "ALTER TABLE api_tokens DROP COLUMN retires_at",
    "DELETE FROM schema_version WHERE version = 17",
    "DROP TABLE portal_sessions",  # 0009
    "DELETE FROM schema_version WHERE version = 9",
    "DROP INDEX changes_by_created",  # 0010's covering index, back to 0001's
    "CREATE INDEX changes_by_created ON changes (created_at)",
    "DELETE FROM schema_version WHERE version = 10",
    "DROP TABLE ci_relations",  # 0011
    "DROP TABLE cis",
    "DELETE FROM schema_version WHERE version = 11",
    "ALTER TABLE change_windows DROP COLUMN cron",  # 0016
    "ALTER TABLE change_windows DROP COLUMN duration_seconds",
    "ALTER TABLE change_windows DROP COLUMN policy",
    "DELETE FROM schema_version WHERE version = 16",
    "DROP TABLE change_windows",  # 0012
    "DELETE FROM schema_version WHERE version = 12",
    "DROP TABLE observations",  # 0013
    "DELETE FROM schema_version WHERE version = 13",
    "DROP INDEX changes_by_planned_start",  # 0014
    "ALTER TABLE changes DROP COLUMN planned_start",
    "ALTER TABLE changes DROP COLUMN planned_end",
    "DELETE FROM schema_version WHERE version = 14",
    "DROP TABLE calendar_feeds",  # 0015
    "DELETE FROM schema_version WHERE version = 15",
    "DROP INDEX changes_by_rate_key",
    "DROP INDEX changes_by_review_due",
    "ALTER TABLE changes DROP COLUMN rate_key",
    "ALTER TABLE changes DROP COLUMN review_due_at",
    "DELETE FROM schema_version WHERE version = 8",
)


def _execute(store: str, sql: str) -> None:
    """One statement, committed, on a SQLite file or a PostgreSQL URL."""
    if store.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(store, autocommit=True) as pg:
            pg.execute(sql)
        return
    conn = sqlite3.connect(store, isolation_level=None)
    try:
        conn.execute(sql)
    finally:
        conn.close()


def _restart(ctx: Context, target: str) -> str:
    change = file_change(
        ctx,
        type="standard",
        category="infrastructure",
        title="Restart",
        requested_by="ops",
        standard_model="worker-restart",
        parameters={"target": target},
    )
    return str(assess_change(ctx, change_id=change.change_id).assessment.route.value)  # type: ignore[union-attr]


def test_a_store_from_before_0008_is_back_filled_and_still_counted(
    make_ctx: Callable[..., Context], clock: FakeClock, store_url: str
) -> None:
    clock.set(datetime.now(UTC).replace(microsecond=0) - timedelta(days=3))
    old = make_ctx()
    title = "Hotfix NaN \x00 Infinity"  # words a parser chokes on, and a NUL PostgreSQL's jsonb refuses
    emergency = file_change(old, type="emergency", category="security", title=title, requested_by="dev")
    assess_change(old, change_id=emergency.change_id)
    reviewed = file_change(old, type="emergency", category="security", title="Done", requested_by="dev")
    assess_change(old, change_id=reviewed.change_id)
    review_change(old, change_id=reviewed.change_id, reviewer="security-lead", outcome="accepted", notes="")
    clock.set(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10))
    assert [_restart(old, "worker-9") for _ in range(3)] == ["pre-approved"] * 3
    old.close()
    for sql in BEFORE_0008:
        _execute(store_url, sql)
    # as an older release could write it: a NaN in the document, which no SQL JSON parser reads
    nan = """UPDATE changes SET doc = replace(doc, '"parameters":{}', '"parameters":{"x":NaN}')"""
    _execute(store_url, f"{nan} WHERE change_id = '{emergency.change_id}'")
    stored = query(store_url, "SELECT doc FROM changes WHERE change_id=?", (emergency.change_id,))
    assert "NaN}" in stored[0][0]

    clock.set(datetime.now(UTC).replace(microsecond=0))
    ctx = make_ctx()  # migrates to 0008
    due = query(store_url, "SELECT change_id, review_due_at FROM changes WHERE review_due_at IS NOT NULL")
    assert [row[0] for row in due] == [emergency.change_id]  # the reviewed one is not due
    assert abs(float(due[0][1]) - (clock() - timedelta(days=2)).timestamp()) < 600
    listed = [(r["change_id"], r["title"]) for r in overdue_reviews(ctx)]
    assert listed == [(emergency.change_id, title.replace("\x00", "\u2400"))]  # the title column's copy
    # the old requests have no rate key: the same raw name still counts, the limit holds
    assert _restart(ctx, "worker-9") != "pre-approved"
    assert _restart(ctx, "worker-10") == "pre-approved"
