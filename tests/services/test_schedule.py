"""Planned windows and the deploy gate on both backends (services/changes.schedule_change,
services/gate.py, docs/schedule.md): filing and updating a window, rescheduling an approved change
(approvals discarded, assessed again), implementation refused outside the window, and what the
gate answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cortex_change.domain.errors import Forbidden, NotFound, Refused, ValidationError
from cortex_change.domain.lifecycle import State
from cortex_change.domain.model import Change
from cortex_change.services import implementation
from cortex_change.services.changes import (
    approve_change,
    assess_change,
    schedule_change,
    update_change,
)
from cortex_change.services.context import Context
from cortex_change.services.gate import gate
from support import FakeClock, file_change, query

# The clock fixture starts at 2026-01-15T09:00:00Z.
OPENS, CLOSES = "2026-01-15T10:00:00Z", "2026-01-15T12:00:00Z"
LATER_OPENS, LATER_CLOSES = "2026-01-16T10:00:00Z", "2026-01-16T12:00:00Z"
# configuration, impact low, one service: 35, medium risk -> technical lead.
TECH_LEAD = {"category": "configuration", "impact": "low"}
# documentation, impact low, one service: 25, low risk -> auto-approved below 30.
AUTO = {"category": "documentation", "impact": "low"}
AUTO_SETTINGS = {"AUTO_APPROVE_THRESHOLD": "30"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def filed(ctx: Context, *, window: tuple[str, str] | None = (OPENS, CLOSES), **fields: Any) -> Change:
    base: dict[str, Any] = {
        "type": "normal",
        "title": "Raise the pool size",
        "requested_by": "alice",
        "affected_services": ["web"],
        "environment": "production",
        **TECH_LEAD,
    }
    if window is not None:
        base["planned_start"], base["planned_end"] = window
    return file_change(ctx, **{**base, **fields})


def approved(ctx: Context, **fields: Any) -> Change:
    """Filed, assessed (technical lead) and approved by tech-lead."""
    change = filed(ctx, **fields)
    assess_change(ctx, change_id=change.change_id)
    done, _ = approve_change(ctx, change_id=change.change_id, approver="tech-lead", reason="ok")
    assert done.state is State.APPROVED
    return done


def stored(store_url: str, change_id: str) -> tuple[int, dict[str, Any]]:
    rows = query(store_url, "SELECT version, doc FROM changes WHERE change_id = ?", (change_id,))
    return int(rows[0][0]), json.loads(rows[0][1])


def actions(store_url: str, change_id: str) -> list[str]:
    rows = query(store_url, "SELECT action FROM audit_events WHERE change_id = ? ORDER BY seq", (change_id,))
    return [r[0] for r in rows]


def last_event(store_url: str, change_id: str) -> tuple[str, str, dict[str, Any]]:
    rows = query(
        store_url,
        "SELECT action, actor, details FROM audit_events WHERE change_id = ? ORDER BY seq DESC LIMIT 1",
        (change_id,),
    )
    return rows[0][0], rows[0][1], json.loads(rows[0][2])


# --- filing and updating a window ----------------------------------------------------------------


def test_a_change_filed_with_a_window_keeps_it_in_utc(
    make_ctx: Callable[..., Context], store_url: str
) -> None:
    ctx = make_ctx()
    change = filed(ctx, window=("2026-01-15T11:00:00+01:00", "2026-01-15T07:00:00-05:00"))
    assert (change.planned_start, change.planned_end) == (at(OPENS), at(CLOSES))
    _, doc = stored(store_url, change.change_id)
    assert (doc["planned_start"], doc["planned_end"]) == (OPENS, CLOSES)
    assert filed(ctx, window=None).planned_start is None


@pytest.mark.parametrize(
    ("window", "field"),
    [
        ((OPENS, None), "planned_end"),
        ((None, CLOSES), "planned_start"),
        ((CLOSES, OPENS), "planned_end"),
        ((OPENS, "2026-02-15T10:00:01Z"), "planned_end"),
    ],
)
def test_a_bad_window_files_nothing(
    make_ctx: Callable[..., Context], store_url: str, window: tuple[str | None, str | None], field: str
) -> None:
    ctx = make_ctx()
    ends = {k: v for k, v in zip(("planned_start", "planned_end"), window, strict=True) if v is not None}
    with pytest.raises(ValidationError) as refused:
        filed(ctx, window=None, **ends)
    assert str(refused.value).startswith(f"{field}: ")
    assert query(store_url, "SELECT count(*) FROM changes")[0][0] == 0


def test_the_window_is_updated_before_approval(make_ctx: Callable[..., Context], store_url: str) -> None:
    ctx = make_ctx()
    change = filed(ctx)
    fields = {"planned_start": LATER_OPENS, "planned_end": LATER_CLOSES}
    updated = update_change(ctx, change_id=change.change_id, actor="alice", fields=fields)
    assert updated.state is State.PENDING_ASSESSMENT
    assert (updated.planned_start, updated.planned_end) == (at(LATER_OPENS), at(LATER_CLOSES))
    action, _, details = last_event(store_url, change.change_id)
    assert action == "updated"
    assert details["changes"]["planned_start"] == {"old": OPENS, "new": LATER_OPENS}
    cleared = update_change(
        ctx, change_id=change.change_id, actor="alice", fields={"planned_start": None, "planned_end": None}
    )
    assert cleared.planned_start is None and cleared.planned_end is None
    with pytest.raises(ValidationError, match="together"):
        update_change(ctx, change_id=change.change_id, actor="alice", fields={"planned_start": OPENS})


def test_the_window_of_an_approved_change_is_not_updated_but_rescheduled(
    make_ctx: Callable[..., Context], store_url: str
) -> None:
    ctx = make_ctx()
    change = approved(ctx)
    before = stored(store_url, change.change_id)
    fields = {"planned_start": LATER_OPENS, "planned_end": LATER_CLOSES}
    with pytest.raises(Refused):
        update_change(ctx, change_id=change.change_id, actor="alice", fields=fields)
    assert stored(store_url, change.change_id) == before


# --- schedule_change -----------------------------------------------------------------------------


def test_scheduling_a_change_not_yet_assessed_is_an_update(
    make_ctx: Callable[..., Context], store_url: str
) -> None:
    ctx = make_ctx()
    change = filed(ctx, window=None)
    done = schedule_change(
        ctx, change_id=change.change_id, actor="alice", start="2026-01-15T11:00:00+01:00", end=CLOSES
    )
    assert done.state is State.PENDING_ASSESSMENT
    assert (done.planned_start, done.planned_end) == (at(OPENS), at(CLOSES))
    assert actions(store_url, change.change_id) == ["created", "updated"]
    _, doc = stored(store_url, change.change_id)
    assert (doc["planned_start"], doc["planned_end"]) == (OPENS, CLOSES)


def test_scheduling_an_assessed_change_assesses_it_again(
    make_ctx: Callable[..., Context], clock: FakeClock, store_url: str
) -> None:
    ctx = make_ctx()
    change = filed(ctx)
    assess_change(ctx, change_id=change.change_id)
    clock.advance(minutes=5)
    done = schedule_change(
        ctx, change_id=change.change_id, actor="alice", start=LATER_OPENS, end=LATER_CLOSES
    )
    assert done.state is State.PENDING_APPROVAL
    assert done.assessment is not None and done.assessment.assessed_at == clock()
    assert actions(store_url, change.change_id)[-3:] == ["updated", "assessed", "approval_requested"]
    assert "rescheduled" not in actions(store_url, change.change_id)


def test_rescheduling_an_approved_change_discards_its_approvals_and_asks_again(
    make_ctx: Callable[..., Context], clock: FakeClock, store_url: str
) -> None:
    ctx = make_ctx()
    change = approved(ctx)
    clock.advance(minutes=10)
    done = schedule_change(
        ctx, change_id=change.change_id, actor="alice", start=LATER_OPENS, end=LATER_CLOSES
    )
    assert done.state is State.PENDING_APPROVAL
    assert (done.planned_start, done.planned_end) == (at(LATER_OPENS), at(LATER_CLOSES))
    assert done.active_approvals == []
    assert [(a.approver, a.active) for a in done.approvals] == [("tech-lead", False)]
    assert done.assessment is not None and done.assessment.assessed_at == clock()
    assert actions(store_url, change.change_id)[-4:] == [
        "rescheduled",
        "approvals_discarded",
        "assessed",
        "approval_requested",
    ]
    rows = query(
        store_url,
        "SELECT actor, details FROM audit_events WHERE change_id = ? AND action = 'rescheduled'",
        (change.change_id,),
    )
    assert [(r[0], json.loads(r[1])) for r in rows] == [
        (
            "alice",
            {
                "old": {"planned_start": OPENS, "planned_end": CLOSES},
                "new": {"planned_start": LATER_OPENS, "planned_end": LATER_CLOSES},
            },
        )
    ]
    # The gate no longer counts it: it is not approved for any window.
    assert gate(ctx, service="web")["allowed"] is False
    again, _ = approve_change(ctx, change_id=change.change_id, approver="tech-lead", reason="new window ok")
    assert again.state is State.APPROVED


def test_a_change_manager_may_reschedule_too(make_ctx: Callable[..., Context]) -> None:
    ctx = make_ctx()
    change = approved(ctx)
    done = schedule_change(
        ctx, change_id=change.change_id, actor="change-manager", start=LATER_OPENS, end=LATER_CLOSES
    )
    assert done.state is State.PENDING_APPROVAL


def test_an_auto_approved_change_is_approved_again_at_once(
    make_ctx: Callable[..., Context], store_url: str
) -> None:
    ctx = make_ctx(**AUTO_SETTINGS)
    change = filed(ctx, **AUTO)
    first = assess_change(ctx, change_id=change.change_id)
    assert first.state is State.APPROVED, first.assessment
    done = schedule_change(
        ctx, change_id=change.change_id, actor="alice", start=LATER_OPENS, end=LATER_CLOSES
    )
    assert done.state is State.APPROVED
    assert (done.planned_start, done.planned_end) == (at(LATER_OPENS), at(LATER_CLOSES))
    assert len(done.active_approvals) == 1
    assert "rescheduled" in actions(store_url, change.change_id)


def test_rescheduling_to_the_same_window_writes_nothing(
    make_ctx: Callable[..., Context], store_url: str
) -> None:
    ctx = make_ctx()
    change = approved(ctx)
    before = stored(store_url, change.change_id)
    with pytest.raises(ValidationError, match="already planned for that window"):
        schedule_change(
            ctx, change_id=change.change_id, actor="alice", start="2026-01-15T11:00:00+01:00", end=CLOSES
        )
    assert stored(store_url, change.change_id) == before


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("soon", CLOSES, "START"),
        (OPENS, "later", "END"),
        (CLOSES, OPENS, "planned_end"),
        (OPENS, OPENS, "planned_end"),
    ],
)
def test_a_bad_window_schedules_nothing(
    make_ctx: Callable[..., Context], store_url: str, start: str, end: str, field: str
) -> None:
    ctx = make_ctx()
    change = approved(ctx)
    before = stored(store_url, change.change_id)
    with pytest.raises(ValidationError) as refused:
        schedule_change(ctx, change_id=change.change_id, actor="alice", start=start, end=end)
    assert str(refused.value).startswith(f"{field}: ")
    assert stored(store_url, change.change_id) == before


@pytest.mark.parametrize("state", ["approved", "pending_approval"])
def test_someone_neither_requester_nor_change_manager_may_not_schedule(
    make_ctx: Callable[..., Context], store_url: str, state: str
) -> None:
    ctx = make_ctx()
    change = approved(ctx) if state == "approved" else filed(ctx)
    before = stored(store_url, change.change_id)
    with pytest.raises(Forbidden) as refused:
        schedule_change(ctx, change_id=change.change_id, actor="bob", start=LATER_OPENS, end=LATER_CLOSES)
    assert "bob may not" in str(refused.value) and "alice" in str(refused.value)
    assert stored(store_url, change.change_id) == before
    action, actor, _ = last_event(store_url, change.change_id)
    assert (action, actor) == ("refused", "bob")


@pytest.mark.parametrize("state", ["implementing", "closed"])
def test_a_change_past_approval_is_not_rescheduled(
    make_ctx: Callable[..., Context], clock: FakeClock, store_url: str, state: str
) -> None:
    ctx = make_ctx()
    change = approved(ctx)
    clock.set(at(OPENS))
    implementation.begin(implementation.Run(ctx, change.change_id, "cli:alice", {}, None), "alice")
    if state == "closed":
        from cortex_change.services.changes import close_change

        clock.advance(minutes=1)
        close_change(ctx, change_id=change.change_id, status="failed", notes="", actor="alice")
    before = stored(store_url, change.change_id)
    with pytest.raises(Refused):
        schedule_change(ctx, change_id=change.change_id, actor="alice", start=LATER_OPENS, end=LATER_CLOSES)
    assert stored(store_url, change.change_id) == before


# --- implementation within the window ------------------------------------------------------------


@pytest.mark.parametrize(
    "now", ["2026-01-15T09:59:59Z", "2026-01-15T12:00:00Z", "2026-01-15T13:00:00Z", "2026-01-14T11:00:00Z"]
)
def test_implementation_outside_the_window_is_refused_writing_only_the_refusal(
    make_ctx: Callable[..., Context], clock: FakeClock, store_url: str, now: str
) -> None:
    ctx = make_ctx()
    change = approved(ctx)
    before = stored(store_url, change.change_id)
    events = len(actions(store_url, change.change_id))
    clock.set(at(now))
    with pytest.raises(Refused) as refused:
        implementation.implement_change(ctx, change_id=change.change_id, actor="alice")
    message = str(refused.value)
    assert OPENS in message and CLOSES in message and "reschedule" in message
    assert stored(store_url, change.change_id) == before
    assert len(actions(store_url, change.change_id)) == events + 1
    assert last_event(store_url, change.change_id) == ("refused", "alice", {"error": message})
    assert query(store_url, "SELECT count(*) FROM leases")[0][0] == 0


@pytest.mark.parametrize("now", [OPENS, "2026-01-15T11:00:00Z", "2026-01-15T11:59:59Z"])
def test_implementation_within_the_window_goes_ahead(
    make_ctx: Callable[..., Context], clock: FakeClock, now: str
) -> None:
    ctx = make_ctx()
    change = approved(ctx)
    clock.set(at(now))
    done = implementation.implement_change(ctx, change_id=change.change_id, actor="alice")
    assert done.state in (State.IMPLEMENTED, State.CLOSED)
    assert done.timeline.implementation_started_at == at(now)


def test_a_change_without_a_window_is_implemented_at_any_time(
    make_ctx: Callable[..., Context], clock: FakeClock
) -> None:
    ctx = make_ctx()
    change = approved(ctx, window=None)
    clock.advance(days=200)
    done = implementation.implement_change(ctx, change_id=change.change_id, actor="alice")
    assert done.state in (State.IMPLEMENTED, State.CLOSED)


def test_a_change_refused_for_its_window_is_implemented_after_rescheduling(
    make_ctx: Callable[..., Context], clock: FakeClock
) -> None:
    ctx = make_ctx(**AUTO_SETTINGS)
    change = filed(ctx, **AUTO)
    assess_change(ctx, change_id=change.change_id)
    clock.set(at("2026-01-15T13:00:00Z"))
    with pytest.raises(Refused):
        implementation.implement_change(ctx, change_id=change.change_id, actor="alice")
    schedule_change(
        ctx,
        change_id=change.change_id,
        actor="alice",
        start="2026-01-15T13:00:00Z",
        end="2026-01-15T14:00:00Z",
    )
    done = implementation.implement_change(ctx, change_id=change.change_id, actor="alice")
    assert done.state in (State.IMPLEMENTED, State.CLOSED)


# --- the gate ------------------------------------------------------------------------------------


def test_no_change_for_the_service_refuses(make_ctx: Callable[..., Context], clock: FakeClock) -> None:
    ctx = make_ctx()
    filed(ctx)  # pending assessment: not a candidate
    verdict = gate(ctx, service="web", environment="production")
    assert verdict == {
        "allowed": False,
        "change_id": None,
        "reasons": ["no approved change names the service 'web' in production"],
        "at": "2026-01-15T09:00:00Z",
    }
    assert gate(ctx, service="api")["reasons"] == ["no approved change names the service 'api'"]


def test_an_approved_change_within_its_window_allows_naming_it(
    make_ctx: Callable[..., Context], clock: FakeClock
) -> None:
    ctx = make_ctx()
    change = approved(ctx)
    clock.set(at("2026-01-15T10:30:00Z"))
    expected = {"allowed": True, "change_id": change.change_id, "reasons": [], "at": "2026-01-15T10:30:00Z"}
    assert gate(ctx, service="web", environment="production") == expected
    assert gate(ctx, service="web") == expected  # no environment asked: any
    assert gate(ctx, service="web", change_id=change.change_id) == expected


def test_a_change_for_no_environment_allows_every_environment(
    make_ctx: Callable[..., Context], clock: FakeClock
) -> None:
    ctx = make_ctx()
    change = approved(ctx, environment=None)
    clock.set(at(OPENS))
    for environment in ("production", "staging", None):
        assert gate(ctx, service="web", environment=environment)["change_id"] == change.change_id


def test_another_environment_refuses(make_ctx: Callable[..., Context], clock: FakeClock) -> None:
    ctx = make_ctx()
    change = approved(ctx)
    clock.set(at(OPENS))
    verdict = gate(ctx, service="web", environment="staging")
    assert verdict["allowed"] is False and verdict["change_id"] is None
    assert verdict["reasons"] == [f"{change.change_id} is for the environment 'production', not 'staging'"]


@pytest.mark.parametrize("now", ["2026-01-15T09:59:59Z", CLOSES, "2026-01-20T00:00:00Z"])
def test_outside_the_window_refuses(make_ctx: Callable[..., Context], clock: FakeClock, now: str) -> None:
    ctx = make_ctx()
    change = approved(ctx)
    clock.set(at(now))
    verdict = gate(ctx, service="web", environment="production")
    assert verdict["allowed"] is False
    assert verdict["reasons"] == [f"{change.change_id} is planned for {OPENS} to {CLOSES}, not now"]
    assert verdict["at"] == now


def test_asking_about_a_change_that_names_another_service_refuses(
    make_ctx: Callable[..., Context], clock: FakeClock
) -> None:
    ctx = make_ctx()
    change = approved(ctx)
    clock.set(at(OPENS))
    verdict = gate(ctx, service="api", environment="production", change_id=change.change_id)
    assert verdict["allowed"] is False
    assert verdict["reasons"] == [f"{change.change_id} does not name the service 'api' (its services: web)"]


def test_asking_about_a_change_not_yet_approved_gives_every_reason(
    make_ctx: Callable[..., Context], clock: FakeClock
) -> None:
    ctx = make_ctx()
    change = filed(ctx)
    clock.set(at(CLOSES))
    verdict = gate(ctx, service="api", environment="staging", change_id=change.change_id)
    cid = change.change_id
    assert verdict["reasons"] == [
        f"{cid} does not name the service 'api' (its services: web)",
        f"{cid} is pending_assessment, not approved",
        f"{cid} is for the environment 'production', not 'staging'",
        f"{cid} is planned for {OPENS} to {CLOSES}, not now",
    ]


def test_asking_about_an_unknown_change_is_not_found(make_ctx: Callable[..., Context]) -> None:
    ctx = make_ctx()
    with pytest.raises(NotFound):
        gate(ctx, service="web", change_id="RFC-20260101000000-abcdef")


@pytest.mark.parametrize(
    "ask", [{"service": ""}, {"service": "web", "environment": ""}, {"service": "web", "change_id": "RFC-1"}]
)
def test_bad_questions_are_bad_input(make_ctx: Callable[..., Context], ask: dict[str, str]) -> None:
    ctx = make_ctx()
    with pytest.raises(ValidationError):
        gate(ctx, **ask)


def test_a_change_being_implemented_still_allows(make_ctx: Callable[..., Context], clock: FakeClock) -> None:
    ctx = make_ctx()
    change = approved(ctx)
    clock.set(at(OPENS))
    started = implementation.begin(implementation.Run(ctx, change.change_id, "cli:alice", {}, None), "alice")
    assert started.state is State.IMPLEMENTING
    clock.advance(minutes=30)
    assert gate(ctx, service="web", environment="production")["change_id"] == change.change_id


def test_of_two_candidates_the_one_in_its_window_allows(
    make_ctx: Callable[..., Context], clock: FakeClock
) -> None:
    ctx = make_ctx()
    fits = approved(ctx, window=(OPENS, CLOSES))
    clock.advance(seconds=1)
    later = approved(ctx, window=(LATER_OPENS, LATER_CLOSES))  # newer: asked first
    clock.set(at("2026-01-15T11:00:00Z"))
    verdict = gate(ctx, service="web", environment="production")
    assert verdict["allowed"] is True and verdict["change_id"] == fits.change_id
    clock.set(at("2026-01-16T11:00:00Z"))
    assert gate(ctx, service="web", environment="production")["change_id"] == later.change_id
    clock.set(at("2026-01-15T13:00:00Z"))
    refused = gate(ctx, service="web", environment="production")
    assert refused["allowed"] is False
    assert refused["reasons"] == [
        f"{later.change_id} is planned for {LATER_OPENS} to {LATER_CLOSES}, not now",
        f"{fits.change_id} is planned for {OPENS} to {CLOSES}, not now",
    ]


def test_the_gate_writes_nothing(make_ctx: Callable[..., Context], clock: FakeClock, store_url: str) -> None:
    ctx = make_ctx()
    change = approved(ctx)
    before = stored(store_url, change.change_id), query(store_url, "SELECT count(*) FROM audit_events")
    for now in (OPENS, CLOSES):
        clock.set(at(now))
        gate(ctx, service="web", environment="production")
        gate(ctx, service="web", environment="staging", change_id=change.change_id)
    assert (
        stored(store_url, change.change_id),
        query(store_url, "SELECT count(*) FROM audit_events"),
    ) == before


def test_the_gate_reads_times_to_the_second(make_ctx: Callable[..., Context], clock: FakeClock) -> None:
    ctx = make_ctx()
    approved(ctx)
    clock.set(at(CLOSES) - timedelta(seconds=1))
    assert gate(ctx, service="web")["allowed"] is True
    clock.set(datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC))
    assert gate(ctx, service="web")["allowed"] is False
