"""SPEC §1 `compliance`, §4, §5: the controls evaluated on one change."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from cortex_change.domain import compliance, workflow
from cortex_change.domain.compliance import FAIL, NA, PASS, PENDING
from cortex_change.domain.model import Approval, Change, ChangeType, Decision, ReviewOutcome
from cortex_change.domain.policy import Policy

if TYPE_CHECKING:
    from conftest import Kit

POLICY = Policy()
ALL_EVENTS = ["created", "assessed", "approved", "implementation_started", "closed"]


def _status(control: compliance.Control, change: Change, kit: Kit, now_minutes: float = 0) -> str:
    return control(change, POLICY, ALL_EVENTS, kit.at(now_minutes)).status


# --- segregation of duties ------------------------------------------------------------


def test_segregation_passes_when_someone_else_approved(kit: Kit) -> None:
    change = kit.assessed("medium", requested_by="tech-lead")
    workflow.approve(change, "coordinator-master", "ok", POLICY, kit.at(1))
    assert _status(compliance.segregation, change, kit) == PASS


def test_segregation_fails_when_the_requester_approved(kit: Kit) -> None:
    policy = Policy(segregation_of_duties=False)
    change = kit.assessed("medium", requested_by="tech-lead", policy=policy)
    workflow.approve(change, "tech-lead", "mine", policy, kit.at(1))
    result = compliance.segregation(change, policy, ALL_EVENTS, kit.at(2))
    assert result.status == FAIL
    assert "tech-lead" in result.reason


def test_segregation_fails_when_one_person_counted_twice(kit: Kit) -> None:
    change = kit.assessed("high", with_plans=True)
    change.approvals += [
        Approval("ops-lead", "cab", Decision.APPROVED, "ok", kit.at(1)),
        Approval("ops-lead", "cab", Decision.APPROVED, "ok", kit.at(2)),
    ]
    assert _status(compliance.segregation, change, kit) == FAIL


def test_an_approver_who_then_rejects_is_not_counted_twice(kit: Kit) -> None:
    change = kit.assessed("high", with_plans=True)
    workflow.approve(change, "ops-lead", "ok", POLICY, kit.at(1))
    workflow.reject(change, "ops-lead", "found a problem", POLICY, kit.at(2))
    assert [a.decision for a in change.active_approvals] == [Decision.APPROVED, Decision.REJECTED]
    assert _status(compliance.segregation, change, kit) == PASS


def test_segregation_ignores_discarded_approvals(kit: Kit) -> None:
    change = kit.assessed("high", with_plans=True)
    change.approvals.append(Approval(kit.REQUESTER, "cab", Decision.APPROVED, "ok", kit.at(1), active=False))
    assert _status(compliance.segregation, change, kit) == PASS


# --- rollback plan --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "type_", "with_plans", "expected"),
    [
        ("medium", ChangeType.NORMAL, False, FAIL),
        ("medium", ChangeType.NORMAL, True, PASS),
        ("high", ChangeType.NORMAL, True, PASS),
        ("high", ChangeType.NORMAL, False, FAIL),
        ("low-tl", ChangeType.NORMAL, False, NA),
        ("medium", ChangeType.EMERGENCY, False, NA),
    ],
)
def test_rollback_plan_control(
    kit: Kit, profile: str, type_: ChangeType, with_plans: bool, expected: str
) -> None:
    change = kit.assessed(profile, type=type_, with_plans=with_plans)
    assert _status(compliance.rollback_procedure, change, kit) == expected


def test_rollback_plan_control_waits_for_assessment(kit: Kit) -> None:
    assert _status(compliance.rollback_procedure, kit.change(), kit) == PENDING


# --- emergency review -----------------------------------------------------------------


def _emergency(kit: Kit) -> Change:
    return kit.assessed("high", type=ChangeType.EMERGENCY)


def test_unreviewed_emergency_is_pending_until_due(kit: Kit) -> None:
    change = _emergency(kit)
    assert _status(compliance.emergency_review, change, kit, 24 * 60) == PENDING
    assert _status(compliance.emergency_review, change, kit, 24 * 60 + 1) == FAIL


def test_review_in_time_passes(kit: Kit) -> None:
    change = _emergency(kit)
    workflow.review(change, "ops-lead", ReviewOutcome.ACCEPTED, "", POLICY, kit.at(60))
    result = compliance.emergency_review(change, POLICY, ALL_EVENTS, kit.at(10_000))
    assert result.status == PASS
    assert "ops-lead" in result.reason


def test_late_review_fails(kit: Kit) -> None:
    change = _emergency(kit)
    late = kit.T0 + timedelta(hours=25)
    workflow.review(change, "ops-lead", ReviewOutcome.ACCEPTED, "", POLICY, late)
    assert _status(compliance.emergency_review, change, kit, 10_000) == FAIL


@pytest.mark.parametrize("profile", ["low-auto", "high"])
def test_review_does_not_apply_to_normal_changes(kit: Kit, profile: str) -> None:
    assert _status(compliance.emergency_review, kit.assessed(profile), kit) == NA


# --- approval documentation -----------------------------------------------------------


def test_approval_documentation(kit: Kit) -> None:
    change = kit.assessed("high", with_plans=True)
    assert _status(compliance.approval_documentation, change, kit) == PENDING
    workflow.approve(change, "ops-lead", "ok", POLICY, kit.at(1))
    workflow.approve(change, "tech-lead", "ok", POLICY, kit.at(2))
    result = compliance.approval_documentation(change, POLICY, ALL_EVENTS, kit.at(3))
    assert result.status == PASS
    assert "ops-lead (cab)" in result.reason


def test_approval_without_a_reason_fails(kit: Kit) -> None:
    change = kit.assessed("medium")
    workflow.approve(change, "tech-lead", "  ", POLICY, kit.at(1))
    assert _status(compliance.approval_documentation, change, kit) == FAIL


def test_approved_with_the_route_unmet_fails(kit: Kit) -> None:
    change = kit.assessed("high", with_plans=True)
    workflow.approve(change, "ops-lead", "ok", POLICY, kit.at(1))
    workflow.approve(change, "tech-lead", "ok", POLICY, kit.at(2))
    change.approvals[0].active = False  # as if an approval had gone missing
    result = compliance.approval_documentation(change, POLICY, ALL_EVENTS, kit.at(3))
    assert result.status == FAIL
    assert "cab 1/2" in result.reason


@pytest.mark.parametrize("type_", [ChangeType.NORMAL, ChangeType.EMERGENCY])
def test_system_approvals_are_documented_by_policy(kit: Kit, type_: ChangeType) -> None:
    change = kit.assessed("low-auto", type=type_)
    assert _status(compliance.approval_documentation, change, kit) == PASS


def test_rejected_change_needs_no_approval_documentation(kit: Kit) -> None:
    change = kit.assessed("medium")
    workflow.reject(change, "tech-lead", "no", POLICY, kit.at(1))
    assert _status(compliance.approval_documentation, change, kit) == NA


# --- audit trail and frameworks -------------------------------------------------------


def test_audit_trail_names_missing_milestone_events(kit: Kit) -> None:
    change = kit.assessed("low-auto")
    ok = compliance.audit_trail(change, POLICY, ["created", "assessed", "approved"], kit.T0)
    assert ok.status == PASS
    missing = compliance.audit_trail(change, POLICY, ["created", "reassessed"], kit.T0)
    assert missing.status == FAIL
    assert "approved" in missing.reason


@pytest.mark.parametrize(
    ("framework", "controls"),
    [
        (
            "soc2",
            [
                "audit_trail",
                "segregation_of_duties",
                "approval_documentation",
                "rollback_plan",
                "emergency_review",
            ],
        ),
        ("hipaa", ["risk_assessment", "audit_trail", "approval_documentation", "emergency_review"]),
        (
            "iso27001",
            [
                "risk_assessment",
                "segregation_of_duties",
                "approval_documentation",
                "rollback_plan",
                "audit_trail",
                "emergency_review",
            ],
        ),
    ],
)
def test_frameworks_list_their_controls(kit: Kit, framework: str, controls: list[str]) -> None:
    results = compliance.evaluate(kit.assessed("medium"), POLICY, [framework], ALL_EVENTS, kit.T0)
    assert list(results) == [framework]
    assert [r.control for r in results[framework]] == controls


def test_complete_only_when_nothing_fails_or_waits(kit: Kit) -> None:
    frameworks = ["soc2", "hipaa", "iso27001"]
    change = kit.assessed("medium", with_plans=True)
    workflow.approve(change, "tech-lead", "ok", POLICY, kit.at(1))
    events = ["created", "assessed", "approved"]
    assert compliance.complete(compliance.evaluate(change, POLICY, frameworks, events, kit.at(2)))
    change.rollback_plan = None
    assert not compliance.complete(compliance.evaluate(change, POLICY, frameworks, events, kit.at(2)))


def test_unreviewed_emergency_is_incomplete(kit: Kit) -> None:
    change = _emergency(kit)
    results = compliance.evaluate(change, POLICY, ["soc2"], ["created", "assessed", "approved"], kit.at(1))
    assert not compliance.complete(results)
