"""`policy simulate` as a use case, on both backends, over a generated history (tests/risk_history.py):
the running configuration replays every change as it was recorded; a candidate's thresholds, roles,
filing rules and learned model move exactly the changes they should; nothing is written."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cortex_change.config import Settings, load
from cortex_change.domain import routing
from cortex_change.domain.model import ChangeType, ClosureStatus, Route
from cortex_change.domain.period import Period
from cortex_change.domain.prediction import LogisticModel
from cortex_change.domain.simulation import MINUTES
from cortex_change.services.context import Context
from cortex_change.services.simulation import simulate
from cortex_change.services.unit import load as load_change
from cortex_change.store import risk
from risk_history import generate
from support import TEST_IMPLEMENTERS, FakeClock

N = 90
EVERYTHING = Period("all", datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


@pytest.fixture
def history(make_ctx: Callable[..., Context], clock: FakeClock) -> Iterator[tuple[Context, list[str]]]:
    ctx = make_ctx()
    yield ctx, generate(ctx, clock, N, seed=8)


def _candidate(store: Context, **env: str) -> Settings:
    return load({"CORTEX_CHANGE_DB": store.db.path, "IMPLEMENTERS": TEST_IMPLEMENTERS, **env})


def _footprint(ctx: Context) -> tuple[object, ...]:
    """What a write would change: every table's rows."""
    with ctx.db.read() as tx:
        return (
            tx.all("SELECT change_id, version, doc FROM changes ORDER BY change_id"),
            tx.all("SELECT COUNT(*), MAX(seq) FROM audit_events"),
            tx.all("SELECT COUNT(*) FROM outbox"),
            tx.all("SELECT COUNT(*) FROM risk_models"),
        )


def test_the_running_configuration_replays_every_change_as_recorded_and_writes_nothing(
    history: tuple[Context, list[str]],
) -> None:
    ctx, ids = history
    before = _footprint(ctx)
    out = simulate(ctx, ctx.settings, EVERYTHING, dict(MINUTES), "same.toml")
    assert _footprint(ctx) == before

    changes = [load_change(ctx, cid) for cid in ids]
    assert (out["replayed"], out["not_assessed"], out["unlike_recorded"]) == (N, 0, 0)
    assert out["differences"] == {} and out["moved"] == []
    assert out["current"] == out["candidate"]
    recorded = Counter(c.assessment.route.value for c in changes if c.assessment)
    assert out["current"]["routes"] == {r.value: recorded[r.value] for r in Route}
    # Approver-hours: each route's requirements × minutes, system approvals cost nothing.
    minutes: Counter[str] = Counter()
    for c in changes:
        a = c.assessment
        assert a is not None
        if not any(routing.is_system_approver(x.approver) for x in c.approvals):
            for req in routing.requirements(a.route, ctx.policy, a.ciso):
                minutes[req.role] += req.count * MINUTES[req.role]
    hours = {role: doc["hours"] for role, doc in out["current"]["approver_hours"].items()}
    assert hours == {role: round(minutes[role] / 60, 1) for role in MINUTES}
    assert hours["technical-lead"] > 0 and hours["cab"] > 0
    # The changes the system approved by itself that then failed: the emergencies that failed.
    system_failed = [
        c.change_id
        for c in changes
        if c.closure_status in (ClosureStatus.FAILED, ClosureStatus.ROLLED_BACK)
        and any(routing.is_system_approver(x.approver) for x in c.approvals)
    ]
    assert out["current"]["auto_approved_failed"] == {"count": len(system_failed), "changes": system_failed}


def test_higher_thresholds_auto_approve_exactly_the_low_scores_and_name_those_that_failed(
    history: tuple[Context, list[str]],
) -> None:
    ctx, ids = history
    env = {"AUTO_APPROVE_THRESHOLD": "45", "RISK_THRESHOLD_LOW": "46", "RISK_THRESHOLD_MEDIUM": "70"}
    out = simulate(ctx, _candidate(ctx, **env), EVERYTHING, dict(MINUTES), "new.toml")
    assert out["differences"]["AUTO_APPROVE_THRESHOLD"] == {"current": 25, "candidate": 45}

    changes = {cid: load_change(ctx, cid) for cid in ids}
    low = {
        cid
        for cid, c in changes.items()
        if c.type is ChangeType.NORMAL
        and c.assessment is not None
        and c.assessment.score < 45  # AUTO_APPROVE_THRESHOLD
    }
    raised_to_auto = {m["change_id"] for m in out["moved"] if m["to"] == "auto-approved"}
    assert low and raised_to_auto == low
    assert out["candidate"]["routes"]["auto-approved"] == out["current"]["routes"]["auto-approved"] + len(low)
    failed_now = [
        cid for cid in ids if cid in low and changes[cid].closure_status is not ClosureStatus.SUCCESSFUL
    ]
    added = (
        out["candidate"]["auto_approved_failed"]["count"] - out["current"]["auto_approved_failed"]["count"]
    )
    assert failed_now and added == len(failed_now)
    assert set(failed_now) <= set(out["candidate"]["auto_approved_failed"]["changes"])
    # Fewer approvals for people to give.
    assert (
        out["candidate"]["approver_hours"]["technical-lead"]["hours"]
        < (out["current"]["approver_hours"]["technical-lead"]["hours"])
    )


def test_roles_change_the_load_per_member_and_filing_rules_refuse_with_the_rules_words(
    history: tuple[Context, list[str]],
) -> None:
    ctx, ids = history
    changes = [load_change(ctx, cid) for cid in ids]
    kept = [c for c in ("deployment", "configuration", "patch") if any(x.category == c for x in changes)]
    env = {
        "CAB_MEMBERS": "tech-lead,security-lead,ops-lead,product-lead,sre-lead",
        "CAB_MIN_APPROVALS": "3",
        "EMERGENCY_CHANGE_ENABLED": "false",
    }
    candidate = _candidate(ctx, **env)
    candidate = Settings(candidate.values, {c: 10 for c in kept}, candidate.extra)
    out = simulate(ctx, candidate, EVERYTHING, {**MINUTES, "cab": 60}, "new.toml")

    refused = {b["change_id"]: b["reason"] for b in out["candidate"]["blocked"]["changes"]}
    expected = {c.change_id for c in changes if c.type is ChangeType.EMERGENCY or c.category not in kept}
    assert refused.keys() == expected and out["current"]["blocked"]["count"] == 0
    for c in changes:
        if c.change_id in refused:
            reason = refused[c.change_id]
            assert "\n" not in reason
            if c.category not in kept:
                assert reason.startswith(f"category: {c.category!r} is not allowed; allowed: ")
            else:
                assert "emergency changes are disabled (EMERGENCY_CHANGE_ENABLED=false)" in reason
    assert {m["change_id"] for m in out["moved"] if m["to"] == "refused"} == expected
    cab = out["candidate"]["approver_hours"]["cab"]
    routes = out["candidate"]["routes"]
    votes = 3 * (routes["cab"] + routes["cab+ciso+cto"])  # an hour each now
    assert cab["members"] == 5 and cab["hours"] == votes
    assert cab["per_member"] == round(cab["hours"] / 5, 1)


def test_a_blending_model_raises_exactly_the_changes_it_predicts_will_fail(
    history: tuple[Context, list[str]],
) -> None:
    ctx, ids = history
    model = LogisticModel(1, -4.0, {"database": 8.0}, {"database": 0.0}, {"database": 1.0})
    with ctx.db.transaction() as tx:
        risk.insert(tx, 1, "2026-01-01T00:00:00Z", json.dumps({"version": 1}), json.dumps(model.document()))
    before = _footprint(ctx)
    same = simulate(ctx, _candidate(ctx, RISK_MODEL="advisory"), EVERYTHING, dict(MINUTES), "advisory.toml")
    assert same["moved"] == []  # advisory: the model is shown, never routes
    out = simulate(ctx, _candidate(ctx, RISK_MODEL="blend"), EVERYTHING, dict(MINUTES), "blend.toml")
    assert _footprint(ctx) == before

    changes = {cid: load_change(ctx, cid) for cid in ids}
    database = {
        cid
        for cid, c in changes.items()
        if c.assessment is not None
        and c.assessment.features is not None
        and c.assessment.features["database"] == 1.0
        and c.type is not ChangeType.EMERGENCY
        and c.assessment.route.value in ("technical-lead", "cab")
    }
    assert database
    assert {m["change_id"] for m in out["moved"]} == database
    up = {"technical-lead": "cab", "cab": "cab+ciso+cto"}
    assert all(m["to"] == up[m["from"]] for m in out["moved"])
    assert out["candidate"]["routes"]["cab+ciso+cto"] > out["current"]["routes"]["cab+ciso+cto"]


def test_an_empty_period_replays_nothing(history: tuple[Context, list[str]], tmp_path: Path) -> None:
    ctx, _ = history
    early = Period("2025-Q1", datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC))
    out = simulate(ctx, ctx.settings, early, dict(MINUTES), "same.toml")
    assert (out["replayed"], out["moved"]) == (0, [])
    assert out["current"]["routes"] == {r.value: 0 for r in Route}
