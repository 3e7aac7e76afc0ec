"""Freeze windows on both backends: audited definitions, assessment refused or sent to the CAB,
an emergency flagged, implementation and the deploy gate stopped while a freeze is in force."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from cortex_change.domain.errors import NotFound, Refused
from cortex_change.services.changes import approve_change, assess_change
from cortex_change.services.context import Context
from cortex_change.services.gate import gate
from cortex_change.services.implementation import implement_change
from cortex_change.services.windows import add_window, list_windows, remove_window
from support import FakeClock, file_change, query


def _planned(ctx: Context, clock: FakeClock, days: int, **kw: object) -> str:
    start = clock() + timedelta(days=days)
    fields = {
        "type": "normal",
        "category": "deployment",
        "title": "Deploy api",
        "requested_by": "dev",
        "impact": "low",
        "affected_services": ["api"],
        "environment": "production",
        "rollback_plan": {"steps": ["undo"]},
        "planned_start": start.isoformat(),
        "planned_end": (start + timedelta(hours=2)).isoformat(),
        **kw,
    }
    return str(file_change(ctx, **fields).change_id)


def test_windows_are_audited_listed_and_removed(
    make_ctx: Callable[..., Context], clock: FakeClock, store_url: str
) -> None:
    ctx = make_ctx()
    w = add_window(
        ctx,
        kind="freeze",
        start=(clock() + timedelta(days=1)).isoformat(),
        end=(clock() + timedelta(days=3)).isoformat(),
        scope="environment:production",
        reason="Year end",
        actor="change-manager",
    )
    assert [x["window_id"] for x in list_windows(ctx)] == [w["window_id"]]
    remove_window(ctx, window_id=w["window_id"], actor="change-manager")
    assert list_windows(ctx) == []
    with pytest.raises(NotFound):
        remove_window(ctx, window_id=w["window_id"], actor="change-manager")
    actions = [r[0] for r in query(store_url, "SELECT action FROM audit_events ORDER BY seq", ())]
    assert actions[-2:] == ["window_added", "window_removed"]


def test_a_planned_change_during_a_freeze_is_refused_or_sent_to_the_cab(
    make_ctx: Callable[..., Context], clock: FakeClock, store_url: str
) -> None:
    ctx = make_ctx()
    add_window(
        ctx,
        kind="freeze",
        start=(clock() + timedelta(days=1)).isoformat(),
        end=(clock() + timedelta(days=3)).isoformat(),
        scope="environment:production",
        reason="Year end",
        actor="change-manager",
    )
    during = _planned(ctx, clock, 2)
    with pytest.raises(Refused) as refused:
        assess_change(ctx, change_id=during)
    assert "is planned during freeze" in str(refused.value) and "Year end" in str(refused.value)
    state = query(store_url, "SELECT state FROM changes WHERE change_id=?", (during,))[0][0]
    assert state == "pending_assessment"  # nothing but the refusal was written
    outside = _planned(ctx, clock, 5)
    assert assess_change(ctx, change_id=outside).state.value == "pending_approval"  # technical lead
    staging = _planned(ctx, clock, 2, environment="staging")
    assert assess_change(ctx, change_id=staging).state.value == "pending_approval"  # out of scope

    cab = make_ctx(FREEZE_POLICY="cab")
    assessed = assess_change(cab, change_id=during)
    assert assessed.assessment is not None and assessed.assessment.route.value == "cab"
    assert "the CAB decides (FREEZE_POLICY=cab)" in assessed.assessment.route_reason
    emergency = _planned(ctx, clock, 2, type="emergency", category="security")
    flagged = assess_change(ctx, change_id=emergency)
    assert flagged.assessment is not None and "flagged for its review" in flagged.assessment.route_reason


def test_a_freeze_in_force_stops_implementation_and_the_gate(
    make_ctx: Callable[..., Context], clock: FakeClock
) -> None:
    ctx = make_ctx()
    cid = str(
        file_change(
            ctx,
            type="normal",
            category="deployment",
            title="Deploy web",
            requested_by="dev",
            impact="low",
            affected_services=["web"],
            rollback_plan={"steps": ["undo"]},
        ).change_id
    )
    assess_change(ctx, change_id=cid)
    approve_change(ctx, change_id=cid, approver="tech-lead", reason="ok")
    assert gate(ctx, service="web")["allowed"] is True
    add_window(
        ctx,
        kind="freeze",
        start=(clock() - timedelta(hours=1)).isoformat(),
        end=(clock() + timedelta(hours=1)).isoformat(),
        scope="service:web",
        reason="Incident in progress",
        actor="change-manager",
    )
    verdict = gate(ctx, service="web")
    assert verdict["allowed"] is False
    assert any(
        "may not be carried out now: freeze" in r and "Incident in progress" in r for r in verdict["reasons"]
    )
    with pytest.raises(Refused) as stopped:
        implement_change(ctx, change_id=cid, actor="dev")
    assert "may not be carried out now" in str(stopped.value)
    clock.advance(hours=2)  # the freeze is over
    assert gate(ctx, service="web")["allowed"] is True


def test_only_change_managers_manage_windows(make_ctx: Callable[..., Context], clock: FakeClock) -> None:
    from cortex_change.domain.errors import Forbidden

    ctx = make_ctx()
    start, end = (clock() + timedelta(days=1)).isoformat(), (clock() + timedelta(days=2)).isoformat()
    with pytest.raises(Forbidden) as refused:
        add_window(ctx, kind="freeze", start=start, end=end, scope="all", reason="x", actor="dev")
    assert "dev may not manage freeze and maintenance windows" in str(refused.value)
    assert list_windows(ctx) == []


def test_overlapping_planned_changes_on_a_service_are_named_in_the_assessment(
    make_ctx: Callable[..., Context], clock: FakeClock
) -> None:
    from cortex_change.services.changes import schedule_change

    ctx = make_ctx()
    first = _planned(ctx, clock, 5, affected_services=["web"])
    assess_change(ctx, change_id=first)
    second = _planned(ctx, clock, 5, affected_services=["WEB", "db"], requested_by="ops")
    assessed = assess_change(ctx, change_id=second)
    assert assessed.assessment is not None
    assert f"conflicts: {first} (pending_approval) also changes web from " in assessed.assessment.route_reason
    later = clock() + timedelta(days=9)
    moved = schedule_change(
        ctx,
        change_id=second,
        actor="ops",
        start=later.isoformat(),
        end=(later + timedelta(hours=1)).isoformat(),
    )
    assert moved.assessment is not None and "conflicts" not in moved.assessment.route_reason


def test_a_tier_0_change_outside_its_maintenance_windows_goes_one_route_higher(
    make_ctx: Callable[..., Context], clock: FakeClock, tmp_path: Path
) -> None:
    from cortex_change.services.cmdb import import_file

    ctx = make_ctx()
    cmdb_file = tmp_path / "cmdb.json"
    cmdb_file.write_text(json.dumps({"cis": [{"name": "payments", "type": "service", "tier": 0}]}))
    import_file(ctx, path=str(cmdb_file), actor="ops")
    inside = clock() + timedelta(days=3)
    add_window(
        ctx,
        kind="maintenance",
        start=inside.isoformat(),
        end=(inside + timedelta(hours=6)).isoformat(),
        scope="environment:production",
        reason="Sunday night",
        actor="change-manager",
    )
    outside = assess_change(ctx, change_id=_planned(ctx, clock, 5, affected_services=["payments"]))
    assert outside.assessment is not None and outside.assessment.route.value == "cab+ciso+cto"
    assert "touches tier 0 outside its maintenance windows" in outside.assessment.route_reason
    within = assess_change(ctx, change_id=_planned(ctx, clock, 3, affected_services=["payments"]))
    assert within.assessment is not None and within.assessment.route.value == "cab"
    assert "maintenance" not in within.assessment.route_reason


def test_overlapping_freezes_may_not_ask_for_different_things(
    make_ctx: Callable[..., Context], clock: FakeClock
) -> None:
    from cortex_change.domain.errors import ValidationError

    ctx = make_ctx()
    day = clock() + timedelta(days=10)
    add_window(
        ctx,
        kind="freeze",
        start=day.isoformat(),
        end=(day + timedelta(days=5)).isoformat(),
        scope="all",
        reason="Year end",
        actor="change-manager",
        policy="cab",
    )
    with pytest.raises(ValidationError) as refused:
        add_window(
            ctx,
            kind="freeze",
            start=(day + timedelta(days=1)).isoformat(),
            end=(day + timedelta(days=2)).isoformat(),
            scope="all",
            reason="Xmas",
            actor="change-manager",
            policy="refuse",
        )
    assert "contradicts freeze" in str(refused.value) and "whose policy is 'cab'" in str(refused.value)
    assert len(list_windows(ctx)) == 1  # nothing written


def test_a_recurring_freeze_stops_the_gate_only_during_its_occurrences(
    make_ctx: Callable[..., Context], clock: FakeClock
) -> None:
    ctx = make_ctx()
    cid = str(
        file_change(
            ctx,
            type="normal",
            category="deployment",
            title="Deploy web",
            requested_by="dev",
            impact="low",
            affected_services=["web"],
            rollback_plan={"steps": ["undo"]},
        ).change_id
    )
    assess_change(ctx, change_id=cid)
    approve_change(ctx, change_id=cid, approver="tech-lead", reason="ok")
    hour = clock().hour
    add_window(
        ctx,
        kind="freeze",
        start=None,
        end=None,
        scope="service:web",
        reason="Nightly batch",
        actor="change-manager",
        cron=f"0 {(hour + 1) % 24} * * *",
        duration="1h",
    )
    assert gate(ctx, service="web")["allowed"] is True  # the next occurrence starts within the hour
    clock.advance(hours=1)
    assert gate(ctx, service="web")["allowed"] is False
    clock.advance(hours=1)
    assert gate(ctx, service="web")["allowed"] is True


def test_windows_of_cortex_change_toml_count_like_added_ones(
    make_ctx: Callable[..., Context], clock: FakeClock, tmp_path: Path
) -> None:
    from cortex_change.domain.errors import ValidationError

    start = clock() + timedelta(days=1)
    (tmp_path / "cortex-change.toml").write_text(
        "[windows.year-end]\n"
        'kind = "freeze"\n'
        f'start = "{start.isoformat()}"\n'
        f'end = "{(start + timedelta(days=3)).isoformat()}"\n'
        'scope = "environment:production"\n'
        'reason = "Year end (from the file)"\n'
    )
    ctx = make_ctx()
    listed = list_windows(ctx)
    assert [(w["window_id"], w["created_by"]) for w in listed] == [("toml:year-end", "cortex-change.toml")]
    during = _planned(ctx, clock, 2)
    with pytest.raises(Refused) as refused:
        assess_change(ctx, change_id=during)
    assert "freeze toml:year-end" in str(refused.value)
    with pytest.raises(ValidationError) as kept:
        remove_window(ctx, window_id="toml:year-end", actor="change-manager")
    assert "defined in cortex-change.toml" in str(kept.value)
    (tmp_path / "cortex-change.toml").write_text('[windows.bad]\nkind = "thaw"\nreason = "x"\n')
    with pytest.raises(ValidationError) as bad:
        list_windows(make_ctx())
    assert str(bad.value).startswith("windows.bad KIND: 'thaw' is not allowed")
