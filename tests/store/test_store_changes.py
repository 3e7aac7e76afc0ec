"""The changes repository: optimistic concurrency between two connections, deterministically."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cortex_change.domain.errors import Conflict, InvalidTransition, NotFound
from cortex_change.domain.events import Event
from cortex_change.services import changes as service
from cortex_change.services import implementation, queries
from cortex_change.services.context import Context
from cortex_change.store import audit, changes
from cortex_change.store.db import Database, Tx
from support import FakeClock, file_change

AT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _snapshot(db: Database, change_id: str) -> tuple[str, int, tuple[int, str]]:
    with db.read() as tx:
        doc = changes.document(tx, change_id)
        count = tx.one("SELECT count(*) FROM audit_events")
        head = audit.head(tx)
    assert count is not None
    return doc["title"], int(count[0]), head


def test_second_writer_from_a_stale_read_gets_conflict_and_writes_nothing(
    ctx: Context, db_path: Path
) -> None:
    change_id = file_change(
        ctx, type="normal", category="patch", title="original", requested_by="alice"
    ).change_id
    first, second = Database(str(db_path)), Database(str(db_path))
    try:
        with first.read() as tx:
            mine = changes.get(tx, change_id)
        with second.read() as tx:
            theirs = changes.get(tx, change_id)
        assert mine.version == theirs.version == 1

        mine.title = "first writer"
        with first.transaction() as tx:
            changes.save(tx, mine, 1, False)
            audit.append(tx, change_id, [Event("updated", "one", {})], AT)
        after_first = _snapshot(first, change_id)
        assert after_first[0] == "first writer"

        theirs.title = "second writer"
        with pytest.raises(Conflict, match="nothing was written"), second.transaction() as tx:
            # The audit event goes in first: the conflict must take it back out with the record.
            audit.append(tx, change_id, [Event("updated", "two", {})], AT)
            changes.save(tx, theirs, 1, False)

        assert _snapshot(second, change_id) == after_first
        with second.read() as tx:
            assert changes.get(tx, change_id).version == 2
            assert audit.verify_rows(audit.rows(tx), audit.head(tx)).ok
    finally:
        first.close()
        second.close()


def test_save_from_the_current_version_succeeds(ctx: Context, db_path: Path) -> None:
    change_id = file_change(ctx, type="normal", category="patch", title="t", requested_by="alice").change_id
    db = Database(str(db_path))
    try:
        for expected in (1, 2, 3):
            with db.read() as tx:
                change = changes.get(tx, change_id)
            assert change.version == expected
            change.description = f"v{expected + 1}"
            with db.transaction() as tx:
                changes.save(tx, change, expected, False)
        with db.read() as tx:
            assert changes.get(tx, change_id).description == "v4"
    finally:
        db.close()


def test_get_unknown_change_is_not_found(ctx: Context) -> None:
    with ctx.db.read() as tx, pytest.raises(NotFound):
        changes.get(tx, "RFC-20200101000000-000000")


def test_service_refusal_after_a_concurrent_write(ctx: Context, db_path: Path) -> None:
    """Service level: a stale in-process view never overwrites a newer record."""
    c = file_change(ctx, type="normal", category="documentation", title="t", requested_by="a", impact="low")
    service.assess_change(ctx, change_id=c.change_id)  # auto-approved
    other = Context(ctx.settings, Database(str(db_path)), ctx.clock)
    try:
        implementation.implement_change(other, change_id=c.change_id, actor="a")
    finally:
        other.close()
    with pytest.raises(InvalidTransition, match="implemented"):
        implementation.implement_change(ctx, change_id=c.change_id, actor="ops-2")
    doc = queries.get_change(ctx, change_id=c.change_id)
    assert [e["action"] for e in doc["audit_trail"]].count("implementation_started") == 1


def test_history_query_reads_only_indexes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Risk assessment's history lookup must not read row documents (cold cache: 100s of ms)."""
    db = Database(str(tmp_path / "h.db"))
    seen: list[tuple[str, tuple[object, ...]]] = []
    real_all = Tx.all

    def capture(self: Tx, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        seen.append((sql, tuple(params)))
        return real_all(self, sql, params)

    monkeypatch.setattr(Tx, "all", capture)
    with db.read() as tx:
        changes.history(tx, "deployment", ["a", "b"], datetime(2026, 1, 1, tzinfo=UTC), "RFC-x")
        ((sql, params),) = seen
        plan = " | ".join(str(row[3]) for row in real_all(tx, f"EXPLAIN QUERY PLAN {sql}", params))
    db.close()
    assert "SEARCH s USING COVERING INDEX" in plan
    assert "SEARCH c USING COVERING INDEX changes_for_history" in plan


def test_the_rate_count_compares_documents_sql_cannot_read_as_sql_does(
    make_ctx: Callable[..., Context], clock: FakeClock
) -> None:
    """Documents holding NaN (json.dumps wrote it before the doors refused it) or a NUL (which
    jsonb refuses) and filed without a rate key: they are compared after a tolerant parse, with the
    engines' JSON equality (5 is 5.0; "5" and true are not 5). Both backends."""
    ctx = make_ctx()
    for value, description in ((5, "NUL \x00 inside"), (5, ""), (5.0, ""), ("5", ""), (True, ""), (6, "")):
        file_change(
            ctx,
            type="standard",
            category="infrastructure",
            title="Scale",
            description=description,
            requested_by="alice",
            standard_model="autoscale",  # a range model: its rows carry no rate key
            parameters={"replicas": value},
        )
    since, until = clock() - timedelta(hours=1), clock() + timedelta(seconds=1)

    def counts() -> list[int]:
        with ctx.db.read() as tx:
            return [
                changes.recent_model_requests(tx, "autoscale", "-", "replicas", v, since, until, "-")
                for v in (5, "5", True, 6, 7)
            ]

    readable = counts()
    assert readable == [3, 1, 1, 1, 0]
    with ctx.db.transaction() as tx:
        poisoned = tx.run(
            "UPDATE changes SET doc = replace(doc, ?, ?) WHERE standard_model = ?",
            ('"parameters":{', '"parameters":{"load":NaN,"peak":-Infinity,', "autoscale"),
        )
    assert poisoned == 6
    assert counts() == readable
