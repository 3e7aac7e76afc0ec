"""domain/simulation.py: a change as filed, what a replayed route asks of people, the tallies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cortex_change.domain import workflow
from cortex_change.domain.errors import ValidationError
from cortex_change.domain.lifecycle import State
from cortex_change.domain.model import Change, ChangeType, ClosureStatus, Level, Route, Timeline
from cortex_change.domain.policy import Policy
from cortex_change.domain.simulation import MINUTES, Replay, Tally, as_filed, moved, parse_minutes, replayed

AT = datetime(2026, 7, 3, 10, tzinfo=UTC)
PLAN = {"steps": [{"action": "deploy"}]}


def change(**kw: object) -> Change:
    fields: dict[str, object] = {
        "change_id": "RFC-1",
        "type": ChangeType.NORMAL,
        "category": "deployment",
        "title": "t",
        "description": "d",
        "requested_by": "alice",
        "impact": Level.MEDIUM,
        "urgency": Level.MEDIUM,
        "timeline": Timeline(created_at=AT),
        "implementation_plan": PLAN,
        "rollback_plan": PLAN,
        "test_plan": PLAN,
        "affected_services": ["api"],
        **kw,
    }
    return Change(**fields)  # type: ignore[arg-type]


def test_minutes_default_and_take_role_overrides() -> None:
    assert parse_minutes([]) == MINUTES
    assert parse_minutes(["cab=45", "ciso=0"]) == {**MINUTES, "cab": 45, "ciso": 0}


@pytest.mark.parametrize(
    ("item", "says"),
    [
        ("board=5", "'board' is not a role; allowed: technical-lead, cab, ciso, cto, ecab"),
        ("cab", "'cab': give role=N, N whole minutes 0–1440"),
        ("cab=-5", "give role=N"),
        ("cab=1441", "give role=N"),
        ("cab=$(id)", "give role=N"),
        ("cab=1.5", "give role=N"),
    ],
)
def test_bad_minutes_are_refused_naming_what_is_allowed(item: str, says: str) -> None:
    with pytest.raises(ValidationError) as e:
        parse_minutes([item])
    assert says in str(e.value)


def test_as_filed_undoes_every_decision_and_keeps_the_request() -> None:
    c = change(type=ChangeType.STANDARD, standard_model="restart")
    events = workflow.assess(c, Policy(), [], AT)
    assert events and c.state is not State.PENDING_ASSESSMENT and c.assessment is not None
    assert c.type is ChangeType.NORMAL and c.reclassified_from is ChangeType.STANDARD  # no model given
    c.closure_status, c.closure_notes = ClosureStatus.FAILED, "broke"
    fresh = as_filed(c)
    assert fresh is not c and fresh.state is State.PENDING_ASSESSMENT
    assert (fresh.type, fresh.reclassified_from, fresh.assessment, fresh.approvals) == (
        ChangeType.STANDARD,
        None,
        None,
        [],
    )
    assert (fresh.route_floor, fresh.closure_status, fresh.closure_notes, fresh.review) == (None,) * 4
    assert fresh.timeline.created_at == AT and fresh.timeline.assessed_at is None
    assert (fresh.title, fresh.affected_services, fresh.rollback_plan) == ("t", ["api"], PLAN)
    assert c.assessment is not None  # the original is untouched
    workflow.assess(fresh, Policy(), [], AT)  # and it can be assessed again


def test_a_replay_costs_each_requirement_its_votes_and_system_approvals_nothing() -> None:
    policy = Policy(cab_min_approvals=3)
    cab = change(impact=Level.CRITICAL, urgency=Level.HIGH, category="security")
    workflow.assess(cab, policy, [], AT)
    assert cab.assessment is not None and cab.assessment.route in (Route.CAB, Route.CAB_CISO_CTO)
    r = replayed(cab, cab, policy, MINUTES)
    expected = {"cab": 3 * 30} if cab.assessment.route is Route.CAB else {"cab": 90, "ciso": 20, "cto": 20}
    assert (r.route, r.system_approved, r.minutes, r.blocked) == (cab.assessment.route, False, expected, None)

    emergency = change(type=ChangeType.EMERGENCY, closure_status=ClosureStatus.ROLLED_BACK)
    workflow.assess(emergency, policy, [], AT)
    r = replayed(emergency, emergency, policy, MINUTES)
    assert (r.route, r.system_approved, r.minutes, r.failed) == (Route.EMERGENCY_CAB, True, {}, True)


def test_tallies_sum_routes_hours_failures_let_through_and_refusals() -> None:
    replays = [
        Replay("A", False, Route.TECHNICAL_LEAD, False, {"technical-lead": 15}),
        Replay("B", True, Route.AUTO_APPROVED, True),
        Replay("C", False, Route.AUTO_APPROVED, True),
        Replay("D", True, blocked="category: 'x' is not allowed"),
        Replay("E", True, Route.CAB, False, {"cab": 60}),
    ]
    t = Tally(replays)
    doc = t.document(Policy(cab_members=frozenset({"a", "b", "c"}), ciso_members=frozenset()))
    assert doc["routes"] == {
        r.value: {"technical-lead": 1, "auto-approved": 2, "cab": 1}.get(r.value, 0) for r in Route
    }
    assert doc["approver_hours"]["technical-lead"] == {"hours": 0.2, "members": 2, "per_member": 0.1}
    assert doc["approver_hours"]["cab"] == {"hours": 1.0, "members": 3, "per_member": 0.3}
    assert doc["approver_hours"]["ciso"] == {"hours": 0.0, "members": 0, "per_member": None}
    assert doc["auto_approved_failed"] == {"count": 1, "changes": ["B"]}
    assert doc["blocked"] == {
        "count": 1,
        "changes": [{"change_id": "D", "reason": "category: 'x' is not allowed"}],
    }


def test_moved_lists_each_change_whose_outcome_differs_in_order() -> None:
    base = [Replay("A", False, Route.CAB), Replay("B", False, Route.CAB), Replay("C", False, Route.CAB)]
    other = [
        Replay("A", False, Route.CAB),
        Replay("B", False, blocked="no"),
        Replay("C", False, Route.CAB_CISO_CTO),
    ]
    assert moved(base, other) == [
        {"change_id": "B", "from": "cab", "to": "refused"},
        {"change_id": "C", "from": "cab", "to": "cab+ciso+cto"},
    ]
    with pytest.raises(ValueError):
        moved(base, other[:2])
