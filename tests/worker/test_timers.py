"""Timers: approval timeouts, emergency review reminders, delayed implementation, the CAB agenda.

Service level, on SQLite and PostgreSQL (`store_url`), with a clock the test moves: nothing sleeps.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from worker_support import (
    actions,
    emergency,
    file_for_approval,
    outbox_rows,
    webhook_requests,
)

from cortex_change.services import changes, queries, worker
from cortex_change.services.cab import next_meeting
from cortex_change.services.context import Context
from cortex_change.services.implementation import implement_change
from cortex_change.store import timers
from support import HttpReceiver, file_change, query

TECH_LEAD_TIMEOUT = 14400  # TECH_LEAD_APPROVAL_TIMEOUT's default
CAB = ["ops-lead", "product-lead", "security-lead", "tech-lead"]  # CAB_MEMBERS' default, sorted


def _fired(ctx: Context, name: str = "w1") -> list[str]:
    """The kinds of the timers one pass fired (ids are kind:subject:due)."""
    return [t.split(":", 1)[0] for t in worker.tick(ctx, name).fired]


def _state(ctx: Context, change_id: str) -> str:
    return str(queries.get_change(ctx, change_id=change_id)["state"])


def _details(store_url: str, change_id: str, action: str) -> list[tuple[str, dict[str, Any]]]:
    rows = query(
        store_url,
        "SELECT actor, details FROM audit_events WHERE change_id=? AND action=? ORDER BY seq",
        (change_id, action),
    )
    return [(str(actor), json.loads(details)) for actor, details in rows]


# ----------------------------------------------------------------------------- approval timeouts


def test_approval_timeout_escalates_and_leaves_the_state(
    make_ctx: Callable[..., Context], clock: Any, receiver: HttpReceiver, store_url: str
) -> None:
    ctx = make_ctx(WEBHOOK_URL=receiver.url())
    change_id = file_for_approval(ctx)
    clock.advance(seconds=TECH_LEAD_TIMEOUT - 1)
    assert _fired(ctx) == []
    assert "approval_escalated" not in actions(store_url, change_id)

    clock.advance(seconds=2)
    assert _fired(ctx) == ["approval_timeout"]
    assert actions(store_url, change_id)[-1] == "approval_escalated"
    ((actor, details),) = _details(store_url, change_id, "approval_escalated")
    assert actor == "change-manager"
    assert details["config_key"] == "TECH_LEAD_APPROVAL_TIMEOUT"
    assert details["timeout_seconds"] == TECH_LEAD_TIMEOUT
    assert _state(ctx, change_id) == "pending_approval"
    # The escalation is announced to the CAB and the approvers (in the same pass).
    (sent,) = webhook_requests(receiver, "approval_timeout")
    assert sent.json()["change_id"] == change_id
    assert sent.json()["recipients"] == [*CAB, "coordinator-master"]

    clock.advance(days=2)
    assert _fired(ctx) == []  # fired once
    assert len(_details(store_url, change_id, "approval_escalated")) == 1


def test_approval_timeout_rejects_with_auto_reject_on_timeout(
    make_ctx: Callable[..., Context], clock: Any, store_url: str
) -> None:
    ctx = make_ctx(AUTO_REJECT_ON_TIMEOUT="true")
    change_id = file_for_approval(ctx)
    clock.advance(seconds=TECH_LEAD_TIMEOUT + 1)
    assert _fired(ctx) == ["approval_timeout"]
    assert actions(store_url, change_id)[-2:] == ["approval_escalated", "rejected"]
    doc = queries.get_change(ctx, change_id=change_id)
    assert doc["state"] == "rejected"
    (vote,) = doc["approvals"]
    assert (vote["approver"], vote["decision"]) == ("change-manager", "rejected")
    assert "TECH_LEAD_APPROVAL_TIMEOUT" in vote["reason"]
    ((actor, _),) = _details(store_url, change_id, "rejected")
    assert actor == "change-manager"


def test_cab_routes_wait_for_cab_approval_timeout(
    make_ctx: Callable[..., Context], clock: Any, store_url: str
) -> None:
    ctx = make_ctx(TECH_LEAD_APPROVAL_TIMEOUT="3600", CAB_APPROVAL_TIMEOUT="7200")
    lead = file_for_approval(ctx)
    big = file_change(
        ctx,
        type="normal",
        category="deployment",
        title="Migrate the database",
        requested_by="alice",
        impact="critical",
        affected_services=["api", "db"],
    ).change_id
    assert changes.assess_change(ctx, change_id=big).state.value == "pending_cab"

    clock.advance(seconds=3601)
    assert _fired(ctx) == ["approval_timeout"]
    assert "approval_escalated" in actions(store_url, lead)
    assert "approval_escalated" not in actions(store_url, big)
    clock.advance(seconds=3600)
    assert _fired(ctx) == ["approval_timeout"]
    ((_, details),) = _details(store_url, big, "approval_escalated")
    assert (details["config_key"], details["timeout_seconds"]) == ("CAB_APPROVAL_TIMEOUT", 7200)
    assert _state(ctx, big) == "pending_cab"


@pytest.mark.parametrize("decision", ["approve", "reject", "cancel"])
def test_a_decision_before_the_timeout_cancels_the_timer(
    make_ctx: Callable[..., Context], clock: Any, store_url: str, decision: str
) -> None:
    ctx = make_ctx(AUTO_REJECT_ON_TIMEOUT="true")
    change_id = file_for_approval(ctx)
    clock.advance(seconds=TECH_LEAD_TIMEOUT // 2)
    if decision == "approve":
        changes.approve_change(ctx, change_id=change_id, approver="tech-lead", reason="fine")
    elif decision == "reject":
        changes.reject_change(ctx, change_id=change_id, rejector="tech-lead", reason="no")
    else:
        changes.cancel_change(ctx, change_id=change_id, actor="alice", reason="not needed")
    state = _state(ctx, change_id)
    with ctx.db.read() as tx:
        assert timers.pending(tx, change_id) == []

    clock.advance(seconds=TECH_LEAD_TIMEOUT)
    assert _fired(ctx) == []
    assert "approval_escalated" not in actions(store_url, change_id)
    assert _state(ctx, change_id) == state


def test_a_renewed_approval_request_restarts_the_timeout_once(
    make_ctx: Callable[..., Context], clock: Any, store_url: str
) -> None:
    ctx = make_ctx()
    change_id = file_for_approval(ctx)
    clock.advance(hours=3)
    changes.update_change(ctx, change_id=change_id, actor="alice", fields={"description": "more detail"})
    assert actions(store_url, change_id)[-1] == "approval_requested"  # asked again, approvals reset

    clock.advance(seconds=3600 + 1)  # 4 h after the first request, 1 h after the second
    worker.tick(ctx, "w1")
    clock.advance(hours=4)  # past the timeout of the second request
    worker.tick(ctx, "w1")
    escalations = query(
        store_url,
        "SELECT at FROM audit_events WHERE change_id=? AND action='approval_escalated'",
        (change_id,),
    )
    assert len(escalations) == 1, escalations


# ----------------------------------------------------------------------------- emergency review SLA


def test_emergency_review_due_at_three_quarters_then_overdue(
    make_ctx: Callable[..., Context], clock: Any, receiver: HttpReceiver, store_url: str
) -> None:
    ctx = make_ctx(EMERGENCY_CAB_REVIEW_SLA="8", AUTO_IMPLEMENT="false", WEBHOOK_URL=receiver.url())
    approved_at = clock()
    change_id = emergency(ctx)
    assert _state(ctx, change_id) == "approved"
    due = approved_at + timedelta(hours=8)

    clock.set(approved_at + timedelta(hours=6) - timedelta(seconds=1))
    assert _fired(ctx) == []
    clock.advance(seconds=1)  # 75 % of 8 h
    assert _fired(ctx) == ["review_due"]
    assert actions(store_url, change_id)[-1] == "review_due"
    ((actor, details),) = _details(store_url, change_id, "review_due")
    assert actor == "change-manager"
    assert details["due_at"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")

    clock.set(due - timedelta(seconds=1))
    assert _fired(ctx) == []
    clock.advance(seconds=1)
    assert _fired(ctx) == ["review_overdue"]
    assert actions(store_url, change_id)[-1] == "review_overdue"
    clock.advance(days=3)
    assert _fired(ctx) == []
    # Each went once to the CAB and the emergency CAB.
    for kind in ("review_due", "review_overdue"):
        (sent,) = webhook_requests(receiver, kind)
        assert sent.json()["recipients"] == [*CAB, "security-oncall", "tech-lead-oncall"]


def test_no_review_reminder_once_the_review_is_recorded(
    make_ctx: Callable[..., Context], clock: Any, store_url: str
) -> None:
    ctx = make_ctx(EMERGENCY_CAB_REVIEW_SLA="8", AUTO_IMPLEMENT="false")
    change_id = emergency(ctx)
    clock.advance(hours=1)
    changes.review_change(
        ctx, change_id=change_id, reviewer="security-lead", outcome="accepted", notes="justified"
    )
    clock.advance(hours=12)
    assert _fired(ctx) == []
    assert not {"review_due", "review_overdue"} & set(actions(store_url, change_id))


# ----------------------------------------------------------------------------- once, and across restarts


def test_a_timer_fires_once_whichever_worker_claims_it(
    make_ctx: Callable[..., Context], clock: Any, store_url: str
) -> None:
    one, two = make_ctx(), make_ctx()  # two worker processes on one store
    change_id = file_for_approval(one)
    clock.advance(seconds=TECH_LEAD_TIMEOUT + 1)
    assert _fired(one, "w1") == ["approval_timeout"]
    assert _fired(two, "w2") == []
    assert len(_details(store_url, change_id, "approval_escalated")) == 1


def test_concurrent_worker_processes_fire_each_timer_once(
    make_ctx: Callable[..., Context], clock: Any, store_url: str, quiet_cli: Any
) -> None:
    ctx = make_ctx()
    clock.advance(hours=-5)  # filed 5 h ago: their 4 h approval timeouts are due in real time
    ids = [file_for_approval(ctx, title=f"Deploy build {n}") for n in range(25)]
    procs = [
        subprocess.Popen(
            quiet_cli.command("worker", "run", "--once", "--name", f"w{n}"),
            env=quiet_cli.environment(),
            cwd=quiet_cli.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(3)
    ]
    fired: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        fired += json.loads(out)["timers_fired"]
    assert len(fired) == len(set(fired)) == 25
    rows = query(
        store_url,
        "SELECT change_id, count(*) FROM audit_events WHERE action='approval_escalated' GROUP BY change_id",
    )
    assert dict(rows) == dict.fromkeys(ids, 1)


def test_a_timer_claimed_by_a_worker_that_died_fires_after_the_hold(
    make_ctx: Callable[..., Context], clock: Any, store_url: str
) -> None:
    ctx = make_ctx()
    change_id = file_for_approval(ctx)
    clock.advance(seconds=TECH_LEAD_TIMEOUT + 1)
    with ctx.db.transaction() as tx:
        assert len(timers.claim_due(tx, clock().timestamp(), "dead-worker", worker.TIMER_HOLD)) == 1
    assert _fired(ctx, "w2") == []  # the claim is live
    clock.advance(seconds=worker.TIMER_HOLD + 1)
    assert _fired(ctx, "w2") == ["approval_timeout"]
    assert len(_details(store_url, change_id, "approval_escalated")) == 1


def test_timers_survive_a_restart(make_ctx: Callable[..., Context], clock: Any, store_url: str) -> None:
    first = make_ctx()
    change_id = file_for_approval(first)
    first.close()  # the process that scheduled it is gone
    clock.advance(seconds=TECH_LEAD_TIMEOUT + 1)
    assert _fired(make_ctx(), "after-restart") == ["approval_timeout"]
    assert "approval_escalated" in actions(store_url, change_id)


# ----------------------------------------------------------------------------- AUTO_IMPLEMENT


def test_auto_implement_after_the_delay_not_before(
    make_ctx: Callable[..., Context], clock: Any, store_url: str
) -> None:
    ctx = make_ctx(IMPLEMENTATION_DELAY="300")
    change_id = emergency(ctx)
    assert _state(ctx, change_id) == "approved"
    clock.advance(seconds=299)
    assert "implement" not in _fired(ctx)
    assert _state(ctx, change_id) == "approved"

    clock.advance(seconds=2)
    assert _fired(ctx, "w1") == ["implement"]
    doc = queries.get_change(ctx, change_id=change_id)
    assert (doc["state"], doc["closure_status"]) == ("closed", "successful")
    ((actor, _),) = _details(store_url, change_id, "implementation_started")
    assert actor == "worker:w1"
    assert "step_succeeded" in actions(store_url, change_id)
    clock.advance(seconds=600)
    assert "implement" not in _fired(ctx)


def test_no_auto_implement_when_it_is_off_or_already_done(
    make_ctx: Callable[..., Context], clock: Any, store_url: str
) -> None:
    off = make_ctx(AUTO_IMPLEMENT="false")
    idle = emergency(off, title="Left for a person")
    on = make_ctx(IMPLEMENTATION_DELAY="300")
    done_by_hand = emergency(on, title="Done by hand")
    implement_change(on, change_id=done_by_hand, actor="oncall")
    assert _state(on, done_by_hand) == "closed"

    clock.advance(seconds=301)
    assert "implement" not in _fired(on)
    assert _state(on, idle) == "approved"
    assert actions(store_url, done_by_hand).count("implementation_started") == 1
    assert actions(store_url, idle).count("implementation_started") == 0


# ----------------------------------------------------------------------------- the CAB agenda


def _cab_change(ctx: Context, title: str, category: str, impact: str, services: list[str]) -> str:
    change = file_change(
        ctx,
        type="normal",
        category=category,
        title=title,
        requested_by="alice",
        impact=impact,
        affected_services=services,
    )
    assert changes.assess_change(ctx, change_id=change.change_id).state.value == "pending_cab"
    return change.change_id


def test_cab_agenda_lists_pending_cab_changes_highest_risk_first(
    make_ctx: Callable[..., Context], quiet_cli: Any
) -> None:
    schedule = "30 15 * * 2"  # Tuesdays 15:30 UTC
    quiet_cli.env["CAB_MEETING_SCHEDULE"] = schedule
    ctx = make_ctx()
    high = _cab_change(ctx, "Resize the cluster", "deployment", "high", ["api", "db"])  # 60
    waiting = file_for_approval(ctx)  # technical lead: not the CAB's
    critical = _cab_change(ctx, "Rotate all keys", "security", "critical", ["api", "db", "cache"])  # 80
    higher = _cab_change(ctx, "Migrate the database", "deployment", "critical", ["api", "db"])  # 70
    unassessed = file_change(
        ctx,
        type="normal",
        category="deployment",
        title="Not assessed",
        requested_by="alice",
        impact="critical",
    ).change_id

    before = datetime.now(UTC)
    doc = json.loads(quiet_cli.ok("cab", "agenda", "--json"))
    after = datetime.now(UTC)
    assert [c["change_id"] for c in doc["changes"]] == [critical, higher, high]
    assert [(c["risk_score"], c["risk_level"]) for c in doc["changes"]] == [
        (80, "critical"),
        (70, "high"),
        (60, "high"),
    ]
    assert not {waiting, unassessed} & {c["change_id"] for c in doc["changes"]}
    meetings = {next_meeting(schedule, t).strftime("%Y-%m-%dT%H:%M:%SZ") for t in (before, after)}
    assert doc["meeting"] in meetings
    meeting = datetime.fromisoformat(doc["meeting"].replace("Z", "+00:00"))
    assert (meeting.weekday(), meeting.hour, meeting.minute) == (1, 15, 30)
    assert timedelta(0) < meeting - before <= timedelta(days=7)
    assert (doc["schedule"], doc["members"]) == (
        schedule,
        ["tech-lead", "security-lead", "ops-lead", "product-lead"],
    )


def test_the_worker_sends_the_agenda_once_per_meeting(
    make_ctx: Callable[..., Context], clock: Any, receiver: HttpReceiver, store_url: str
) -> None:
    clock.set(datetime(2026, 1, 14, 9, 0, tzinfo=UTC))  # a Wednesday; the CAB meets Thursdays 14:00
    ctx = make_ctx(
        CAB_MEETING_SCHEDULE="0 14 * * 4",
        CAB_AGENDA_LEAD="86400",
        CAB_APPROVAL_TIMEOUT=str(30 * 86400),  # no escalation in the weeks this test spans
        WEBHOOK_URL=receiver.url(),
    )
    first = _cab_change(ctx, "Migrate the database", "deployment", "critical", ["api", "db"])
    assert _fired(ctx) == []  # Thursday 14:00 is more than CAB_AGENDA_LEAD away

    clock.set(datetime(2026, 1, 14, 14, 0, 1, tzinfo=UTC))
    assert _fired(ctx) == ["cab_agenda"]
    (agenda,) = webhook_requests(receiver, "cab_agenda")
    body = agenda.json()
    assert body["recipients"] == ["tech-lead", "security-lead", "ops-lead", "product-lead"]
    assert body["change_id"] is None
    assert "2026-01-15T14:00:00Z" in body["subject"]
    assert first in body["text"]
    (row,) = outbox_rows(store_url, kind="cab_agenda")
    assert row["state"] == "delivered"
    sent = query(store_url, "SELECT details FROM audit_events WHERE action='cab_agenda_sent'")
    assert [json.loads(d)["changes"] for (d,) in sent] == [[first]]

    assert _fired(ctx, "w2") == []  # a second pass (another worker) does not resend
    clock.set(datetime(2026, 1, 15, 13, 59, tzinfo=UTC))
    assert _fired(ctx) == []
    clock.set(datetime(2026, 1, 15, 14, 1, tzinfo=UTC))  # after the meeting: next week's is 1 day+ away
    assert _fired(ctx) == []
    assert len(webhook_requests(receiver, "cab_agenda")) == 1

    clock.set(datetime(2026, 1, 21, 14, 0, 1, tzinfo=UTC))
    assert _fired(ctx) == ["cab_agenda"]
    assert _fired(ctx) == []
    second = webhook_requests(receiver, "cab_agenda")[1].json()
    assert "2026-01-22T14:00:00Z" in second["subject"]
    assert second["event_id"] != body["event_id"]
