"""Post-implementation reviews (docs/pir.md) in-process, on SQLite and PostgreSQL (`store_url`), with
the clock the test moves: opened with the failure that causes them (in its transaction), their
timers (PIR_SLA, action items' due dates) → notifications in the outbox, completion rules,
permissions, audit events, metrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cortex_change.domain.errors import Forbidden, NotFound, Refused, ValidationError
from cortex_change.services import changes, pir, worker
from cortex_change.services.context import Context
from cortex_change.services.implementation import implement_change
from cortex_change.services.reports import metrics_report
from cortex_change.services.workers import rollback_change
from support import FakeClock, file_change, query

# The webhook channel on (so notifications are queued); nothing listens, nothing is delivered here.
# No CAB meeting falls in a test (29 February).
ENV = {
    "WEBHOOK_URL": "http://127.0.0.1:9/hook",
    "CAB_MEETING_SCHEDULE": "0 0 29 2 *",
    "CAB_AGENDA_LEAD": "0",
    "PIR_SLA": "2",
    "CHANGE_MANAGERS": "change-manager,cm-two",
}
TEXT_PLANS = {"implementation_plan": {"steps": ["Deploy by hand"]}, "rollback_plan": {"steps": ["Revert"]}}


@pytest.fixture
def ctx(make_ctx: Callable[..., Context]) -> Context:
    return make_ctx(**ENV)


def implemented(ctx: Context, title: str = "Deploy build 42") -> str:
    """A normal change with a text plan, approved and implemented (waiting for its outcome)."""
    change = file_change(
        ctx, type="normal", category="deployment", title=title, requested_by="alice", **TEXT_PLANS
    )
    changes.assess_change(ctx, change_id=change.change_id)
    changes.approve_change(ctx, change_id=change.change_id, approver="tech-lead", reason="fine")
    done = implement_change(ctx, change_id=change.change_id, actor="ops")
    assert done.state.value == "implemented", done.state
    return str(change.change_id)


def closed(ctx: Context, status: str) -> str:
    change_id = implemented(ctx)
    changes.close_change(ctx, change_id=change_id, status=status, notes="outcome", actor="alice")
    return change_id


def actions(store: str, change_id: str) -> list[str]:
    rows = query(store, "SELECT action FROM audit_events WHERE change_id=? ORDER BY seq", (change_id,))
    return [str(r[0]) for r in rows]


def details(store: str, change_id: str, action: str) -> list[dict[str, Any]]:
    rows = query(
        store,
        "SELECT details FROM audit_events WHERE change_id=? AND action=? ORDER BY seq",
        (change_id, action),
    )
    return [json.loads(r[0]) for r in rows]


def messages(store: str, kind: str) -> list[dict[str, Any]]:
    rows = query(store, "SELECT payload FROM outbox WHERE kind=? ORDER BY created_at, message_id", (kind,))
    return [json.loads(r[0]) for r in rows]


def fired(ctx: Context) -> list[str]:
    """The kinds of the timers one pass fired."""
    return [t.split(":", 1)[0] for t in worker.fire_timers(ctx, "w1")]


def written(store: str) -> tuple[int, ...]:
    """Rows that any write adds: audit events, review rows, action items, outbox, timers."""
    tables = ("audit_events", "pirs", "pir_actions", "outbox", "timers")
    return tuple(int(query(store, f"SELECT count(*) FROM {t}")[0][0]) for t in tables)


# --- when a review opens --------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["failed", "rolled_back"])
def test_a_failed_or_rolled_back_close_opens_a_review_due_pir_sla_days_later(
    ctx: Context, clock: FakeClock, store_url: str, status: str
) -> None:
    change_id = closed(ctx, status)
    trail = actions(store_url, change_id)
    assert trail[-2:] == ["closed", "pir_opened"]  # one transaction, the review right after
    doc = pir.get_pir(ctx, change_id=change_id)
    due = clock() + timedelta(days=2)
    assert doc["status"] == "open"
    assert doc["reason"] == f"closed {status}"
    assert (doc["owner"], doc["implementer"]) == ("alice", "ops")
    assert doc["due_at"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert doc["overdue"] is False and doc["actions"] == []
    (opened,) = messages(store_url, "pir_opened")
    assert opened["recipients"] == ["alice", "change-manager", "cm-two"]
    timers = query(
        store_url, "SELECT kind, due_at FROM timers WHERE change_id=? AND state='pending'", (change_id,)
    )
    assert ("pir_overdue", due.timestamp()) in [(k, float(d)) for k, d in timers]


@pytest.mark.parametrize("status", ["successful", None])
def test_no_review_for_a_successful_or_cancelled_change(
    ctx: Context, store_url: str, status: str | None
) -> None:
    if status is None:
        change = file_change(ctx, type="normal", category="deployment", title="T", requested_by="alice")
        changes.cancel_change(ctx, change_id=change.change_id, actor="alice", reason="not needed")
        change_id = change.change_id
    else:
        change_id = closed(ctx, status)
    assert "pir_opened" not in actions(store_url, change_id)
    assert query(store_url, "SELECT count(*) FROM pirs")[0][0] == 0
    with pytest.raises(NotFound, match="has no post-implementation review"):
        pir.get_pir(ctx, change_id=change_id)


def test_a_failed_rollback_opens_one_review_naming_its_incident(ctx: Context, store_url: str) -> None:
    change_id = implemented(ctx)
    done = rollback_change(ctx, change_id=change_id, actor="alice", reason="errors spiked")
    assert done.closure_status is not None and done.closure_status.value == "failed"  # rolled back by hand
    (incident,) = query(store_url, "SELECT incident_id FROM incidents WHERE change_id=?", (change_id,))
    doc = pir.get_pir(ctx, change_id=change_id)
    assert doc["reason"] == f"closed failed; incident {incident[0]}"
    assert actions(store_url, change_id).count("pir_opened") == 1
    assert actions(store_url, change_id)[-1] == "pir_opened"


# --- timers ------------------------------------------------------------------------------------------


def test_an_open_review_past_pir_sla_notifies_change_managers_and_its_owner_once(
    ctx: Context, clock: FakeClock, store_url: str
) -> None:
    change_id = closed(ctx, "failed")
    opened_at = clock()
    clock.set(opened_at + timedelta(days=2) - timedelta(seconds=1))
    assert "pir_overdue" not in fired(ctx)
    assert pir.list_pirs(ctx, which="overdue") == []
    clock.advance(seconds=1)
    assert fired(ctx) == ["pir_overdue"]
    assert actions(store_url, change_id)[-1] == "pir_overdue"
    (sent,) = messages(store_url, "pir_overdue")
    assert sent["recipients"] == ["change-manager", "cm-two", "alice"]
    assert sent["ask"].startswith("complete the post-implementation review")
    (row,) = pir.list_pirs(ctx, which="overdue")
    assert (row["change_id"], row["overdue"], row["overdue_seconds"]) == (change_id, True, 0)
    clock.advance(days=5)
    assert fired(ctx) == []
    assert len(messages(store_url, "pir_overdue")) == 1


def test_a_review_completed_in_time_is_never_overdue(ctx: Context, clock: FakeClock, store_url: str) -> None:
    change_id = closed(ctx, "rolled_back")
    clock.advance(hours=1)
    pir.record_findings(ctx, change_id=change_id, actor="ops", findings="Cache warm-up missing.\nFixed.")
    pir.complete(ctx, change_id=change_id, actor="change-manager")
    clock.advance(days=3)
    assert fired(ctx) == []
    assert "pir_overdue" not in actions(store_url, change_id)


def test_an_action_item_past_its_due_date_notifies_its_owner(
    ctx: Context, clock: FakeClock, store_url: str
) -> None:
    change_id = closed(ctx, "failed")
    today = clock().date()
    due = today + timedelta(days=1)
    doc = pir.add_action(
        ctx, change_id=change_id, actor="alice", title="Alert on drift", owner="dana", due=due.isoformat()
    )
    assert [a["action_id"] for a in doc["actions"]] == ["A1"]
    pir.add_action(
        ctx, change_id=change_id, actor="alice", title="Runbook", owner="erin", due=due.isoformat()
    )
    pir.add_action(
        ctx,
        change_id=change_id,
        actor="alice",
        title="Later",
        owner="dana",
        due=(due + timedelta(days=9)).isoformat(),
    )
    assigned = sorted(tuple(m["recipients"]) for m in messages(store_url, "pir_action"))
    assert assigned == [("dana",), ("dana",), ("erin",)]  # each owner hears of their item
    pir.finish_action(ctx, change_id=change_id, actor="erin", action_id="A2")  # done in time

    end_of_due_day = datetime(due.year, due.month, due.day, tzinfo=UTC) + timedelta(days=1)
    clock.set(end_of_due_day - timedelta(seconds=1))
    assert "pir_action_due" not in fired(ctx)
    clock.set(end_of_due_day)
    assert "pir_action_due" in fired(ctx)
    (late,) = details(store_url, change_id, "pir_action_overdue")
    assert (late["action_id"], late["owner"], late["due"]) == ("A1", "dana", due.isoformat())
    (sent,) = messages(store_url, "pir_action_overdue")
    assert sent["recipients"] == ["dana"]
    doc = pir.get_pir(ctx, change_id=change_id)
    assert [(a["action_id"], a["status"], a["overdue"]) for a in doc["actions"]] == [
        ("A1", "open", True),
        ("A2", "done", False),
        ("A3", "open", False),
    ]


# --- completion, permissions, input ---------------------------------------------------------------------


def test_completion_needs_findings_and_a_change_manager(ctx: Context, store_url: str) -> None:
    change_id = closed(ctx, "failed")
    with pytest.raises(Refused, match=r"it needs findings"):
        pir.complete(ctx, change_id=change_id, actor="change-manager")
    pir.record_findings(ctx, change_id=change_id, actor="alice", findings="Root cause: drift.")
    with pytest.raises(Forbidden, match=r"alice may not complete .* allowed to CHANGE_MANAGERS"):
        pir.complete(ctx, change_id=change_id, actor="alice")
    pir.add_action(
        ctx, change_id=change_id, actor="change-manager", title="Fix", owner="dana", due="2026-02-01"
    )
    doc = pir.complete(ctx, change_id=change_id, actor="cm-two")
    assert (doc["status"], doc["completed_by"]) == ("completed", "cm-two")
    # Closed to writing, but its action items are still work to finish.
    with pytest.raises(Refused, match="it is completed"):
        pir.record_findings(ctx, change_id=change_id, actor="alice", findings="More.")
    with pytest.raises(Refused, match="it is completed"):
        pir.add_action(ctx, change_id=change_id, actor="alice", title="X", owner="dana", due="2026-02-01")
    doc = pir.finish_action(ctx, change_id=change_id, actor="dana", action_id="A1")
    assert doc["actions"][0]["status"] == "done"
    trail = actions(store_url, change_id)
    pir_events = [a for a in trail if a.startswith("pir_")]
    assert pir_events == [
        "pir_opened",
        "pir_findings_recorded",
        "pir_action_added",
        "pir_completed",
        "pir_action_done",
    ]
    assert trail.count("refused") == 4
    (completed,) = details(store_url, change_id, "pir_completed")
    assert completed == {"late": False, "actions": 1, "actions_open": ["A1"]}


def test_who_may_write_a_review(ctx: Context, store_url: str) -> None:
    change_id = closed(ctx, "failed")
    for writer in ("alice", "ops", "change-manager"):  # requester, implementer, change manager
        pir.record_findings(ctx, change_id=change_id, actor=writer, findings=f"by {writer}")
    before = written(store_url)
    with pytest.raises(Forbidden, match=r"mallory may not record the findings of .*the requester \(alice\)"):
        pir.record_findings(ctx, change_id=change_id, actor="mallory", findings="mine")
    after = written(store_url)
    assert after[0] == before[0] + 1 and after[1:] == before[1:]  # only the refusal's audit event
    assert actions(store_url, change_id)[-1] == "refused"
    pir.add_action(ctx, change_id=change_id, actor="alice", title="Fix", owner="dana", due="2026-02-01")
    with pytest.raises(Forbidden, match=r"its owner|action item's owner \(dana\)"):
        pir.finish_action(ctx, change_id=change_id, actor="bob", action_id="A1")
    pir.finish_action(ctx, change_id=change_id, actor="dana", action_id="A1")
    with pytest.raises(Refused, match="done already"):
        pir.finish_action(ctx, change_id=change_id, actor="dana", action_id="A1")
    with pytest.raises(NotFound, match="no action item A7"):
        pir.finish_action(ctx, change_id=change_id, actor="dana", action_id="A7")


@pytest.mark.parametrize(
    ("call", "field"),
    [
        ({"findings": ""}, "findings"),
        ({"findings": " \n\t "}, "findings"),
        ({"findings": "bell\x07"}, "findings"),
        ({"findings": "x" * 20_001}, "findings"),
        ({"title": "", "owner": "dana", "due": "2026-02-01"}, "title"),
        ({"title": "two\nlines", "owner": "dana", "due": "2026-02-01"}, "title"),
        ({"title": "Fix", "owner": "", "due": "2026-02-01"}, "owner"),
        ({"title": "Fix", "owner": "da\x00na", "due": "2026-02-01"}, "owner"),
        ({"title": "Fix", "owner": "dana", "due": "2026-01-14"}, "due"),  # yesterday
        ({"title": "Fix", "owner": "dana", "due": "2026-02-30"}, "due"),
        ({"title": "Fix", "owner": "dana", "due": "99999-01-01"}, "due"),
        ({"title": "Fix", "owner": "dana", "due": "2046-01-01"}, "due"),  # > 10 years
        ({"title": "Fix", "owner": "dana", "due": "tomorrow"}, "due"),
    ],
)
def test_bad_input_is_one_line_naming_the_field_and_writes_nothing(
    ctx: Context, store_url: str, call: dict[str, str], field: str
) -> None:
    change_id = closed(ctx, "failed")
    before = written(store_url)
    with pytest.raises(ValidationError) as err:
        if "findings" in call:
            pir.record_findings(ctx, change_id=change_id, actor="alice", **call)
        else:
            pir.add_action(ctx, change_id=change_id, actor="alice", **call)
    assert str(err.value).startswith(f"{field}: ") and "\n" not in str(err.value)
    assert written(store_url) == before


def test_unknown_changes_and_bad_ids(ctx: Context) -> None:
    with pytest.raises(NotFound):
        pir.get_pir(ctx, change_id="RFC-20260101000000-abcdef")
    with pytest.raises(NotFound):
        pir.record_findings(ctx, change_id="RFC-20260101000000-abcdef", actor="alice", findings="x")
    with pytest.raises(ValidationError, match="change_id"):
        pir.get_pir(ctx, change_id="nope")
    change_id = closed(ctx, "failed")
    with pytest.raises(ValidationError, match="action_id"):
        pir.finish_action(ctx, change_id=change_id, actor="alice", action_id="1; DROP TABLE pirs")


# --- metrics -------------------------------------------------------------------------------------


def test_metrics_count_reviews_and_action_items(ctx: Context, clock: FakeClock) -> None:
    done = closed(ctx, "failed")
    late = closed(ctx, "rolled_back")
    pir.record_findings(ctx, change_id=done, actor="alice", findings="ok")
    pir.add_action(ctx, change_id=done, actor="alice", title="A", owner="dana", due="2026-01-16")
    pir.add_action(ctx, change_id=done, actor="alice", title="B", owner="dana", due="2026-01-30")
    pir.complete(ctx, change_id=done, actor="change-manager")
    report = metrics_report(ctx, period_text="today")["post_implementation_reviews"]
    assert report == {"opened": 2, "completed": 1, "overdue": 0, "actions_open": 2, "actions_overdue": 0}
    clock.advance(days=3)  # `late`'s review and action A are past due
    report = metrics_report(ctx, period_text="week")["post_implementation_reviews"]
    assert report == {"opened": 2, "completed": 1, "overdue": 1, "actions_open": 2, "actions_overdue": 1}
    assert late  # its review is the overdue one
