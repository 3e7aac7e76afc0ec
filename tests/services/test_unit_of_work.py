"""The unit of work (services/unit.py): one transaction per transition, the change loaded once,
a refusal writing only its audit event, any other error writing nothing, and the record in hand
(with its trail) equal to what a fresh read returns."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from cortex_change.domain.errors import Conflict, InvalidTransition, ValidationError
from cortex_change.services import queries, unit
from cortex_change.services.changes import approve_change, assess_change, close_change
from cortex_change.services.context import Context, open_context
from cortex_change.store import audit, changes
from support import file_change


class Counting:
    """A store that counts the transactions and reads opened through it, and the SQL they run."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.transactions = 0
        self.reads = 0
        self.loads = 0

    def _count_loads(self, tx: Any) -> Any:
        outer = self
        one = tx.one

        def counted(sql: str, params: Any = ()) -> Any:
            if sql.startswith("SELECT doc FROM changes"):
                outer.loads += 1
            return one(sql, params)

        tx.one = counted
        return tx

    @contextmanager
    def _wrap(self, opened: AbstractContextManager[Any]) -> Iterator[Any]:
        with opened as tx:
            yield self._count_loads(tx)

    def transaction(self) -> AbstractContextManager[Any]:
        self.transactions += 1
        return self._wrap(self.inner.transaction())

    def read(self) -> AbstractContextManager[Any]:
        self.reads += 1
        return self._wrap(self.inner.read())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_url: str) -> Iterator[Context]:
    monkeypatch.chdir(tmp_path)
    context = open_context(env={"CORTEX_CHANGE_DB": store_url, "TECH_LEADS": "tess"})
    try:
        yield context
    finally:
        context.close()


def _filed(ctx: Context) -> str:
    change = file_change(
        ctx, type="normal", category="deployment", title="Deploy", requested_by="alice", impact="low"
    )
    return str(change.change_id)


def _trail(ctx: Context, change_id: str) -> list[str]:
    with ctx.db.read() as tx:
        return [e["action"] for e in audit.for_change(tx, change_id)]


def test_a_transition_is_one_transaction_loading_the_change_once(ctx: Context) -> None:
    cid = _filed(ctx)
    counting = Counting(ctx.db)
    ctx.db = counting  # type: ignore[assignment]
    assess_change(ctx, change_id=cid)
    assert (counting.transactions, counting.reads, counting.loads) == (1, 0, 1)
    approve_change(ctx, change_id=cid, approver="tess", reason="fine")
    assert (counting.transactions, counting.reads, counting.loads) == (2, 0, 2)


def test_the_record_in_hand_is_what_a_fresh_read_returns(ctx: Context) -> None:
    cid = _filed(ctx)
    assess_change(ctx, change_id=cid)
    change, _ = approve_change(ctx, change_id=cid, approver="tess", reason="fine")
    assert change.trail is not None
    in_hand = queries.document(ctx, change, change.trail)
    assert in_hand == queries.get_change(ctx, change_id=cid)
    assert [e["action"] for e in in_hand["audit_trail"]][-1] == "approved"


def test_a_refusal_writes_only_its_audit_event(ctx: Context) -> None:
    cid = _filed(ctx)
    before = unit.load(ctx, cid)
    with pytest.raises(InvalidTransition):
        close_change(ctx, change_id=cid, status="successful", notes="", actor="alice")
    after = unit.load(ctx, cid)
    assert after == before and after.version == before.version
    assert _trail(ctx, cid) == ["created", "unauthorized_attempt"]


def test_any_other_error_inside_the_work_writes_nothing(ctx: Context) -> None:
    cid = _filed(ctx)
    before = unit.load(ctx, cid)
    with ctx.db.read() as tx:
        head = audit.head(tx)

    def op(change: Any) -> list[Any]:
        change.title = "half-done"
        raise ValidationError("title", "refused half-way")

    with pytest.raises(ValidationError):
        unit.apply(ctx, cid, "alice", op)
    with ctx.db.read() as tx:
        assert audit.head(tx) == head
        assert changes.get(tx, cid) == before


def test_the_api_path_never_runs_steps_it_did_not_read_in_its_own_transaction(
    ctx: Context, tmp_path: Path
) -> None:
    """implement_or_queue reads the plan before its unit of work: if the plan read then had text
    steps only but the record it begins on has executable ones, nothing runs and nothing is written."""
    from cortex_change.services.implementation import implement_change

    marker = tmp_path / "ran"
    change = file_change(
        ctx,
        type="normal",
        category="deployment",
        title="Touch",
        requested_by="alice",
        impact="low",
        implementation_plan={"steps": [{"run": ["touch", str(marker)]}]},
        rollback_plan={"steps": ["Revert by hand"]},
    )
    cid = str(change.change_id)
    assess_change(ctx, change_id=cid)
    approve_change(ctx, change_id=cid, approver="tess", reason="reviewed the exact steps")
    before = unit.load(ctx, cid)
    with pytest.raises(Conflict, match="executable steps"):
        implement_change(ctx, change_id=cid, actor="alice", text_only=True)
    assert not marker.exists()
    assert unit.load(ctx, cid) == before
    assert _trail(ctx, cid)[-1] == "approved"
