"""domain/pir.py: when a review opens, who may do what (a table), its lifecycle and bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from cortex_change.domain import pir
from cortex_change.domain.errors import Forbidden, NotFound, Refused, ValidationError
from cortex_change.domain.events import Event, EventKind
from cortex_change.domain.model import Change, ChangeType, ClosureStatus, Level, Timeline
from cortex_change.domain.policy import Policy

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
POLICY = Policy(change_managers=frozenset({"cm"}))


def change(status: ClosureStatus | None = ClosureStatus.FAILED) -> Change:
    c = Change(
        "RFC-20260310120000-abcdef",
        ChangeType.NORMAL,
        "deployment",
        "Deploy",
        "",
        "alice",
        Level.MEDIUM,
        Level.MEDIUM,
        Timeline(NOW),
    )
    c.closure_status = status
    return c


def review(implementer: str | None = "ops") -> pir.Pir:
    c = change()
    opened, _ = pir.open_review(c, ["closed failed"], 5, NOW, implementer)
    return opened


CLOSED = Event(EventKind.CLOSED, "alice")
INCIDENT = Event(EventKind.INCIDENT_OPENED, "w", {"incident_id": "INC-1"})


@pytest.mark.parametrize(
    ("status", "events", "why"),
    [
        (ClosureStatus.FAILED, [CLOSED], ["closed failed"]),
        (ClosureStatus.ROLLED_BACK, [CLOSED], ["closed rolled_back"]),
        (ClosureStatus.SUCCESSFUL, [CLOSED], []),
        (ClosureStatus.CANCELLED, [CLOSED], []),
        (None, [INCIDENT], ["incident INC-1"]),
        (ClosureStatus.FAILED, [CLOSED, INCIDENT], ["closed failed", "incident INC-1"]),
        (ClosureStatus.FAILED, [Event(EventKind.UPDATED, "alice")], []),
    ],
)
def test_what_opens_a_review(status: ClosureStatus | None, events: list[Event], why: list[str]) -> None:
    assert pir.causes(change(status), events) == why


def test_a_review_is_due_sla_days_after_it_opens() -> None:
    opened, event = pir.open_review(change(), ["closed failed"], 5, NOW, "ops")
    assert opened.due_at == NOW + timedelta(days=5)
    assert (opened.owner, opened.status) == ("alice", pir.Status.OPEN)
    assert event.action is EventKind.PIR_OPENED
    assert event.details == {"reason": "closed failed", "owner": "alice", "due_at": "2026-03-15T12:00:00Z"}
    assert not opened.overdue(NOW + timedelta(days=5) - timedelta(seconds=1))
    assert opened.overdue(NOW + timedelta(days=5))


# (act, actor, allowed): the table read as the spec.
@pytest.mark.parametrize(
    ("act", "actor", "ok"),
    [
        (pir.Act.FINDINGS, "alice", True),  # requester
        (pir.Act.FINDINGS, "ops", True),  # implementer
        (pir.Act.FINDINGS, "cm", True),  # change manager
        (pir.Act.FINDINGS, "dana", False),  # an action item's owner only
        (pir.Act.ADD_ACTION, "ops", True),
        (pir.Act.ADD_ACTION, "mallory", False),
        (pir.Act.ACTION_DONE, "dana", True),  # the item's owner
        (pir.Act.ACTION_DONE, "cm", True),
        (pir.Act.ACTION_DONE, "alice", False),
        (pir.Act.COMPLETE, "cm", True),
        (pir.Act.COMPLETE, "alice", False),
        (pir.Act.COMPLETE, "ops", False),
    ],
)
def test_who_may(act: pir.Act, actor: str, ok: bool) -> None:
    r = review()
    item = pir.Action("A1", "Fix", "dana", date(2026, 3, 20), NOW, "alice")
    assert pir.allowed(act, actor, change(), r, POLICY, item) is ok


def test_no_implementer_is_nobody() -> None:
    with pytest.raises(Forbidden, match=r"the change's implementer \(nobody\)"):
        pir.require(pir.Act.FINDINGS, "ops", change(), review(None), POLICY)


def test_the_lifecycle() -> None:
    c, r = change(), review()
    with pytest.raises(Refused, match="it needs findings"):
        pir.complete(r, c, "cm", POLICY, NOW)
    (e,) = pir.record_findings(r, c, "ops", "Root cause:\n\tdrift", POLICY, NOW)
    assert e.details == {"findings": "Root cause:\n\tdrift", "replaced": False}
    (e,) = pir.add_action(r, c, "alice", "Alert", "dana", "2026-03-10", POLICY, NOW)  # today is fine
    assert (e.details["action_id"], r.actions[0].due_at) == ("A1", datetime(2026, 3, 11, tzinfo=UTC))
    pir.add_action(r, c, "alice", "Runbook", "erin", "2026-04-01", POLICY, NOW)
    later = NOW + timedelta(days=6)
    (e,) = pir.complete(r, c, "cm", POLICY, later)
    assert e.details == {"late": True, "actions": 2, "actions_open": ["A1", "A2"]}
    with pytest.raises(Refused, match="it is completed"):
        pir.add_action(r, c, "alice", "More", "dana", "2026-04-01", POLICY, later)
    (e,) = pir.finish_action(r, c, "dana", "A1", POLICY, later)
    assert e.details["late"] is True
    assert r.actions[0].status is pir.ActionStatus.DONE and not r.actions[0].overdue(later)
    with pytest.raises(NotFound):
        r.action("A9")
    doc = pir.document(r, later, "Deploy")
    assert [a["action_id"] for a in doc["actions"]] == ["A1", "A2"]
    assert doc["status"] == "completed" and doc["overdue"] is False


@pytest.mark.parametrize(
    ("check", "value", "field"),
    [
        (pir.findings_text, "", "findings"),
        (pir.findings_text, "   ", "findings"),
        (pir.findings_text, "nul\x00", "findings"),
        (pir.findings_text, "esc\x1b[31m", "findings"),
        (pir.findings_text, "x" * (pir.FINDINGS_MAX + 1), "findings"),
        (pir.action_title, "", "title"),
        (pir.action_title, "a\nb", "title"),
        (pir.action_title, "t" * 201, "title"),
        (pir.action_id, "a1", "action_id"),
        (pir.action_id, "A0", "action_id"),
        (pir.action_id, "A1\n", "action_id"),
        (pir.action_id, "A12345", "action_id"),
    ],
)
def test_bad_text(check: object, value: str, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        check(value)  # type: ignore[operator]
    assert str(err.value).startswith(f"{field}: ") and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("2026-03-09", "in the past"),
        ("2026-02-30", "not a date of the calendar"),
        ("2026-3-1", "not a date"),
        ("20260310", "not a date"),
        ("2036-03-10", "more than 3650 days"),
        ("99999-01-01", "not a date"),
        ("", "not a date"),
        ("2026-03-10T00:00", "not a date"),
    ],
)
def test_bad_due_dates(value: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        pir.due_date(value, NOW)


def test_due_dates_within_bounds() -> None:
    assert pir.due_date("2026-03-10", NOW) == date(2026, 3, 10)
    assert pir.due_date("2036-03-04", NOW) == date(2036, 3, 4)  # 3 650 days ahead


def test_a_review_holds_at_most_actions_max_items() -> None:
    c, r = change(), review()
    for _ in range(pir.ACTIONS_MAX):
        pir.add_action(r, c, "alice", "x", "dana", "2026-04-01", POLICY, NOW)
    assert r.actions[-1].action_id == f"A{pir.ACTIONS_MAX}"
    with pytest.raises(Refused, match="action items already"):
        pir.add_action(r, c, "alice", "x", "dana", "2026-04-01", POLICY, NOW)
