"""SPEC §2, §4, §5: creation, standard requests, updates, reviews, closing and cancelling."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from cortex_change.domain import codec, workflow
from cortex_change.domain.errors import (
    ApprovalRefused,
    InvalidTransition,
    Refused,
    ValidationError,
)
from cortex_change.domain.lifecycle import State
from cortex_change.domain.model import (
    Change,
    ChangeType,
    ClosureStatus,
    Level,
    ReviewOutcome,
    Route,
)
from cortex_change.domain.policy import Policy
from cortex_change.domain.standard import NO_MODEL, StandardDecision

if TYPE_CHECKING:
    from conftest import Kit

POLICY = Policy()

# --- creation -------------------------------------------------------------------------


def test_created_event(kit: Kit) -> None:
    events = workflow.created(kit.change(), POLICY)
    assert [(e.action, e.actor) for e in events] == [("created", kit.REQUESTER)]
    assert events[0].details["category"] == "configuration"


def test_unknown_category_lists_the_allowed_ones(kit: Kit) -> None:
    with pytest.raises(ValidationError) as refused:
        workflow.created(kit.change(category="networking"), POLICY)
    assert refused.value.field == "category"
    assert "'networking'" in str(refused.value)
    assert "security, infrastructure, deployment" in str(refused.value)


def test_configured_categories_are_the_allowed_ones(kit: Kit) -> None:
    policy = Policy(category_weights={"networking": 10})
    assert workflow.created(kit.change(category="networking"), policy)
    with pytest.raises(ValidationError):
        workflow.created(kit.change(category="security"), policy)


def test_emergency_requests_are_refused_when_disabled(kit: Kit) -> None:
    change = kit.change(type=ChangeType.EMERGENCY)
    with pytest.raises(Refused, match="EMERGENCY_CHANGE_ENABLED"):
        workflow.created(change, Policy(emergency_enabled=False))
    assert workflow.created(change, POLICY)


# --- assess / reassess ----------------------------------------------------------------


def test_assess_twice_is_refused_without_reassess(kit: Kit) -> None:
    change = kit.assessed("medium")
    with pytest.raises(InvalidTransition, match="pending_approval"):
        workflow.assess(change, POLICY, [], kit.at(1))


def test_reassess_discards_approvals_and_keeps_the_route_floor(kit: Kit) -> None:
    change = kit.assessed("high", with_plans=True)
    workflow.approve(change, "ops-lead", "ok", POLICY, kit.at(1))
    change.impact = Level.LOW
    events = workflow.assess(change, POLICY, [], kit.at(2), reassess=True)
    assert [e.action for e in events] == ["approvals_discarded", "reassessed", "approval_requested"]
    assert events[0].details["approvers"] == ["ops-lead"]
    assert change.active_approvals == []
    assert len(change.approvals) == 1
    assert change.assessment is not None
    assert change.assessment.score == 45  # 10 + 10 + 20 + 5: technical lead by score…
    assert change.assessment.route is Route.CAB  # …but never below the CAB it already reached
    assert "route floor" in change.assessment.route_reason
    assert change.route_floor is Route.CAB
    assert change.assessment.assessed_at == kit.at(2)
    assert change.state is State.PENDING_CAB


def test_a_change_manager_lowers_the_route_floor_with_a_reason(kit: Kit) -> None:
    change = kit.assessed("high", with_plans=True)
    change.impact = Level.LOW
    events = workflow.assess(
        change, POLICY, [], kit.at(2), reassess=True, lower_route="impact was a typo", actor="cm"
    )
    lowered = [e for e in events if e.action == "route_floor_lowered"]
    assert [(e.actor, e.details) for e in lowered] == [("cm", {"from": "cab", "reason": "impact was a typo"})]
    assert change.assessment is not None
    assert change.assessment.route is Route.TECHNICAL_LEAD
    assert change.route_floor is Route.TECHNICAL_LEAD
    assert change.state is State.PENDING_APPROVAL


@pytest.mark.parametrize("profile", ["low-auto", "medium"])
def test_reassess_after_approval_is_refused(kit: Kit, profile: str) -> None:
    change = kit.assessed(profile)
    if change.state is not State.APPROVED:
        workflow.approve(change, "tech-lead", "ok", POLICY, kit.at(1))
    with pytest.raises(InvalidTransition):
        workflow.assess(change, POLICY, [], kit.at(2), reassess=True)


# --- standard requests ----------------------------------------------------------------


def test_standard_without_a_model_becomes_normal(kit: Kit) -> None:
    change = kit.change("medium", type=ChangeType.STANDARD)
    events = workflow.assess(change, POLICY, [], kit.T0)
    assert change.type is ChangeType.NORMAL
    assert change.reclassified_from is ChangeType.STANDARD
    reclassified = [e for e in events if e.action == "reclassified"]
    assert len(reclassified) == 1
    assert reclassified[0].details["from"] == "standard"
    assert reclassified[0].details["to"] == "normal"
    assert reclassified[0].details["reason"] == NO_MODEL.reason
    assert change.assessment is not None
    assert change.assessment.route is Route.TECHNICAL_LEAD


def test_standard_over_its_limits_takes_the_models_verdict(kit: Kit) -> None:
    decision = StandardDecision(
        model="security-patch",
        pre_approved=False,
        becomes=ChangeType.EMERGENCY,
        reason="severity critical ranks above STD_SECURITY_PATCH_MAX_SEVERITY=high",
    )
    change = kit.change("high", type=ChangeType.STANDARD)
    events = workflow.assess(change, POLICY, [], kit.T0, standard=decision)
    assert change.type is ChangeType.EMERGENCY
    event = next(e for e in events if e.action == "reclassified")
    assert event.details == {
        "from": "standard",
        "to": "emergency",
        "model": "security-patch",
        "reason": decision.reason,
    }
    assert change.assessment is not None
    assert change.assessment.route is Route.EMERGENCY_CAB
    assert change.review is not None  # approved at once as an emergency


def test_matching_standard_change_is_pre_approved_by_its_model(kit: Kit) -> None:
    decision = StandardDecision(
        "worker-restart", True, ChangeType.STANDARD, "2 restarts in the last hour", max_level=Level.CRITICAL
    )
    change = kit.change("critical", type=ChangeType.STANDARD)
    events = workflow.assess(change, POLICY, [], kit.T0, standard=decision)
    assert change.type is ChangeType.STANDARD
    assert change.reclassified_from is None
    assert "reclassified" not in [e.action for e in events]
    assert change.state is State.APPROVED
    assert change.assessment is not None
    assert change.assessment.route is Route.PRE_APPROVED
    assert change.assessment.score == 85  # the score is still recorded
    assert [a.approver for a in change.approvals] == ["standard-model:worker-restart"]


def test_a_standard_request_riskier_than_its_model_allows_becomes_normal(kit: Kit) -> None:
    decision = StandardDecision("worker-restart", True, ChangeType.STANDARD, "2 restarts in the last hour")
    change = kit.change("critical", type=ChangeType.STANDARD)  # 85: critical > max_level medium
    events = workflow.assess(change, POLICY, [], kit.T0, standard=decision)
    assert change.type is ChangeType.NORMAL
    assert change.reclassified_from is ChangeType.STANDARD
    [moved] = [e for e in events if e.action == "reclassified"]
    assert "above the model's max_level medium" in moved.details["reason"]
    assert change.assessment is not None and change.assessment.route is Route.CAB_CISO_CTO
    assert change.state is State.PENDING_CAB


def test_a_standard_request_bringing_its_own_commands_becomes_normal(kit: Kit) -> None:
    decision = StandardDecision("worker-restart", True, ChangeType.STANDARD, "0 restarts in the last hour")
    change = kit.change("low-auto", type=ChangeType.STANDARD)
    change.implementation_plan = {"steps": [{"run": ["sh", "-c", "id"]}]}
    events = workflow.assess(change, POLICY, [], kit.T0, standard=decision)
    assert change.type is ChangeType.NORMAL
    [moved] = [e for e in events if e.action == "reclassified"]
    assert "brings its own executable steps" in moved.details["reason"]
    assert change.state is not State.APPROVED  # a person approves the commands


def test_a_standard_decision_is_ignored_for_normal_changes(kit: Kit) -> None:
    decision = StandardDecision("autoscale", True, ChangeType.STANDARD, "3 replicas")
    change = kit.assessed("high", standard=decision)
    assert change.assessment is not None
    assert change.assessment.route is Route.CAB


# --- update ---------------------------------------------------------------------------


def test_update_before_assessment_records_old_and_new(kit: Kit) -> None:
    change = kit.change()
    events = workflow.update(
        change, "editor", {"title": "New title", "impact": Level.HIGH}, POLICY, [], kit.at(1)
    )
    assert [e.action for e in events] == ["updated"]
    assert events[0].actor == "editor"
    assert events[0].details["changes"] == {
        "title": {"old": "Raise the connection pool size", "new": "New title"},
        "impact": {"old": "medium", "new": "high"},
    }
    assert change.title == "New title"
    assert change.state is State.PENDING_ASSESSMENT
    assert change.assessment is None


def test_update_records_only_fields_that_differ(kit: Kit) -> None:
    change = kit.change()
    events = workflow.update(
        change, "editor", {"title": change.title, "environment": "staging"}, POLICY, [], kit.at(1)
    )
    assert events[0].details["changes"] == {"environment": {"old": None, "new": "staging"}}


def test_update_that_changes_nothing_is_refused(kit: Kit) -> None:
    change = kit.change()
    with pytest.raises(ValidationError, match="nothing to update"):
        workflow.update(change, "editor", {"title": change.title}, POLICY, [], kit.at(1))


@pytest.mark.parametrize("field", ["state", "requested_by", "type", "category", "approvals"])
def test_update_of_a_non_descriptive_field_is_refused(kit: Kit, field: str) -> None:
    change = kit.change()
    with pytest.raises(ValidationError) as refused:
        workflow.update(change, "editor", {field: "x"}, POLICY, [], kit.at(1))
    assert refused.value.field == field


def test_refused_update_changes_nothing(kit: Kit) -> None:
    change = kit.assessed("high", with_plans=True)
    before = codec.to_document(change)
    with pytest.raises(ValidationError):
        workflow.update(change, "editor", {"title": "New", "state": "approved"}, POLICY, [], kit.at(1))
    assert codec.to_document(change) == before


def test_update_of_an_assessed_change_discards_approvals_and_reassesses(kit: Kit) -> None:
    change = kit.assessed("critical", with_plans=True)
    workflow.approve(change, "ops-lead", "ok", POLICY, kit.at(1))
    workflow.approve(change, "ciso", "ok", POLICY, kit.at(2))
    events = workflow.update(change, "editor", {"affected_services": ["a"]}, POLICY, [], kit.at(3))
    actions = [e.action for e in events]
    assert actions == ["updated", "approvals_discarded", "assessed", "approval_requested"]
    assert events[1].details["approvers"] == ["ops-lead", "ciso"]
    assert change.active_approvals == []
    assert [a.active for a in change.approvals] == [False, False]
    assert change.assessment is not None
    assert change.assessment.score == 70  # 40 + 5 + 20 + 5: CAB by score…
    assert change.assessment.route is Route.CAB_CISO_CTO  # …kept at the route already reached
    assert change.assessment.assessed_at == kit.at(3)
    assert change.state is State.PENDING_CAB
    assert change.authors == ["editor"]


def test_update_that_lowers_the_risk_never_reroutes_below_a_person(kit: Kit) -> None:
    change = kit.assessed("medium", category="documentation")  # 20 + 0 + 5 + 5 = 30
    assert change.state is State.PENDING_APPROVAL
    events = workflow.update(change, "editor", {"impact": Level.LOW}, POLICY, [], kit.at(3))
    assert "approvals_discarded" not in [e.action for e in events]  # there were none
    assert change.assessment is not None and change.assessment.score == 20  # auto-approvable by score
    assert change.assessment.route is Route.TECHNICAL_LEAD
    assert change.state is State.PENDING_APPROVAL
    workflow.assess(change, POLICY, [], kit.at(4), reassess=True, lower_route="typo", actor="cm")
    assert change.state is State.APPROVED
    assert change.approvals[-1].approver == "auto-approval-system"


def test_ad_hoc_steps_send_a_low_risk_change_to_a_person(kit: Kit) -> None:
    change = kit.change("low-auto")
    change.rollback_plan = {"steps": [{"http": {"method": "POST", "url": "http://x/y"}}]}
    workflow.assess(change, POLICY, [], kit.T0)
    assert change.assessment is not None and change.assessment.route is Route.TECHNICAL_LEAD
    assert "ad-hoc executable steps" in change.assessment.route_reason
    assert change.state is State.PENDING_APPROVAL


def test_ad_hoc_steps_need_an_ecab_member_even_with_emergency_auto_approve(kit: Kit) -> None:
    change = kit.change("high", type=ChangeType.EMERGENCY)
    change.implementation_plan = {"steps": [{"run": "./fix.sh"}]}
    workflow.assess(change, POLICY, [], kit.T0)
    assert change.assessment is not None and change.assessment.route is Route.EMERGENCY_CAB
    assert change.state is State.PENDING_APPROVAL
    with pytest.raises(Refused, match="no person approved"):
        workflow.start_implementation(_approved_by_system(change), "ops", kit.at(1))
    workflow.approve(change, "tech-lead-oncall", "seen the script", POLICY, kit.at(1))
    assert change.state is State.APPROVED
    workflow.start_implementation(change, "ops", kit.at(2))
    assert change.state is State.IMPLEMENTING


def _approved_by_system(change: Change) -> Change:
    """A copy forced to approved by the system alone (a record routed under older rules)."""
    copy = codec.from_document(codec.to_document(change))
    copy.state = State.APPROVED
    return copy


def test_an_editor_becomes_an_author_and_may_not_approve(kit: Kit) -> None:
    change = kit.assessed("medium")
    workflow.update(change, "tech-lead", {"rollback_plan": {"steps": ["undo"]}}, POLICY, [], kit.at(1))
    assert change.authors == ["tech-lead"]
    with pytest.raises(ApprovalRefused, match="edited it"):
        workflow.approve(change, "tech-lead", "ok", POLICY, kit.at(2))
    workflow.update(change, "coordinator-master", {"title": "Only the title"}, POLICY, [], kit.at(3))
    assert change.authors == ["tech-lead"]  # a title is not substance
    workflow.approve(change, "coordinator-master", "ok", POLICY, kit.at(4))
    assert change.state is State.APPROVED


@pytest.mark.parametrize("profile", ["low-auto", "medium"])
def test_update_after_approval_is_refused(kit: Kit, profile: str) -> None:
    change = kit.assessed(profile)
    if change.state is not State.APPROVED:
        workflow.approve(change, "tech-lead", "ok", POLICY, kit.at(1))
    before = codec.to_document(change)
    with pytest.raises(InvalidTransition, match="approved"):
        workflow.update(change, "editor", {"title": "Another"}, POLICY, [], kit.at(2))
    assert codec.to_document(change) == before


@pytest.mark.parametrize("state", [State.REJECTED, State.CANCELLED, State.IMPLEMENTING, State.CLOSED])
def test_update_in_later_states_is_refused(kit: Kit, state: State) -> None:
    change = kit.change(state=state)
    with pytest.raises(InvalidTransition, match=state.value):
        workflow.update(change, "editor", {"title": "Another"}, POLICY, [], kit.at(2))


# --- emergency review -----------------------------------------------------------------


def _emergency(kit: Kit, **overrides: Any) -> Change:
    change = kit.assessed("high", type=ChangeType.EMERGENCY, **overrides)
    assert change.state is State.APPROVED
    return change


@pytest.mark.parametrize("reviewer", ["ops-lead", "tech-lead", "security-oncall", "tech-lead-oncall"])
@pytest.mark.parametrize("outcome", list(ReviewOutcome))
def test_cab_or_ecab_member_records_the_review(kit: Kit, reviewer: str, outcome: ReviewOutcome) -> None:
    change = _emergency(kit)
    events = workflow.review(change, reviewer, outcome, "fine in hindsight", POLICY, kit.at(60))
    assert change.review is not None
    assert (change.review.reviewer, change.review.outcome) == (reviewer, outcome)
    assert change.review.reviewed_at == kit.at(60)
    assert change.review.notes == "fine in hindsight"
    assert events[0].action == "review_recorded"
    assert events[0].details["late"] is False
    assert change.state is State.APPROVED  # a review never moves the change


def test_late_review_is_flagged(kit: Kit) -> None:
    change = _emergency(kit)
    late = kit.T0 + timedelta(hours=24, seconds=1)
    events = workflow.review(change, "ops-lead", ReviewOutcome.CONCERNS, "late", POLICY, late)
    assert events[0].details["late"] is True


@pytest.mark.parametrize("reviewer", ["ciso", "cto", "coordinator-master", "stranger"])
def test_review_by_someone_outside_cab_and_ecab_is_refused(kit: Kit, reviewer: str) -> None:
    change = _emergency(kit)
    with pytest.raises(ApprovalRefused, match="CAB or ECAB"):
        workflow.review(change, reviewer, ReviewOutcome.ACCEPTED, "", POLICY, kit.at(1))
    assert change.review is not None
    assert change.review.reviewed_at is None


@pytest.mark.parametrize("segregation", [True, False])
def test_requester_may_not_review_own_emergency(kit: Kit, segregation: bool) -> None:
    policy = Policy(segregation_of_duties=segregation)
    change = _emergency(kit, requested_by="ops-lead", policy=policy)
    with pytest.raises(ApprovalRefused, match="requested it"):
        workflow.review(change, "ops-lead", ReviewOutcome.ACCEPTED, "", policy, kit.at(1))


def test_review_only_once(kit: Kit) -> None:
    change = _emergency(kit)
    workflow.review(change, "ops-lead", ReviewOutcome.ACCEPTED, "", POLICY, kit.at(1))
    before = codec.to_document(change)
    with pytest.raises(ApprovalRefused, match="already reviewed by ops-lead"):
        workflow.review(change, "tech-lead", ReviewOutcome.CONCERNS, "", POLICY, kit.at(2))
    assert codec.to_document(change) == before


def test_only_emergency_changes_are_reviewed(kit: Kit) -> None:
    change = kit.assessed("low-auto")
    with pytest.raises(Refused, match="only emergencies"):
        workflow.review(change, "ops-lead", ReviewOutcome.ACCEPTED, "", POLICY, kit.at(1))


def test_unapproved_emergency_cannot_be_reviewed_yet(kit: Kit) -> None:
    change = kit.assessed("high", type=ChangeType.EMERGENCY, policy=Policy(emergency_auto_approve=False))
    with pytest.raises(InvalidTransition):
        workflow.review(change, "ops-lead", ReviewOutcome.ACCEPTED, "", POLICY, kit.at(1))


@pytest.mark.parametrize("steps", [["implement"], ["implement", "finish"], ["implement", "finish", "close"]])
def test_review_after_implementation_and_closure(kit: Kit, steps: list[str]) -> None:
    change = _emergency(kit)
    _run(kit, change, steps)
    state = change.state
    workflow.review(change, "ops-lead", ReviewOutcome.ACCEPTED, "", POLICY, kit.at(100))
    assert change.state is state


# --- implementation, close, cancel ----------------------------------------------------


def _run(kit: Kit, change: Change, steps: list[str]) -> None:
    for i, step in enumerate(steps, 10):
        if step == "implement":
            workflow.start_implementation(change, "worker-1", kit.at(i))
        elif step == "finish":
            workflow.finish_implementation(change, "worker-1", kit.at(i), "all steps ran")
        elif step == "close":
            workflow.close(change, ClosureStatus.SUCCESSFUL, "done", "worker-1", kit.at(i))


def test_implementation_milestones(kit: Kit) -> None:
    change = kit.assessed("low-auto")
    workflow.start_implementation(change, "worker-1", kit.at(10))
    assert change.state is State.IMPLEMENTING
    assert change.timeline.implementation_started_at == kit.at(10)
    workflow.finish_implementation(change, "worker-1", kit.at(20), "ok")
    assert change.state is State.IMPLEMENTED
    assert change.timeline.implemented_at == kit.at(20)
    assert change.timeline.mtti_seconds == 20 * 60
    assert change.timeline.mtta_seconds == 0


@pytest.mark.parametrize("profile", ["medium", "high", "critical"])
def test_implementing_an_unapproved_change_is_refused(kit: Kit, profile: str) -> None:
    change = kit.assessed(profile, with_plans=True)
    with pytest.raises(InvalidTransition, match=change.state.value):
        workflow.start_implementation(change, "worker-1", kit.at(1))


@pytest.mark.parametrize(
    "status", [ClosureStatus.SUCCESSFUL, ClosureStatus.FAILED, ClosureStatus.ROLLED_BACK]
)
def test_close_an_implemented_change(kit: Kit, status: ClosureStatus) -> None:
    change = kit.assessed("low-auto")
    _run(kit, change, ["implement", "finish"])
    events = workflow.close(change, status, "notes", "worker-1", kit.at(30))
    assert change.state is State.CLOSED
    assert (change.closure_status, change.closure_notes) == (status, "notes")
    assert change.timeline.closed_at == kit.at(30)
    assert change.timeline.implemented_at == kit.at(11)
    assert events[0].details == {"closure_status": status.value, "notes": "notes"}


def test_close_while_implementing_stamps_the_end_of_implementation(kit: Kit) -> None:
    change = kit.assessed("low-auto")
    _run(kit, change, ["implement"])
    workflow.close(change, ClosureStatus.FAILED, "step 2 failed", "worker-1", kit.at(30))
    assert change.timeline.implemented_at == kit.at(30)


def test_close_with_cancelled_is_refused(kit: Kit) -> None:
    change = kit.assessed("low-auto")
    _run(kit, change, ["implement", "finish"])
    with pytest.raises(ValidationError, match="use cancel"):
        workflow.close(change, ClosureStatus.CANCELLED, "", "worker-1", kit.at(30))
    assert change.state is State.IMPLEMENTED


@pytest.mark.parametrize(
    "state",
    [
        State.PENDING_ASSESSMENT,
        State.PENDING_APPROVAL,
        State.PENDING_CAB,
        State.APPROVED,
        State.REJECTED,
        State.CLOSED,
        State.CANCELLED,
    ],
)
def test_close_from_a_state_that_is_not_in_flight_is_refused(kit: Kit, state: State) -> None:
    change = kit.change(state=state)
    with pytest.raises(InvalidTransition, match=state.value):
        workflow.close(change, ClosureStatus.SUCCESSFUL, "", "worker-1", kit.at(1))


CANCELLABLE = [
    State.PENDING_ASSESSMENT,
    State.ASSESSED,
    State.PENDING_APPROVAL,
    State.PENDING_CAB,
    State.APPROVED,
]


@pytest.mark.parametrize("state", list(State))
def test_cancel(kit: Kit, state: State) -> None:
    change = kit.change(state=state)
    if state not in CANCELLABLE:
        with pytest.raises(InvalidTransition, match=state.value):
            workflow.cancel(change, "requester-1", "not needed", kit.at(1))
        assert change.state is state
        return
    events = workflow.cancel(change, "requester-1", "not needed", kit.at(1))
    assert change.state is State.CANCELLED
    assert change.closure_status is ClosureStatus.CANCELLED
    assert change.closure_notes == "not needed"
    assert change.timeline.closed_at == kit.at(1)
    assert [(e.action, e.actor) for e in events] == [("cancelled", "requester-1")]


def test_a_model_that_would_make_an_emergency_makes_a_normal_change_when_emergencies_are_off(
    kit: Kit,
) -> None:
    policy = Policy(emergency_enabled=False)
    decision = StandardDecision(
        "security-patch", False, ChangeType.EMERGENCY, "severity critical is above high"
    )
    change = kit.change(type=ChangeType.STANDARD)
    events = workflow.assess(change, policy, [], kit.T0, standard=decision)
    assert change.type is ChangeType.NORMAL
    assert change.assessment is not None and change.assessment.route.value != "emergency-cab"
    reason = next(e.details["reason"] for e in events if e.action == "reclassified")
    assert "EMERGENCY_CHANGE_ENABLED=false" in reason
