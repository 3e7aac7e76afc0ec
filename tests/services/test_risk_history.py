"""tests/risk_history.py, the generator of change histories with a planted failure signal, on
both backends: every change goes the whole way through the real services and closes, the
planted signal shows in the outcomes, one seed gives the same history on any store, and the
audit chain verifies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cortex_change.domain.lifecycle import State
from cortex_change.domain.model import Change, ChangeType, ClosureStatus
from cortex_change.services import audit
from cortex_change.services.context import Context, open_context
from cortex_change.services.unit import load
from cortex_change.store import audit as audit_store
from risk_history import FRIDAY, SERVICES, failure_probability, generate
from support import TEST_IMPLEMENTERS, FakeClock

N = 120


def _outcome(change: Change) -> tuple[Any, ...]:
    """What a history is made of, but the change id (it carries random bytes)."""
    return (
        change.timeline.created_at,
        change.timeline.implementation_started_at,
        change.timeline.closed_at,
        change.type,
        change.category,
        change.title,
        change.requested_by,
        change.impact,
        change.urgency,
        tuple(change.affected_services),
        change.environment,
        change.tested_in_staging is not None,
        bool((change.rollback_plan or {}).get("steps")),
        change.assessment.route if change.assessment else None,
        change.closure_status,
    )


def _friday_database(change: Change) -> bool:
    started = change.timeline.implementation_started_at
    assert started is not None
    return started.weekday() == FRIDAY and any(s.endswith("-db") for s in change.affected_services)


def _failed(change: Change) -> bool:
    return change.closure_status in (ClosureStatus.FAILED, ClosureStatus.ROLLED_BACK)


def test_a_history_closes_every_change_with_the_planted_signal_and_a_sound_chain(
    make_ctx: Callable[..., Context], clock: FakeClock
) -> None:
    ctx = make_ctx()
    start = clock()
    ids = generate(ctx, clock, N)
    assert len(ids) == len(set(ids)) == N
    changes = [load(ctx, cid) for cid in ids]

    # Every change went the whole way and closed with an outcome; in filing order.
    assert all(c.state is State.CLOSED for c in changes)
    assert {c.closure_status for c in changes} == {
        ClosureStatus.SUCCESSFUL,
        ClosureStatus.FAILED,
        ClosureStatus.ROLLED_BACK,
    }
    created = [c.timeline.created_at for c in changes]
    assert created == sorted(created) and created[0] > start
    # About N/10 days, every day of the week, hours spread over the day.
    days = {t.date() for t in created}
    assert N / 14 <= len(days) <= N / 7
    assert {t.weekday() for t in created} == set(range(7))
    assert len({t.hour for t in created}) >= 16
    # The mix: mostly normal, a few emergencies, no standard change; the fixed pool of services;
    # some staging changes, some promotions citing them, some without a rollback plan.
    kinds = [c.type for c in changes]
    assert ChangeType.STANDARD not in kinds
    assert 0 < kinds.count(ChangeType.EMERGENCY) < N / 8
    assert all(1 <= len(c.affected_services) <= 3 for c in changes)
    assert {s for c in changes for s in c.affected_services} <= set(SERVICES)
    assert {c.category for c in changes} <= set(ctx.policy.categories)
    assert any(c.environment == "staging" for c in changes)
    assert any(c.tested_in_staging is not None for c in changes)
    assert 0 < sum(1 for c in changes if not (c.rollback_plan or {}).get("steps")) < N / 2
    assert all(1 <= len((c.implementation_plan or {})["steps"]) <= 6 for c in changes)
    # Approved by people where the route asked for them, never by the requester.
    routes = {c.assessment.route.value for c in changes if c.assessment}
    assert {"technical-lead", "cab", "emergency-cab"} <= routes
    for c in changes:
        assert all(a.approver != c.requested_by for a in c.approvals)

    # The planted signal: Friday database changes fail far more often than the rest.
    friday = [c for c in changes if _friday_database(c)]
    rest = [c for c in changes if not _friday_database(c)]
    assert len(friday) >= 5
    friday_rate = sum(map(_failed, friday)) / len(friday)
    rest_rate = sum(map(_failed, rest)) / len(rest)
    assert friday_rate > 3 * rest_rate, (friday_rate, rest_rate)
    assert 0.04 < rest_rate < 0.25
    assert all(failure_probability(c, 0.0) >= 0.95 for c in friday)
    plain = [c for c in rest if (c.rollback_plan or {}).get("steps") and c.type is not ChangeType.EMERGENCY]
    assert plain and all(failure_probability(c, 0.0) <= 0.11 for c in plain)

    # The audit chain verifies, and each change's trail runs from filing to closing untouched.
    verdict = audit.verify(ctx)
    assert verdict.ok, verdict.problem
    with ctx.db.read() as tx:
        for c in changes:
            events = audit_store.for_change(tx, c.change_id)
            actions = [e["action"] for e in events]
            assert actions[0] == "created" and "closed" in actions, actions
            assert audit_store.altered(events) == []


def test_one_seed_gives_the_same_history_on_any_store(
    make_ctx: Callable[..., Context], clock: FakeClock, tmp_path: Path
) -> None:
    """The same seed on this backend and on a fresh SQLite file: the same changes and outcomes,
    the first n of a longer history being a shorter one; another seed, another history."""
    ctx = make_ctx()
    first = [_outcome(load(ctx, cid)) for cid in generate(ctx, clock, 60)]

    def elsewhere(name: str, n: int, seed: int) -> list[tuple[Any, ...]]:
        other_clock = FakeClock(datetime(2026, 1, 15, 9, 0, 0, tzinfo=UTC))
        env = {"CORTEX_CHANGE_DB": str(tmp_path / name), "IMPLEMENTERS": TEST_IMPLEMENTERS}
        other = open_context(env=env, clock=other_clock)
        try:
            return [_outcome(load(other, cid)) for cid in generate(other, other_clock, n, seed=seed)]
        finally:
            other.close()

    assert elsewhere("same.db", 70, seed=7)[:60] == first
    different = elsewhere("other.db", 60, seed=8)
    assert [o[-1] for o in different] != [o[-1] for o in first]
