"""SPEC §4: approval routes, quorum, segregation of duties, documentation, refusals."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from cortex_change.domain import codec, routing, workflow
from cortex_change.domain.errors import ApprovalRefused, CortexError, InvalidTransition
from cortex_change.domain.lifecycle import State
from cortex_change.domain.model import Change, ChangeType, Decision, Route
from cortex_change.domain.policy import Policy

if TYPE_CHECKING:
    from conftest import Kit

POLICY = Policy()


def approve(kit: Kit, change: Change, who: str, minutes: float = 1, policy: Policy = POLICY) -> None:
    workflow.approve(change, who, f"looks fine to {who}", policy, kit.at(minutes))


# --- technical-lead route -------------------------------------------------------------


@pytest.mark.parametrize("lead", sorted(POLICY.tech_leads))
def test_one_tech_lead_approves_a_medium_change(kit: Kit, lead: str) -> None:
    change = kit.assessed("medium")
    assert change.state is State.PENDING_APPROVAL
    events = workflow.approve(change, lead, "ok", POLICY, kit.at(30))
    assert change.state is State.APPROVED
    assert [e.action for e in events] == ["approved"]
    assert events[0].actor == lead
    assert change.timeline.approved_at == kit.at(30)
    assert [(a.approver, a.role, a.decision) for a in change.approvals] == [
        (lead, "technical-lead", Decision.APPROVED)
    ]


@pytest.mark.parametrize("who", ["ops-lead", "ciso", "tech-lead-oncall", "stranger"])
def test_non_tech_lead_is_refused_naming_the_role_and_its_holders(kit: Kit, who: str) -> None:
    change = kit.assessed("medium")
    with pytest.raises(ApprovalRefused) as refused:
        approve(kit, change, who)
    message = str(refused.value)
    assert who in message
    assert "technical-lead" in message
    assert "TECH_LEADS" in message
    assert "coordinator-master, tech-lead" in message


def test_low_risk_without_auto_approval_needs_a_tech_lead(kit: Kit) -> None:
    policy = Policy(auto_approve_low_risk=False)
    change = kit.assessed("low-auto", policy=policy)
    assert change.assessment is not None
    assert change.assessment.route is Route.TECHNICAL_LEAD
    assert change.approvals == []
    approve(kit, change, "tech-lead", policy=policy)
    assert change.state is State.APPROVED


# --- CAB route ------------------------------------------------------------------------


def test_cab_needs_two_distinct_members(kit: Kit) -> None:
    change = kit.assessed("high", with_plans=True)
    assert change.state is State.PENDING_CAB
    events = workflow.approve(change, "ops-lead", "ok", POLICY, kit.at(1))
    assert change.state is State.PENDING_CAB
    assert [e.action for e in events] == ["approval_granted"]
    assert events[0].details["outstanding"] == ["cab 1/2"]
    assert change.timeline.approved_at is None
    with pytest.raises(ApprovalRefused, match="one person counts once"):
        approve(kit, change, "ops-lead", 2)
    assert change.state is State.PENDING_CAB
    approve(kit, change, "security-lead", 3)
    assert change.state is State.APPROVED
    assert change.timeline.approved_at == kit.at(3)
    assert routing.outstanding(Route.CAB, change.active_approvals, POLICY) == []


@pytest.mark.parametrize("quorum", [1, 3, 4])
def test_cab_quorum_is_configurable(kit: Kit, quorum: int) -> None:
    policy = Policy(cab_min_approvals=quorum)
    change = kit.assessed("high", with_plans=True, policy=policy)
    members = sorted(policy.cab_members)
    for i, member in enumerate(members[:quorum]):
        assert change.state is State.PENDING_CAB, f"approved after only {i} votes"
        approve(kit, change, member, i, policy)
    assert change.state is State.APPROVED


@pytest.mark.parametrize("who", ["tech-lead-oncall", "ciso", "cto", "coordinator-master", "stranger"])
def test_non_cab_member_is_refused_on_the_cab_route(kit: Kit, who: str) -> None:
    change = kit.assessed("high", with_plans=True)
    with pytest.raises(ApprovalRefused) as refused:
        approve(kit, change, who)
    assert "cab (CAB_MEMBERS): ops-lead, product-lead, security-lead, tech-lead" in str(refused.value)


# --- critical route: CAB quorum and CISO and CTO --------------------------------------

CRITICAL_VOTERS = ["tech-lead", "ops-lead", "ciso", "cto"]


@pytest.mark.parametrize("order", list(itertools.permutations(CRITICAL_VOTERS)), ids=">".join)
def test_critical_is_approved_only_when_every_part_is_met(kit: Kit, order: tuple[str, ...]) -> None:
    change = kit.assessed("critical", with_plans=True)
    assert change.state is State.PENDING_CAB
    for i, who in enumerate(order):
        assert change.state is State.PENDING_CAB, f"approved before {who} voted"
        approve(kit, change, who, i + 1)
    assert change.state is State.APPROVED
    assert change.timeline.approved_at == kit.at(4)
    roles = {a.approver: a.role for a in change.active_approvals}
    assert roles == {"tech-lead": "cab", "ops-lead": "cab", "ciso": "ciso", "cto": "cto"}


@pytest.mark.parametrize(
    "votes",
    [
        ["tech-lead", "ops-lead", "security-lead", "ciso"],  # no CTO
        ["tech-lead", "ops-lead", "product-lead", "cto"],  # no CISO
        ["tech-lead", "ciso", "cto"],  # one CAB vote short
    ],
)
def test_critical_missing_a_part_stays_pending(kit: Kit, votes: list[str]) -> None:
    change = kit.assessed("critical", with_plans=True)
    for i, who in enumerate(votes):
        with contextlib.suppress(ApprovalRefused):  # a surplus CAB vote is refused
            approve(kit, change, who, i)
    assert change.state is State.PENDING_CAB
    assert routing.outstanding(Route.CAB_CISO_CTO, change.active_approvals, POLICY) != []


def test_a_person_holding_two_roles_counts_once(kit: Kit) -> None:
    policy = Policy(ciso_members=frozenset({"tech-lead"}))
    change = kit.assessed("critical", with_plans=True, policy=policy)
    approve(kit, change, "tech-lead", 1, policy)  # fills the scarce CISO seat
    assert change.active_approvals[0].role == "ciso"
    with pytest.raises(ApprovalRefused, match="one person counts once"):
        approve(kit, change, "tech-lead", 2, policy)
    approve(kit, change, "ops-lead", 3, policy)
    approve(kit, change, "cto", 4, policy)
    assert change.state is State.PENDING_CAB  # CAB 1/2: tech-lead did not count twice
    approve(kit, change, "product-lead", 5, policy)
    assert change.state is State.APPROVED


def test_a_vote_may_name_the_role_it_is_given_under(kit: Kit) -> None:
    policy = Policy(ciso_members=frozenset({"tech-lead", "ciso"}))
    change = kit.assessed("critical", with_plans=True, policy=policy)
    workflow.approve(change, "tech-lead", "ok", policy, kit.at(1), role="cab")
    assert change.active_approvals[0].role == "cab"
    with pytest.raises(ApprovalRefused, match="cto"):
        workflow.approve(change, "ops-lead", "ok", policy, kit.at(2), role="cto")


def test_a_filled_seat_refuses_a_second_holder(kit: Kit) -> None:
    policy = Policy(ciso_members=frozenset({"ciso", "deputy-ciso"}))
    change = kit.assessed("critical", with_plans=True, policy=policy)
    approve(kit, change, "ciso", 1, policy)
    with pytest.raises(ApprovalRefused, match="no outstanding approval"):
        approve(kit, change, "deputy-ciso", 2, policy)


# --- rejection ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "who", "role"),
    [
        ("medium", "tech-lead", "technical-lead"),
        ("medium", "coordinator-master", "technical-lead"),
        ("high", "product-lead", "cab"),
        ("critical", "security-lead", "cab"),
        ("critical", "ciso", "ciso"),
        ("critical", "cto", "cto"),
    ],
)
def test_one_rejection_by_a_role_holder_rejects(kit: Kit, profile: str, who: str, role: str) -> None:
    change = kit.assessed(profile, with_plans=True)
    events = workflow.reject(change, who, "too risky", POLICY, kit.at(5))
    assert change.state is State.REJECTED
    assert events[0].action == "rejected"
    assert (change.approvals[-1].approver, change.approvals[-1].role) == (who, role)
    assert change.approvals[-1].decision is Decision.REJECTED


def test_rejection_after_partial_approval_rejects(kit: Kit) -> None:
    change = kit.assessed("critical", with_plans=True)
    approve(kit, change, "tech-lead", 1)
    approve(kit, change, "ops-lead", 2)
    approve(kit, change, "ciso", 3)
    workflow.reject(change, "cto", "not this week", POLICY, kit.at(4))
    assert change.state is State.REJECTED
    assert change.timeline.approved_at is None


def test_rejection_is_not_blocked_by_missing_documentation(kit: Kit) -> None:
    change = kit.assessed("high")  # no plans
    workflow.reject(change, "ops-lead", "no rollback plan", POLICY, kit.at(1))
    assert change.state is State.REJECTED


@pytest.mark.parametrize(("profile", "who"), [("medium", "ops-lead"), ("high", "coordinator-master")])
def test_rejection_by_a_non_holder_is_refused(kit: Kit, profile: str, who: str) -> None:
    change = kit.assessed(profile, with_plans=True)
    with pytest.raises(ApprovalRefused, match="holds no role"):
        workflow.reject(change, who, "no", POLICY, kit.at(1))
    assert change.state is not State.REJECTED


@pytest.mark.parametrize("state", [State.APPROVED, State.REJECTED])
def test_votes_on_a_decided_change_are_invalid_transitions(kit: Kit, state: State) -> None:
    change = kit.assessed("medium")
    if state is State.APPROVED:
        approve(kit, change, "tech-lead")
    else:
        workflow.reject(change, "tech-lead", "no", POLICY, kit.at(1))
    with pytest.raises(InvalidTransition, match=state.value):
        approve(kit, change, "coordinator-master", 2)
    with pytest.raises(InvalidTransition, match=state.value):
        workflow.reject(change, "coordinator-master", "no", POLICY, kit.at(2))


def test_approving_an_auto_approved_change_is_an_invalid_transition(kit: Kit) -> None:
    change = kit.assessed("low-auto")
    with pytest.raises(InvalidTransition):
        approve(kit, change, "tech-lead")


# --- segregation of duties ------------------------------------------------------------


@pytest.mark.parametrize(("profile", "requester"), [("medium", "tech-lead"), ("high", "ops-lead")])
@pytest.mark.parametrize("verb", ["approve", "reject"])
def test_requester_may_not_vote_on_own_change(kit: Kit, profile: str, requester: str, verb: str) -> None:
    change = kit.assessed(profile, with_plans=True, requested_by=requester)
    with pytest.raises(ApprovalRefused) as refused:
        if verb == "approve":
            approve(kit, change, requester)
        else:
            workflow.reject(change, requester, "no", POLICY, kit.at(1))
    message = str(refused.value)
    assert verb in message
    assert "SEGREGATION_OF_DUTIES" in message
    assert change.approvals == []


def test_without_segregation_the_requester_may_approve(kit: Kit) -> None:
    policy = Policy(segregation_of_duties=False)
    change = kit.assessed("medium", requested_by="tech-lead", policy=policy)
    approve(kit, change, "tech-lead", policy=policy)
    assert change.state is State.APPROVED


def test_without_segregation_the_requester_may_reject(kit: Kit) -> None:
    policy = Policy(segregation_of_duties=False)
    change = kit.assessed("high", requested_by="ops-lead", with_plans=True, policy=policy)
    workflow.reject(change, "ops-lead", "withdrawn", policy, kit.at(1))
    assert change.state is State.REJECTED


def test_without_segregation_one_person_still_counts_once(kit: Kit) -> None:
    policy = Policy(segregation_of_duties=False)
    change = kit.assessed("high", requested_by="ops-lead", with_plans=True, policy=policy)
    approve(kit, change, "ops-lead", 1, policy)
    with pytest.raises(ApprovalRefused, match="one person counts once"):
        approve(kit, change, "ops-lead", 2, policy)
    assert change.state is State.PENDING_CAB


# --- documentation --------------------------------------------------------------------

PLAN_CASES = [
    # implementation_plan present?, rollback_plan present?, what the refusal names
    (True, False, ["rollback plan", "REQUIRE_ROLLBACK_PLAN"]),
    (False, True, ["implementation plan", "REQUIRE_DOCUMENTATION"]),
    (
        False,
        False,
        ["rollback plan", "REQUIRE_ROLLBACK_PLAN", "implementation plan", "REQUIRE_DOCUMENTATION"],
    ),
]


@pytest.mark.parametrize("profile", ["high", "critical"])
@pytest.mark.parametrize(("impl", "rollback", "named"), PLAN_CASES)
def test_high_and_critical_need_both_plans(
    kit: Kit, profile: str, impl: bool, rollback: bool, named: list[str]
) -> None:
    plans = kit.plans()
    change = kit.assessed(
        profile,
        implementation_plan=plans["implementation_plan"] if impl else None,
        rollback_plan=plans["rollback_plan"] if rollback else None,
    )
    with pytest.raises(ApprovalRefused) as refused:
        approve(kit, change, "ops-lead")
    for part in named:
        assert part in str(refused.value)
    if impl:
        assert "REQUIRE_DOCUMENTATION" not in str(refused.value)
    if rollback:
        assert "REQUIRE_ROLLBACK_PLAN" not in str(refused.value)


@pytest.mark.parametrize("empty", [{}, {"steps": []}, {"automated": True}])
def test_a_plan_without_steps_counts_as_missing(kit: Kit, empty: dict[str, object]) -> None:
    change = kit.assessed("high", implementation_plan=kit.plans()["implementation_plan"], rollback_plan=empty)
    with pytest.raises(ApprovalRefused, match="REQUIRE_ROLLBACK_PLAN"):
        approve(kit, change, "ops-lead")


def test_documentation_keys_can_be_switched_off(kit: Kit) -> None:
    policy = Policy(require_rollback_plan=False, require_documentation=False)
    change = kit.assessed("high", policy=policy)
    approve(kit, change, "ops-lead", 1, policy)
    approve(kit, change, "tech-lead", 2, policy)
    assert change.state is State.APPROVED


def test_only_the_switched_on_key_blocks(kit: Kit) -> None:
    policy = Policy(require_documentation=False)
    change = kit.assessed("high", policy=policy)
    with pytest.raises(ApprovalRefused) as refused:
        approve(kit, change, "ops-lead", 1, policy)
    assert "REQUIRE_ROLLBACK_PLAN" in str(refused.value)
    assert "REQUIRE_DOCUMENTATION" not in str(refused.value)


def test_emergency_changes_are_exempt_from_the_documentation_block(kit: Kit) -> None:
    policy = Policy(emergency_auto_approve=False)
    change = kit.assessed("critical", type=ChangeType.EMERGENCY, policy=policy)
    assert change.state is State.PENDING_APPROVAL
    approve(kit, change, "tech-lead-oncall", 1, policy)
    assert change.state is State.APPROVED


def test_standard_changes_are_exempt_from_the_documentation_block(kit: Kit) -> None:
    change = kit.assessed("critical")
    change.type = ChangeType.STANDARD
    assert workflow.missing_documentation(change, POLICY) == []
    change.type = ChangeType.NORMAL
    assert len(workflow.missing_documentation(change, POLICY)) == 2


@pytest.mark.parametrize("profile", ["low-tl", "medium"])
def test_below_high_missing_plans_do_not_block(kit: Kit, profile: str) -> None:
    change = kit.assessed(profile)
    assert workflow.missing_documentation(change, POLICY) == []
    approve(kit, change, "tech-lead")
    assert change.state is State.APPROVED


def test_medium_without_rollback_plan_is_warned_but_approved(kit: Kit) -> None:
    change = kit.assessed("medium")
    approve(kit, change, "tech-lead")
    assert change.state is State.APPROVED
    warnings = workflow.documentation_warnings(change)
    assert warnings
    assert "rollback plan" in warnings[0]


def test_medium_with_rollback_plan_has_no_warning(kit: Kit) -> None:
    change = kit.assessed("medium", with_plans=True)
    assert workflow.documentation_warnings(change) == []


@pytest.mark.parametrize("profile", ["low-tl", "high"])
def test_warning_is_only_for_medium(kit: Kit, profile: str) -> None:
    assert workflow.documentation_warnings(kit.assessed(profile)) == []


# --- a refused vote leaves the record unchanged ---------------------------------------

Vote = Callable[["Kit", Change], object]

REFUSALS: list[tuple[str, str, dict[str, Any], Vote]] = [
    ("stranger approves", "high", {}, lambda k, c: approve(k, c, "stranger")),
    ("stranger rejects", "high", {}, lambda k, c: workflow.reject(c, "stranger", "no", POLICY, k.T0)),
    ("requester approves", "high", {"requested_by": "ops-lead"}, lambda k, c: approve(k, c, "ops-lead")),
    (
        "requester rejects",
        "high",
        {"requested_by": "ops-lead"},
        lambda k, c: workflow.reject(c, "ops-lead", "no", POLICY, k.T0),
    ),
    ("no rollback plan", "high", {"rollback_plan": None}, lambda k, c: approve(k, c, "ops-lead")),
    ("tech lead on CAB", "critical", {}, lambda k, c: approve(k, c, "coordinator-master")),
    ("approved already", "low-auto", {}, lambda k, c: approve(k, c, "tech-lead")),
]


@pytest.mark.parametrize(("label", "profile", "overrides", "vote"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refused_vote_leaves_the_record_unchanged(
    kit: Kit, label: str, profile: str, overrides: dict[str, Any], vote: Vote
) -> None:
    change = kit.assessed(profile, with_plans=True, **overrides)
    before = codec.to_document(change)
    with pytest.raises(CortexError):
        vote(kit, change)
    assert codec.to_document(change) == before


def test_second_vote_by_the_same_person_leaves_the_record_unchanged(kit: Kit) -> None:
    change = kit.assessed("high", with_plans=True)
    approve(kit, change, "ops-lead", 1)
    before = codec.to_document(change)
    with pytest.raises(ApprovalRefused, match="one person counts once"):
        approve(kit, change, "ops-lead", 2)
    assert codec.to_document(change) == before


# --- system approvals and the emergency review clock ----------------------------------


def test_auto_approval_is_recorded_as_the_auto_approval_system(kit: Kit) -> None:
    change = kit.assessed("low-auto")
    assert change.state is State.APPROVED
    assert [(a.approver, a.decision) for a in change.approvals] == [
        (routing.AUTO_APPROVER, Decision.APPROVED)
    ]
    assert routing.AUTO_APPROVER == "auto-approval-system"
    assert change.timeline.approved_at == kit.T0
    assert change.review is None


def test_require_change_approval_off_approves_everything(kit: Kit) -> None:
    change = kit.assessed("critical", policy=Policy(require_change_approval=False))
    assert change.state is State.APPROVED
    assert change.approvals[0].approver == "auto-approval-system"


@pytest.mark.parametrize("sla", [24, 6])
def test_emergency_auto_approval_starts_the_review_clock(kit: Kit, sla: int) -> None:
    change = kit.assessed("high", type=ChangeType.EMERGENCY, policy=Policy(emergency_review_sla_hours=sla))
    assert change.state is State.APPROVED
    assert [a.approver for a in change.approvals] == ["emergency-cab"]
    assert routing.EMERGENCY_APPROVER == "emergency-cab"
    assert change.review is not None
    assert change.review.due_at == kit.T0 + timedelta(hours=sla)
    assert change.review.reviewed_at is None


def test_emergency_without_auto_approval_needs_one_ecab_member(kit: Kit) -> None:
    policy = Policy(emergency_auto_approve=False)
    change = kit.assessed("medium", type=ChangeType.EMERGENCY, policy=policy)
    assert change.state is State.PENDING_APPROVAL
    assert change.review is None
    with pytest.raises(ApprovalRefused) as refused:
        approve(kit, change, "ops-lead", 1, policy)
    assert "ecab (ECAB_MEMBERS): security-oncall, tech-lead-oncall" in str(refused.value)
    approve(kit, change, "security-oncall", 90, policy)
    assert change.state is State.APPROVED
    assert change.review is not None
    assert change.review.due_at == kit.at(90) + timedelta(hours=24)


def test_an_earlier_voter_moves_seat_so_a_later_vote_counts(kit: Kit) -> None:
    # x holds CAB and CISO; sam only CISO. x's vote first fills the CISO seat, but when sam
    # votes, x moves to CAB so every part can be met (no change gets stuck on seat order).
    policy = Policy(
        cab_members=frozenset({"ann", "x"}), cab_min_approvals=2, ciso_members=frozenset({"x", "sam"})
    )
    change = kit.assessed("critical", with_plans=True, policy=policy)
    approve(kit, change, "x", 1, policy)
    assert change.active_approvals[0].role == "ciso"
    approve(kit, change, "ann", 2, policy)
    events = workflow.approve(change, "sam", "ok", policy, kit.at(3))
    assert {a.approver: a.role for a in change.active_approvals} == {"x": "cab", "ann": "cab", "sam": "ciso"}
    assert events[0].details["recounted"] == {"x": {"from": "ciso", "to": "cab"}}
    assert change.state is State.PENDING_CAB  # still needs the CTO
    approve(kit, change, "cto", 4, policy)
    assert change.state is State.APPROVED


def test_a_vote_that_cannot_be_seated_is_refused_and_changes_nothing(kit: Kit) -> None:
    policy = Policy(cab_members=frozenset({"ann", "bob", "carol", "x"}), ciso_members=frozenset({"x"}))
    change = kit.assessed("critical", with_plans=True, policy=policy)
    approve(kit, change, "ann", 1, policy)
    approve(kit, change, "bob", 2, policy)
    approve(kit, change, "x", 3, policy)  # CAB full: x can only count as CISO
    assert change.active_approvals[-1].role == "ciso"
    before = codec.to_document(change)
    with pytest.raises(ApprovalRefused, match="already counted: ann as cab, bob as cab, x as ciso"):
        workflow.approve(change, "carol", "ok", policy, kit.at(4))
    assert codec.to_document(change) == before
