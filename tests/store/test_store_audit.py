"""The audit repository: append-only rows (enforced by the database), a forward-only head, a chain."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cortex_change.domain.events import Event
from cortex_change.store import audit
from cortex_change.store.db import Database, StoreError

AT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
CHANGE = "RFC-20260301120000-abcdef"


@pytest.fixture
def database(db_path: Path) -> Iterator[Database]:
    db = Database(str(db_path))
    with db.transaction() as tx:
        audit.append(
            tx, CHANGE, [Event("created", "alice", {"n": 1}), Event("assessed", "risk-engine", {})], AT
        )
        audit.append(tx, None, [Event("config_changed", "admin", {"key": "X", "value": "é\n"})], AT)
    yield db
    db.close()


def _count(db: Database) -> int:
    with db.read() as tx:
        row = tx.one("SELECT count(*) FROM audit_events")
    assert row is not None
    return int(row[0])


def test_append_chains_events_and_moves_the_head(database: Database) -> None:
    with database.read() as tx:
        events = [audit.as_dict(r) for r in audit.rows(tx)]
        head = audit.head(tx)
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert events[0]["prev_hash"] == audit.GENESIS
    for before, after in itertools.pairwise(events):
        assert after["prev_hash"] == before["hash"]
    assert head == (3, events[-1]["hash"])
    assert events[2]["details"] == {"key": "X", "value": "é\n"}
    with database.read() as tx:
        verdict = audit.verify_rows(audit.rows(tx), audit.head(tx))
    assert (verdict.ok, verdict.checked, verdict.head_hash) == (True, 3, head[1])


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_events SET actor='mallory' WHERE seq=1",
        "UPDATE audit_events SET details='{}'",
        "DELETE FROM audit_events WHERE seq=3",
        "DELETE FROM audit_events",
    ],
)
def test_database_refuses_update_and_delete_of_audit_rows(database: Database, sql: str) -> None:
    with database.read() as tx:
        before = list(audit.rows(tx))
    with pytest.raises(StoreError, match="append-only"), database.transaction() as tx:
        tx.run(sql)
    with database.read() as tx:
        assert list(audit.rows(tx)) == before


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_head SET seq = seq - 1",
        "UPDATE audit_head SET seq = 0, hash = '" + "0" * 64 + "'",
        "UPDATE audit_head SET hash = 'abc'",  # same seq: not forward either
        "DELETE FROM audit_head",
    ],
)
def test_audit_head_refuses_moving_backwards_or_vanishing(database: Database, sql: str) -> None:
    with database.read() as tx:
        head = audit.head(tx)
    with (
        pytest.raises(StoreError, match=r"only moves forward|cannot be deleted"),
        database.transaction() as tx,
    ):
        tx.run(sql)
    with database.read() as tx:
        assert audit.head(tx) == head


def test_append_in_a_rolled_back_transaction_leaves_nothing(database: Database) -> None:
    with database.read() as tx:
        head = audit.head(tx)
    with pytest.raises(RuntimeError), database.transaction() as tx:
        audit.append(tx, CHANGE, [Event("approved", "bob", {})], AT)
        raise RuntimeError("the record's write failed")
    assert _count(database) == 3
    with database.read() as tx:
        assert audit.head(tx) == head


def test_two_connections_append_to_one_chain(database: Database) -> None:
    other = Database(database.path)
    try:
        with other.transaction() as tx:
            audit.append(tx, CHANGE, [Event("approved", "bob", {})], AT)
        with database.transaction() as tx:
            audit.append(tx, CHANGE, [Event("implemented", "ops", {})], AT)
    finally:
        other.close()
    with database.read() as tx:
        verdict = audit.verify_rows(audit.rows(tx), audit.head(tx))
    assert (verdict.ok, verdict.checked) == (True, 5)


def test_verify_names_an_altered_event(database: Database) -> None:
    with database.read() as tx:
        rows = [list(r) for r in audit.rows(tx)]
        head = audit.head(tx)
    rows[1][5] = "mallory"  # actor of event 2
    verdict = audit.verify_rows(rows, head)
    assert (verdict.ok, verdict.first_bad_seq, verdict.checked) == (False, 2, 1)
    assert "#2" in verdict.problem
